"""The `Coordinator` interface: what a daemon asks of the coordination service, and its contract.

Two implementations keep the same contract and run the same contract tests:
`ZooKeeperCoordinator` (kazoo, a real ensemble) and `MemoryCoordinator` (in memory, driven by an
injected clock, for unit tests; the simulator models coordination itself, in `failover.sim`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from failover.core.model import Applied, Command, GroupState, Observation

SessionState = Literal["connected", "suspended", "lost"]
Role = Literal["daemon", "operator", "anonymous"]
# What a wake-up is about. Callbacks only wake: the subscriber re-reads what it needs.
Topic = Literal[
    "session", "members", "leadership", "observations", "desired", "applied", "commands", "audit"
]
TOPICS: tuple[Topic, ...] = (
    "session",
    "members",
    "leadership",
    "observations",
    "desired",
    "applied",
    "commands",
    "audit",
)
NO_NODE = -1  # the expected version of a desired-state node that must not exist yet


class CoordinatorError(Exception):
    """Base of every error a coordinator raises; the message says what and why."""


class CoordinatorUnavailable(CoordinatorError):
    """No usable session: disconnected (suspended), no quorum, expired, or the call timed out.

    After a timed-out write its outcome is unknown: re-read before trying again.
    """


class NotLeader(CoordinatorError):
    """A fenced write was refused: the caller does not hold the leadership it names."""


class VersionConflict(CoordinatorError):
    """The node changed since the caller read it (expected version mismatch), or the write
    would make an epoch go backwards."""


class AlreadyDone(CoordinatorError):
    """The command already has a result: it is consumed exactly once."""


class AlreadyUsed(CoordinatorError):
    """A once-only id (an API request's signature) was used before: nothing was queued."""


class UntrustedNode(CoordinatorError):
    """A node of this cluster's layout exists with ACLs other than this cluster's (someone
    else created it before the first daemon): it is not used."""


class NotAuthorized(CoordinatorError):
    """The coordination service refused this identity (ACL)."""


class DuplicateInstance(CoordinatorError):
    """Another live session already registered this instance name."""


@dataclass(frozen=True, slots=True)
class Member:
    """One running daemon instance, as registered (ephemeral: gone with its session)."""

    instance: str
    site: str
    version: str
    roles: tuple[str, ...]
    started_at: float


@dataclass(frozen=True, slots=True)
class Leadership:
    """Who leads and under which term. Terms only grow: each win takes a new, larger one."""

    instance: str
    term: int


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The recorded outcome of one operator command (written once, by the leader)."""

    command_id: str
    ok: bool
    code: str
    sentence: str
    at: float
    leader: str
    term: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record; `hash` covers every other field, `prev_hash` chains it to the last."""

    seq: int
    at: float
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What the leader asks to append; the coordinator numbers and chains it."""

    kind: str
    payload: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What a fenced commit did: the new version of each desired state, the audit appended."""

    versions: dict[str, int] = field(default_factory=dict)
    audit: tuple[AuditEntry, ...] = ()


Callback = Callable[[Topic], None]


class Coordinator(ABC):
    """The coordination service as one daemon instance (or one operator) sees it.

    Timing: every method is synchronous and bounded: it returns or raises within the
    coordinator's `op_timeout_s` (a few seconds at most), never blocks while disconnected.
    Methods documented as "local" do no I/O and return at once.

    Sessions: `session_state()` is `connected`, `suspended` (connection lost, the session may
    still come back with everything it owned) or `lost` (the session expired or was never
    made: its ephemeral nodes — member, observations, election node — are gone). While not
    connected every call raises `CoordinatorUnavailable` and no write is sent. After `lost` the
    coordinator makes a new session by itself; the caller then calls `register()` and
    `campaign()` again (both are idempotent and cheap when nothing changed).
    Rules: suspended → the leader issues no writes and no steering changes; lost → leadership
    is gone, campaign again; agents keep steering as it is, and hold a primary (never
    withdrawn) once `lease_s` has passed since their last successful read of desired state
    on a live session (`failover.core.agent.announcement` and `lease_ends_at`).

    Errors: every error a method raises is a `CoordinatorError` (the subclasses below); no
    error of the underlying client (kazoo) ever leaves a coordinator.

    Wake-ups: `subscribe(callback)` registers a plain callable that receives a `Topic`. It is
    called on any session state change and when something read earlier may have changed
    (every read arms a one-shot watch on what it read). Callbacks carry no authority: they may
    come late, twice or spuriously; they run on the coordinator's own thread (ZooKeeper) or
    inside the call that caused them (memory) and must only wake the caller's loop, never call
    back into the coordinator.

    Consistency: reads are linearizable: a read sees every write (by anyone) that completed
    before the call began.

    Atomicity: each write is one atomic operation of the service. Fenced writes (`commit`,
    `write_desired`, `complete_command`) succeed only if, at the moment the service applies
    them, the caller's election node still exists, the term is still the caller's, and every
    desired-state node has the expected version; otherwise nothing of them is applied and
    `NotLeader` or `VersionConflict` is raised. An epoch never goes backwards.

    Access: role `daemon` reads and writes everything; `operator` reads everything and creates
    commands only (without `once`); anyone else gets `NotAuthorized` on every node.
    """

    instance: str
    role: Role

    # --- session ---------------------------------------------------------------------------

    @abstractmethod
    def connect(self, timeout_s: float = 10.0) -> Self:
        """Start the session (once; calling again only waits) and return self; raise
        `CoordinatorUnavailable` if not connected within `timeout_s`. The client keeps trying
        in the background after that, so a caller may go on and retry its calls later."""

    @abstractmethod
    def session_state(self) -> SessionState:
        """Local. The current session state."""

    @abstractmethod
    def disconnected_since(self) -> float | None:
        """Local. When (on this coordinator's clock) the session last stopped being connected;
        None while connected. Agents measure their lease on it."""

    @abstractmethod
    def subscribe(self, callback: Callback) -> None:
        """Local. Call `callback(topic)` on session changes and on watched changes."""

    @abstractmethod
    def close(self) -> None:
        """End the session now (ephemeral nodes go at once: a clean stop). Idempotent."""

    # --- membership --------------------------------------------------------------------------

    @abstractmethod
    def register(self, member: Member) -> None:
        """Create (or refresh) this instance's ephemeral member node. Idempotent.
        Raises `DuplicateInstance` if another live session holds the name."""

    @abstractmethod
    def members(self) -> dict[str, Member]:
        """Every registered instance. Arms a `members` watch."""

    # --- election ----------------------------------------------------------------------------

    @abstractmethod
    def campaign(self) -> Leadership | None:
        """Join the election if not in it (idempotent; one bounded round trip when nothing
        changed) and return this instance's leadership if it leads now, else None. A win takes
        a new term, larger than any before. Arms a `leadership` watch."""

    @abstractmethod
    def leadership(self) -> Leadership | None:
        """Local. This instance's leadership as known now: None when not leading, when the
        session is suspended or lost, or once its election node is gone (learnt from a watch
        at once)."""

    @abstractmethod
    def leader(self) -> Leadership | None:
        """Who leads, as any member sees it (the term may lag a new leader's first round
        trip). Arms a `leadership` watch."""

    @abstractmethod
    def resign(self) -> None:
        """Leave the election (a clean hand-over: the next contender leads at once)."""

    # --- observations ------------------------------------------------------------------------

    @abstractmethod
    def publish(self, observations: Sequence[Observation]) -> None:
        """Replace this instance's published verdicts (ephemeral node). Callers publish on
        change and as a heartbeat; freshness is read from `Observation.at`."""

    @abstractmethod
    def observations(self) -> list[Observation]:
        """Every instance's published verdicts. Arms an `observations` watch."""

    # --- desired and applied state -----------------------------------------------------------

    @abstractmethod
    def desired(self, group: str) -> tuple[GroupState | None, int]:
        """The group's desired state and its node version (`NO_NODE` when absent).
        Arms a `desired` watch."""

    @abstractmethod
    def commit(
        self,
        leadership: Leadership,
        *,
        desired: Sequence[tuple[GroupState, int]] = (),
        results: Sequence[CommandResult] = (),
        audit: Sequence[AuditRecord] = (),
    ) -> CommitResult:
        """Fenced and atomic: write desired states (each with the version it was read at, or
        `NO_NODE`), record command results (each at most once, else `AlreadyDone`) and append
        audit records, all or nothing, only while `leadership` is this instance's current one."""

    def write_desired(self, leadership: Leadership, state: GroupState, version: int) -> int:
        """Fenced write of one desired state; returns the node's new version."""
        return self.commit(leadership, desired=[(state, version)]).versions[state.group]

    @abstractmethod
    def report_applied(self, applied: Applied) -> None:
        """This site's agent records what it put in effect (not fenced; last write wins)."""

    @abstractmethod
    def applied(self, group: str) -> dict[str, Applied]:
        """What each site's agent applied for the group, by site. Arms an `applied` watch."""

    def groups(
        self, names: Sequence[str]
    ) -> dict[str, tuple[GroupState | None, int, dict[str, Applied]]]:
        """For each group: `desired()`'s state and version and `applied()`, as those calls
        give them (and arming the same watches); an implementation may read all groups at
        once (ZooKeeper pipelines them: two round trips instead of three per group)."""
        out: dict[str, tuple[GroupState | None, int, dict[str, Applied]]] = {}
        for name in names:
            state, version = self.desired(name)
            out[name] = (state, version, self.applied(name))
        return out

    # --- operator commands -------------------------------------------------------------------

    @abstractmethod
    def submit(self, command: Command, once: str | None = None, once_until: float = 0.0) -> str:
        """Queue a command (operators and daemons); returns its id (`cmd-0000000007`; an
        operator's in ZooKeeper `alice.cmd-0000000007`, alice's folder), which orders the
        commands of one queue; `pending_commands` lists them in the order they were queued.
        The command's own `id` field is replaced by it.

        `once` (daemons only): an id that may be used once (the API passes an accepted
        request's signature). It is recorded in the same atomic write that queues the
        command, and while `once_until` (epoch seconds on the coordinator's clock) has not
        passed, a second submit with it raises `AlreadyUsed` and queues nothing, whichever
        client of the cluster makes it and across restarts. Expired ids are dropped (bounded
        space)."""

    @abstractmethod
    def pending_commands(self) -> list[Command]:
        """Commands without a result, oldest first. Arms a `commands` watch. A node that is
        not a valid command comes back as a note from `commands.MALFORMED_BY` naming the
        problem (never an exception): the leader consumes it as refused."""

    @abstractmethod
    def command_result(self, command_id: str) -> CommandResult | None:
        """The recorded result of a command, or None while it is pending."""

    def complete_command(self, leadership: Leadership, result: CommandResult) -> None:
        """Fenced: record one command's result (exactly once)."""
        self.commit(leadership, results=[result])

    # --- audit ---------------------------------------------------------------------------------

    @abstractmethod
    def audit(self, limit: int | None = None) -> list[AuditEntry]:
        """The retained audit entries, oldest first (the newest `limit` if given)."""

    @abstractmethod
    def audit_head(self) -> tuple[int, str]:
        """The (seq, hash) of the newest entry ever appended ((0, GENESIS) when none): with
        `coord.audit.verify_chain` it also detects entries cut from the end."""

    # --- refused API requests --------------------------------------------------------------------

    @abstractmethod
    def record_refusals(self, summary: dict[str, Any]) -> None:
        """Daemons only. Append one summary of refused API requests (counts per source and
        reason over an interval). Kept apart from the audit trail, with its own retention
        (`refusals_keep`, the oldest dropped first), so that no flood of refusals can push a
        decision, command or accepted request out of the audit trail."""

    @abstractmethod
    def refusals(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The retained refusal summaries, oldest first (the newest `limit` if given)."""

    @abstractmethod
    def announce_shadow(self, name: str, summary: dict[str, Any]) -> None:
        """Operators (and daemons). Say that a shadow (`failover shadow`, a candidate config
        run beside the live leader) named `name` is attached, and how far it diverges. The
        node lives as long as this session (ephemeral); calling again updates it."""

    @abstractmethod
    def shadows(self) -> dict[str, dict[str, Any]]:
        """Every attached shadow's latest summary, by name."""
