"""ZooKeeper in the simulated world: `MemoryStore` on the world's clock, one `MemoryCoordinator`
client per daemon process.

The world decides only reachability: a client hears the ensemble while its process runs, the
ensemble has a serving quorum, and its site reaches a site of that quorum (`link_up`, set by
`World`). Sessions then follow the store's rules, as ZooKeeper's: a client that is not heard
for its session timeout loses its session and every ephemeral node with it (an expiry is
checked at the instant it falls due), without a quorum nothing expires, and a new quorum gives
every session a fresh timeout, but for the closes the old leader logged before it stepped
down (`MemoryStore.restore_quorum`). A killed process was last heard at its last packet
(`Clients.last_packet`). The observers publish through their clients as the daemon does;
their heartbeats are published when a leader reads (`failover.sim.observers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from failover.coord.base import (
    AuditRecord,
    CommandResult,
    CommitResult,
    CoordinatorUnavailable,
    Leadership,
    SessionState,
    Topic,
)
from failover.coord.memory import MemoryCoordinator, MemoryStore
from failover.coord.memory_store import _Session
from failover.core.model import GroupState, Observation

if TYPE_CHECKING:
    from failover.sim.world import World

# A leader's commit as it leaves for the coordinator: leadership, desired, results, audit.
StaleCommit = tuple[
    Leadership,
    Sequence[tuple[GroupState, int]],
    Sequence[CommandResult],
    Sequence[AuditRecord],
]
EXPIRY_MARGIN_S = 1e-6  # a session expires once unheard for strictly more than its timeout


class SimStore(MemoryStore):
    def __init__(self, world: World) -> None:
        super().__init__(lambda: world.now)
        self.world = world
        self.owner: dict[int, str] = {}  # session id -> instance
        self._due: set[float] = set()
        self._next_session = 0  # session ids 1, 2, ... in the trace

    def _expire_due(self, now: float) -> None:
        """Sessions expire only at `tick()`, which the world calls at every instant one falls
        due (`arm_expiries`): a reachable client heartbeats all the time, and is heard first."""

    def tick(self) -> None:
        now = self.clock()
        for client in self.clients:
            client._observe(now)
        MemoryStore._expire_due(self, now)

    def _drop_session(self, session: _Session) -> None:
        self.world.log("session", f"{self.owner.pop(session.id, '?')} session {session.id} expired")
        super()._drop_session(session)

    def last_heard(self, client: MemoryCoordinator, when: float) -> None:
        """`client`'s process was killed: the ensemble heard it last at `when` (its last
        packet), if not earlier (it was cut off or frozen before)."""
        session = self.sessions.get(client._session_id or -1)
        if session is not None:
            session.last_heard = min(session.last_heard, when)

    def changed(self, topic: Topic) -> None:
        if topic == "leadership":
            self.world.control.leader_changed()
        super().changed(topic)

    def disarm(self, client: MemoryCoordinator, topic: Topic) -> None:
        """`client` is not woken by `topic`'s next change (it reads the change itself)."""
        armed = self._armed.get(topic)
        if armed is not None:
            armed.discard(client)

    def arm_expiries(self) -> None:
        """Check each unheard session at the instant its timeout runs out."""
        if not self.quorum:
            return
        heard = {c._session_id for c in self.clients if c._reachable()}
        for session in self.sessions.values():
            if session.id in heard:
                continue
            when = session.last_heard + session.timeout_s + EXPIRY_MARGIN_S
            if when not in self._due:
                self._due.add(when)
                self.world.at(when, self._expiry_due, when)

    def _expiry_due(self, when: float) -> None:
        self._due.discard(when)
        self.tick()
        self.arm_expiries()


class SimClient(MemoryCoordinator):
    """One process's client; `link_up` is the world's answer to "can it reach the quorum"."""

    store: SimStore

    def __init__(self, store: SimStore, instance: str, timeout_s: float, role: str = "daemon"):
        self.link_up = False
        self.connected_at = 0.0  # when its session was last (re)connected: a packet
        # `stale_writer`: called with a commit before it is sent; True: the process froze
        # before sending it (the call fails here, the commit is sent when it resumes).
        self.before_commit: Callable[[StaleCommit], bool] | None = None
        super().__init__(store, instance, role, session_timeout_s=timeout_s)  # type: ignore[arg-type]

    def _reachable(self) -> bool:
        return self.link_up and not (self.paused or self.closed) and self.store.quorum

    def _set_state(self, state: SessionState, now: float) -> None:
        if state == "connected":
            self.connected_at = now
        old = self._state
        if state != old and self.role == "daemon":
            world = self.store.world
            sid = self._session_id
            if state == "connected" and sid is not None:
                if sid in self.store.owner:
                    world.log("session", f"{self.instance} reconnected (session {sid})")
                else:
                    self.store.owner[sid] = self.instance
                    world.log("session", f"{self.instance} new session {sid}")
            elif state == "suspended":
                world.log("session", f"{self.instance} disconnected (session suspended)")
            elif state == "lost" and old == "suspended":
                world.log("session", f"{self.instance} session lost")
        super()._set_state(state, now)

    def observations(self) -> list[Observation]:
        self._enter()
        self.store.world.observers.heartbeats(self)
        return super().observations()

    def commit(
        self,
        leadership: Leadership,
        *,
        desired: Sequence[tuple[GroupState, int]] = (),
        results: Sequence[CommandResult] = (),
        audit: Sequence[AuditRecord] = (),
    ) -> CommitResult:
        if self.before_commit is not None and self.before_commit(
            (leadership, desired, results, audit)
        ):
            raise CoordinatorUnavailable(f"{self.instance}: the process froze before its commit")
        states = self.store.states
        before = {
            state.group: states[state.group][0] for state, _ in desired if state.group in states
        }
        done = super().commit(leadership, desired=desired, results=results, audit=audit)
        self.store.world.control.committed(self.instance, before, desired, audit)
        return done
