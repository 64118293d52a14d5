"""`MemoryCoordinator`: the `Coordinator` contract in memory, on an injected clock, for unit tests.

No threads, no real time: time comes from the injected `clock`. Several clients (one per
instance) share one `MemoryStore`, which plays the ZooKeeper ensemble: sessions expire when a
client has not been heard for its session timeout (measured at `tick()` and at every call),
quorum can be lost and restored, a client can be paused (a frozen process) or cut off.
Everything is deterministic: the same calls in the same order give the same results.

How faults look, as with ZooKeeper: without quorum (or cut off) every call raises
`CoordinatorUnavailable` and the client turns `suspended`; without quorum no session expires
and, when quorum returns, every session's timeout starts afresh (but for the sessions the
old leader closed before it stepped down, when the world says so:
`MemoryStore.restore_quorum`). A paused client sees nothing and is heard by nobody; once
resumed, it learns at its next call or tick that its session expired (`lost`), and gets a
new session at the following one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Self

from failover.coord.audit import chain
from failover.coord.base import (
    NO_NODE,
    AlreadyDone,
    AlreadyUsed,
    AuditEntry,
    AuditRecord,
    Callback,
    CommandResult,
    CommitResult,
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    DuplicateInstance,
    Leadership,
    Member,
    NotAuthorized,
    NotLeader,
    Role,
    SessionState,
    Topic,
    VersionConflict,
)
from failover.coord.commands import check_once, parse_command, stamped
from failover.coord.memory_store import MemoryStore as MemoryStore
from failover.core.model import Applied, Command, GroupState, Observation


class MemoryCoordinator(Coordinator):
    """One instance's (or operator's) client of a `MemoryStore`."""

    def __init__(
        self,
        store: MemoryStore,
        instance: str,
        role: Role = "daemon",
        *,
        session_timeout_s: float = 4.0,
    ) -> None:
        self.store = store
        self.instance = instance
        self.role = role
        self.session_timeout_s = session_timeout_s
        self.paused = False
        self.cut_off = False
        self.closed = False
        self._callbacks: list[Callback] = []
        self._state: SessionState = "lost"
        self._disconnected_since: float | None = store.clock()
        self._session_id: int | None = None
        self._had_session = False
        self._contender: int | None = None
        self._leadership: Leadership | None = None
        self._member: Member | None = None
        store.clients.append(self)
        self._observe(store.clock())

    # --- faults --------------------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze this client, as SIGSTOP freezes its process: it neither hears nor is heard."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def cut(self) -> None:
        """Cut this client off the service (its network); it turns suspended at once."""
        self.cut_off = True
        self._observe(self.store.clock())

    def heal(self) -> None:
        self.cut_off = False
        self._observe(self.store.clock())

    # --- session -------------------------------------------------------------------------------

    def connect(self, timeout_s: float = 10.0) -> Self:
        """The in-memory session starts with the client: nothing to start, nothing to wait for
        (time is the store's clock); says only whether it is connected now."""
        if self._state != "connected":
            raise CoordinatorUnavailable(f"{self.instance}: session {self._state}")
        return self

    def session_state(self) -> SessionState:
        return self._state

    def disconnected_since(self) -> float | None:
        return self._disconnected_since

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        if self.closed:
            return
        session = self.store.sessions.get(self._session_id or -1)
        if session is not None:
            self.store._drop_session(session)
        self.closed = True
        self._session_id = None
        self._set_state("lost", self.store.clock())
        if self in self.store.clients:
            self.store.clients.remove(self)

    def _reachable(self) -> bool:
        return not (self.paused or self.cut_off or self.closed) and self.store.quorum

    def _observe(self, now: float) -> None:
        """What the client's connection thread would see now."""
        if self.paused or self.closed:
            return
        if not self._reachable():
            if self._state == "connected":
                self._set_state("suspended", now)
            return
        session = self.store.sessions.get(self._session_id or -1)
        if session is None:
            if self._state != "lost":
                self._set_state("lost", now)
                return
            self._session_id = self.store.new_session(self.session_timeout_s, now)
            self._had_session = True
            self._set_state("connected", now)
            return
        session.last_heard = now
        if self._state != "connected":
            self._set_state("connected", now)

    def _set_state(self, state: SessionState, now: float) -> None:
        if state == self._state:
            return
        if state == "lost":
            self._contender = None
            self._leadership = None
            self._member = None
        if state == "connected":
            self._disconnected_since = None
        elif self._disconnected_since is None:
            self._disconnected_since = now
        self._state = state
        self._wake("session")

    def _wake(self, topic: Topic) -> None:
        for callback in list(self._callbacks):
            callback(topic)

    def _enter(self, need: str = "read") -> int:
        """Start a call: reach the service or raise; returns the session id."""
        if self.closed:
            raise CoordinatorUnavailable(f"{self.instance}: the coordinator is closed")
        if self.paused:
            raise CoordinatorUnavailable(f"{self.instance}: the process is paused")
        now = self.store.clock()
        self.store._expire_due(now)
        self._observe(now)
        if self._state != "connected" or self._session_id is None:
            why = "no quorum" if not self.store.quorum else f"session {self._state}"
            raise CoordinatorUnavailable(f"{self.instance}: {why}")
        if self.role == "anonymous" or (need == "write" and self.role != "daemon"):
            raise NotAuthorized(f"{self.instance}: role {self.role} may not {need} here")
        return self._session_id

    # --- membership ----------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        sid = self._enter("write")
        held = self.store.members.get(member.instance)
        if held is not None and held[1] != sid:
            raise DuplicateInstance(
                f"instance {member.instance!r} is registered by another session"
            )
        if held is None or held[0] != member:
            self.store.members[member.instance] = (member, sid)
            self.store.changed("members")
        self._member = member

    def members(self) -> dict[str, Member]:
        self._enter()
        self.store.arm(self, "members")
        return {name: member for name, (member, _) in sorted(self.store.members.items())}

    # --- election ------------------------------------------------------------------------------

    def campaign(self) -> Leadership | None:
        sid = self._enter("write")
        store = self.store
        if self._contender is None or self._contender not in store.contenders:
            self._leadership = None
            store._next_contender += 1
            self._contender = store._next_contender
            store.contenders[self._contender] = (self.instance, sid)
            store.changed("leadership")
        store.arm(self, "leadership")
        if store.leader_seq() != self._contender:
            return None
        if self._leadership is None:
            store.term += 1
            self._leadership = Leadership(self.instance, store.term)
            store.changed("leadership")
        return self._leadership

    def leadership(self) -> Leadership | None:
        if self._state != "connected" or self._leadership is None:
            return None
        if self._contender not in self.store.contenders:
            self._leadership = None  # the election node is gone: deposed
        return self._leadership

    def leader(self) -> Leadership | None:
        self._enter()
        self.store.arm(self, "leadership")
        seq = self.store.leader_seq()
        if seq is None:
            return None
        return Leadership(self.store.contenders[seq][0], self.store.term)

    def resign(self) -> None:
        self._enter("write")
        if self._contender is not None and self._contender in self.store.contenders:
            del self.store.contenders[self._contender]
            self.store.changed("leadership")
        self._contender = None
        self._leadership = None

    # --- observations --------------------------------------------------------------------------

    def publish(self, observations: Sequence[Observation]) -> None:
        sid = self._enter("write")
        self.store.published[self.instance] = (tuple(observations), sid)
        self.store.changed("observations")

    def observations(self) -> list[Observation]:
        self._enter()
        self.store.arm(self, "observations")
        found: list[Observation] = []
        for name in sorted(self.store.published):
            found.extend(self.store.published[name][0])
        return found

    # --- desired and applied state -------------------------------------------------------------

    def desired(self, group: str) -> tuple[GroupState | None, int]:
        self._enter()
        self.store.arm(self, "desired")
        held = self.store.states.get(group)
        return (None, NO_NODE) if held is None else held

    def commit(
        self,
        leadership: Leadership,
        *,
        desired: Sequence[tuple[GroupState, int]] = (),
        results: Sequence[CommandResult] = (),
        audit: Sequence[AuditRecord] = (),
    ) -> CommitResult:
        self._enter("write")
        store = self.store
        if (
            self._leadership != leadership
            or self._contender not in store.contenders
            or store.term != leadership.term
        ):
            self._leadership = None if self._contender not in store.contenders else self._leadership
            raise NotLeader(f"{self.instance}: does not hold {leadership}")
        for state, version in desired:
            held = store.states.get(state.group)
            held_version = NO_NODE if held is None else held[1]
            if held_version != version:
                raise VersionConflict(
                    f"desired state of {state.group}: version {held_version}, expected {version}"
                )
            if held is not None and state.epoch < held[0].epoch:
                raise VersionConflict(
                    f"desired state of {state.group}: epoch {state.epoch} < {held[0].epoch}"
                )
        for result in results:
            if result.command_id in store.results:
                raise AlreadyDone(f"command {result.command_id} already has a result")
            if result.command_id not in store.commands:
                raise VersionConflict(f"command {result.command_id} does not exist")
        versions: dict[str, int] = {}
        for state, version in desired:
            versions[state.group] = version + 1
            store.states[state.group] = (state, version + 1)
        for result in results:
            store.results[result.command_id] = result
        entries = chain(audit, *store.audit_head)
        if entries:
            store.audit_entries.extend(entries)
            store.audit_head = (entries[-1].seq, entries[-1].hash)
            del store.audit_entries[: max(0, len(store.audit_entries) - store.audit_keep)]
        self._prune_commands()
        if desired:
            store.changed("desired")
        if results:
            store.changed("commands")
        if entries:
            store.changed("audit")
        return CommitResult(versions=versions, audit=tuple(entries))

    def _prune_commands(self) -> None:
        store = self.store
        done = [cid for cid in sorted(store.commands) if cid in store.results]
        for cid in done[: max(0, len(done) - store.commands_keep)]:
            del store.commands[cid]
            del store.results[cid]

    def report_applied(self, applied: Applied) -> None:
        self._enter("write")
        self.store.applied_states.setdefault(applied.group, {})[applied.site] = applied
        self.store.changed("applied")

    def applied(self, group: str) -> dict[str, Applied]:
        self._enter()
        self.store.arm(self, "applied")
        return dict(sorted(self.store.applied_states.get(group, {}).items()))

    # --- operator commands ---------------------------------------------------------------------

    def submit(self, command: Command, once: str | None = None, once_until: float = 0.0) -> str:
        self._enter("submit")
        if self.role not in ("daemon", "operator") or (once and self.role != "daemon"):
            raise NotAuthorized(f"{self.instance}: role {self.role} may not submit this")
        store = self.store
        if once is not None:
            now = store.clock()
            for used in [k for k, until in store.once.items() if until <= now]:
                del store.once[used]
            if check_once(once) in store.once:
                raise AlreadyUsed("this request was already used")
            store.once[once] = once_until
        if self.role == "operator":  # by this client's identity, as a ZooKeeper folder says
            command = stamped(f"{self.instance}.cmd", command)
        return self.submit_raw(replace(command, id=""))

    def submit_raw(self, command: Command | bytes) -> str:
        """Queue a command, or a node's raw bytes (as a careless operator tool might)."""
        command_id = f"cmd-{self.store._next_command:010d}"
        self.store._next_command += 1
        self.store.commands[command_id] = (
            command if isinstance(command, bytes) else replace(command, id=command_id)
        )
        self.store.changed("commands")
        return command_id

    def pending_commands(self) -> list[Command]:
        self._enter()
        self.store.arm(self, "commands")
        return [
            parse_command(cid, command) if isinstance(command, bytes) else command
            for cid, command in sorted(self.store.commands.items())
            if cid not in self.store.results
        ]

    def command_result(self, command_id: str) -> CommandResult | None:
        self._enter()
        return self.store.results.get(command_id)

    # --- audit ---------------------------------------------------------------------------------

    def audit(self, limit: int | None = None) -> list[AuditEntry]:
        self._enter()
        self.store.arm(self, "audit")
        entries = list(self.store.audit_entries)
        return entries if limit is None else entries[-limit:] if limit > 0 else []

    def audit_head(self) -> tuple[int, str]:
        """The (seq, hash) of the newest entry ever appended."""
        self._enter()
        return self.store.audit_head

    # --- refused API requests ------------------------------------------------------------------

    def record_refusals(self, summary: dict[str, Any]) -> None:
        self._enter("write")
        log = self.store.refusal_log
        log.append(dict(summary))
        del log[: max(0, len(log) - self.store.refusals_keep)]

    def refusals(self, limit: int | None = None) -> list[dict[str, Any]]:
        self._enter()
        found = list(self.store.refusal_log)
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def announce_shadow(self, name: str, summary: dict[str, Any]) -> None:
        sid = self._enter("submit")
        if self.role not in ("daemon", "operator"):
            raise NotAuthorized(f"{self.instance}: role {self.role} may not announce a shadow")
        held = self.store.shadows.get(name)
        if held is not None and held[1] != sid:
            raise CoordinatorError(f"shadow {name!r} is announced by another session")
        self.store.shadows[name] = (dict(summary), sid)

    def shadows(self) -> dict[str, dict[str, Any]]:
        self._enter()
        return {name: dict(summary) for name, (summary, _) in sorted(self.store.shadows.items())}
