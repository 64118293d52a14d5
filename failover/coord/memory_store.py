"""`MemoryStore`: the in-memory ensemble that `MemoryCoordinator` clients share (data,
sessions, quorum), driven by an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from failover.coord.audit import GENESIS
from failover.coord.base import AuditEntry, CommandResult, Member, Topic
from failover.core.model import Applied, Command, GroupState, Observation

if TYPE_CHECKING:
    from failover.coord.memory import MemoryCoordinator


@dataclass
class _Session:
    id: int
    timeout_s: float
    last_heard: float
    expired: bool = False


class MemoryStore:
    """The shared in-memory service: data, sessions, quorum. Drive time with `tick()`."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        audit_keep: int = 1000,
        commands_keep: int = 100,
        refusals_keep: int = 1000,
    ) -> None:
        self.clock = clock
        self.audit_keep = audit_keep
        self.commands_keep = commands_keep
        self.refusals_keep = refusals_keep
        self.once: dict[str, float] = {}  # once-only id -> until when it is refused
        self.refusal_log: list[dict[str, Any]] = []
        self.shadows: dict[str, tuple[dict[str, Any], int]] = {}  # name -> (summary, session)
        self.quorum = True
        self.clients: list[MemoryCoordinator] = []
        self.sessions: dict[int, _Session] = {}
        self._next_session = 0x1000
        self.members: dict[str, tuple[Member, int]] = {}
        self.contenders: dict[int, tuple[str, int]] = {}  # seq -> (instance, session id)
        self._next_contender = 0
        self.term = 0
        self.published: dict[str, tuple[tuple[Observation, ...], int]] = {}
        self.states: dict[str, tuple[GroupState, int]] = {}
        self.applied_states: dict[str, dict[str, Applied]] = {}
        self.commands: dict[str, Command | bytes] = {}  # bytes: a raw node (tests)
        self.results: dict[str, CommandResult] = {}
        self._next_command = 0
        self.audit_entries: list[AuditEntry] = []
        self.audit_head: tuple[int, str] = (0, GENESIS)
        self._armed: dict[Topic, set[MemoryCoordinator]] = {}

    # --- faults and time -----------------------------------------------------------------------

    def tick(self) -> None:
        """Let time pass: live clients heartbeat, silent sessions expire, clients notice."""
        now = self.clock()
        for client in self.clients:
            client._observe(now)
        self._expire_due(now)

    def lose_quorum(self) -> None:
        self.quorum = False
        self.tick()

    def restore_quorum(
        self, closed_by: float | None = None, spared: frozenset[int] = frozenset()
    ) -> None:
        """A new ZooKeeper leader serves: it tracks every session its history holds with a
        fresh timeout (ZooKeeper's `SessionTrackerImpl` is built from the data tree's sessions,
        each one's expiry set to now + its timeout).

        `closed_by`: the old leader went on expiring sessions after it lost its quorum, until
        it stepped down at `closed_by` (`Leader.lead`: syncLimit ticks without acks from a
        quorum; at once when its followers' connections reset). Each expiry is a closeSession
        proposal that it logged but could not commit; when the new quorum holds a server that
        logged them (the old leader, or a follower that stayed with it), that server has the
        newest history and the election makes it the new leader: the closes are committed.
        So the sessions unheard for more than their timeout by `closed_by` are closed, not
        renewed, except those in `spared` (its id), which the old leader heard meanwhile.

        Chosen where the real rule has more to it: a quorum formed without any of those
        servers never saw the closes, and its newer epoch truncates them when the old side
        rejoins (the world passes no `closed_by` then); the world keeps its own pick of the
        new leader (the highest id that reaches a majority), where ZooKeeper's election would
        pick a server with the closes in its log, which changes who leads, not which sessions
        end; ZooKeeper rounds each expiry up to the next tick (`ExpiryQueue`), left out here
        as everywhere in this store; and writes of clients that the old leader logged in that
        window are not kept here, though ZooKeeper commits them with the closes (the client's
        call timed out: it cannot tell)."""
        self.quorum = True
        now = self.clock()
        if closed_by is not None:
            for session in list(self.sessions.values()):
                if session.id not in spared and closed_by - session.last_heard > session.timeout_s:
                    self._drop_session(session)
        for session in self.sessions.values():
            session.last_heard = now
        self.tick()

    def expire(self, client: MemoryCoordinator) -> None:
        """Expire `client`'s session now (as the server does after the timeout)."""
        session = self.sessions.get(client._session_id or -1)
        if session is not None:
            self._drop_session(session)

    def tamper_audit(self, seq: int, payload: dict[str, object]) -> None:
        """Change a stored entry's payload behind the chain's back (for tests)."""
        self.audit_entries = [
            replace(entry, payload=dict(payload)) if entry.seq == seq else entry
            for entry in self.audit_entries
        ]

    # --- internals used by the clients ---------------------------------------------------------

    def new_session(self, timeout_s: float, now: float) -> int:
        self._next_session += 1
        self.sessions[self._next_session] = _Session(self._next_session, timeout_s, now)
        return self._next_session

    def _expire_due(self, now: float) -> None:
        if not self.quorum:
            return
        for session in list(self.sessions.values()):
            if now - session.last_heard > session.timeout_s:
                self._drop_session(session)

    def _drop_session(self, session: _Session) -> None:
        session.expired = True
        del self.sessions[session.id]
        sid = session.id
        gone_members = [name for name, (_, owner) in self.members.items() if owner == sid]
        for name in gone_members:
            del self.members[name]
        gone_contenders = [seq for seq, (_, owner) in self.contenders.items() if owner == sid]
        for seq in gone_contenders:
            del self.contenders[seq]
        for name in [n for n, (_, owner) in self.shadows.items() if owner == sid]:
            del self.shadows[name]
        gone_published = [name for name, (_, owner) in self.published.items() if owner == sid]
        for name in gone_published:
            del self.published[name]
        if gone_members:
            self.changed("members")
        if gone_contenders:
            self.changed("leadership")
        if gone_published:
            self.changed("observations")

    def arm(self, client: MemoryCoordinator, topic: Topic) -> None:
        self._armed.setdefault(topic, set()).add(client)

    def changed(self, topic: Topic) -> None:
        armed = self._armed.pop(topic, None)
        if armed:
            for client in sorted(armed, key=lambda c: c.instance):
                client._wake(topic)

    def leader_seq(self) -> int | None:
        return min(self.contenders) if self.contenders else None
