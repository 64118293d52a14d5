"""The values that cross the core's boundary: frozen snapshots in, decisions out.

Adapters (probes, coordinator, steering, simulator) build these; the core never sees a
client, a socket or a clock. Times are plain floats in seconds on one time line (`now`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from failover.core.codes import CODES, Code, DecisionKind

Verdict = Literal["up", "down", "unknown"]
# `held`: a former primary that can no longer confirm it may be one (its lease ran out, or the
# supervisor's stop hook demoted it): still preferred over any backup, never over a primary.
Announcement = Literal["primary", "held", "backup", "withdrawn"]
Phase = Literal["steady", "suspect", "switching"]
# The stages of a graceful (planned, lossless) switchover: `failover.core.graceful`.
GracefulStage = Literal["preparing", "switching", "draining", "restoring"]
Method = Literal["bgp", "dns"]
Situation = Literal[
    "healthy",
    "service_down",
    "site_down",
    "site_isolated",
    "observers_disagree",
    "no_quorum",
    "agent_lost",  # the site's agent has no coordinator session: it cannot hold primary
]
CommandKind = Literal["switchover", "freeze", "unfreeze", "note"]  # note: audit only
AUTO = "auto"  # the `by` of every decision the policy takes by itself


def target_key(site: str, service: str, endpoint: str) -> str:
    """The name of one probed thing: `dc1/app/10.1.0.10:8080`."""
    return f"{site}/{service}/{endpoint}"


def split_target(key: str) -> tuple[str, str, str]:
    site, service, endpoint = key.split("/", 2)
    return site, service, endpoint


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One raw probe result, before hysteresis."""

    ok: bool
    latency_s: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CheckState:
    """One observer's hysteresis state for one target."""

    verdict: Verdict = "unknown"
    streak: int = 0  # consecutive results that disagree with the verdict (or agree, if unknown)
    streak_ok: bool = True  # what the streak is made of
    since: float = 0.0  # when the verdict took effect
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """One observer instance's current verdict on one target, as published."""

    instance: str
    site: str  # the observer's site
    target: str  # target_key(...)
    verdict: Verdict
    since: float  # when the verdict took effect
    at: float  # when the observer last confirmed it (heartbeat); freshness is measured on it
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Applied:
    """What one site's agent has put in effect for a group, and at which epoch."""

    group: str
    site: str
    epoch: int
    announcement: Announcement
    at: float
    verified: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    """A manual choice of site; it lapses at `until` (None: until the next switchover)."""

    site: str
    until: float | None
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Command:
    """An operator request, as queued in the coordinator."""

    id: str
    kind: CommandKind
    by: str
    reason: str = ""
    group: str | None = None  # None: every group
    site: str | None = None  # switchover target
    force: bool = False
    at: float | None = None  # scheduled switchover time
    expires_s: float | None = None  # the switchover is an override that lapses
    requested_at: float = 0.0
    totp: str | None = None  # an operator's second factor, checked once by the leader
    graceful: bool | None = None  # a planned switchover that loses nothing (None: policy's)


@dataclass(frozen=True, slots=True)
class Graceful:
    """A graceful switchover while it runs: its stage and that stage's deadline
    (`failover.core.graceful` owns the rules; the group's desired state carries this)."""

    stage: GracefulStage
    method: Method
    from_site: str
    to_site: str
    at: float  # T: when the switch itself happens
    until: float  # this stage's deadline: the plan moves on by then, whatever happens
    ttl_s: int | None = None  # DNS: the TTL the records carry now (None: the configured one)
    command: Command | None = None  # the operator's command (pre-checks run again at T)


@dataclass(frozen=True, slots=True)
class GroupState:
    """The desired state of one group: written by the leader only, fenced by `epoch`.

    `epoch` grows with every change of what the sites must announce (active site or phase),
    and with every move of a graceful switchover (`graceful`, `core.graceful`).
    During `switching` no site is primary: the old one is being demoted, the new one waits.
    """

    group: str
    active: str
    epoch: int = 1
    phase: Phase = "steady"
    switch_from: str | None = None
    switch_started_at: float | None = None
    demote_by: float | None = None  # when the old primary has surely demoted itself
    suspect_since: float | None = None  # when the active site last turned down
    # When the running hold-down began (None: not running, because an automatic switch is
    # blocked now). It restarts whenever a switch stops being blocked (safety rule 7).
    hold_down_from: float | None = None
    frozen: bool = False
    frozen_by: str = ""
    frozen_reason: str = ""
    switch_times: tuple[float, ...] = ()
    last_switch_at: float | None = None
    override: Override | None = None
    scheduled: Command | None = None
    graceful: Graceful | None = None
    preferred_healthy_since: float | None = None
    reason: str = "initial state"
    code: Code = "initial"
    by: str = AUTO
    changed_at: float = 0.0

    def __post_init__(self) -> None:
        """The fields must match the phase (h11's habit: an inconsistent state is a bug)."""
        switching = self.phase == "switching"
        if switching != (self.switch_from is not None) or (
            not switching and (self.demote_by is not None or self.switch_started_at is not None)
        ):
            raise ValueError(
                f"{self.group}: phase {self.phase} with switch_from "
                f"{self.switch_from!r}, demote_by {self.demote_by!r}"
            )
        if self.switch_from is not None and self.switch_from == self.active:
            raise ValueError(f"{self.group}: switching from {self.active} to itself")
        if (self.phase == "suspect") != (self.suspect_since is not None):
            raise ValueError(
                f"{self.group}: phase {self.phase} with suspect_since {self.suspect_since!r}"
            )
        if self.phase != "suspect" and self.hold_down_from is not None:
            raise ValueError(f"{self.group}: a hold-down outside the suspect phase")
        if self.code not in CODES:
            raise ValueError(f"{self.group}: unknown reason code {self.code!r}")
        plan = self.graceful
        if plan is not None and (
            plan.from_site == plan.to_site
            or (plan.stage == "preparing" and self.active != plan.from_site)
            or (plan.stage in ("switching", "draining") and self.active != plan.to_site)
        ):
            raise ValueError(
                f"{self.group}: graceful {plan.stage} from {plan.from_site} to "
                f"{plan.to_site} with {self.active} active"
            )

    def announcement(self, site: str, backup: bool = True) -> Announcement:
        """What `site` must announce under this desired state (never two primaries).

        While switching every site announces backup, whatever `backup` says: the old primary
        is de-preferred, never withdrawn, before the new one is promoted (no blackhole).
        A graceful BGP switchover holds the old site instead, until its drain has passed.
        """
        if site == self.active and self.phase != "switching":
            return "primary"
        plan = self.graceful
        if (
            plan is not None
            and plan.method == "bgp"
            and plan.stage in ("switching", "draining")
            and site == plan.from_site
        ):
            return "held"  # a graceful switchover's old site: de-preferred, still over backup
        return "backup" if backup or self.phase == "switching" else "withdrawn"

    def primaries(self, sites: list[str]) -> list[str]:
        return [site for site in sites if self.announcement(site) == "primary"]


@dataclass(frozen=True, slots=True)
class PreCheck:
    """One safety check of a switchover: its name, pass/fail, and why."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What a cycle decided for one group, with a reason code and a sentence naming evidence.

    kind: `desired` (the group's desired state changed), `alert` (operators must look),
    `command` (an operator command's outcome), `info` (nothing changes; why).
    """

    group: str
    kind: DecisionKind
    code: Code
    sentence: str
    epoch: int
    evidence: dict[str, Any] = field(default_factory=dict)
    checks: tuple[PreCheck, ...] = ()
    command_id: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown reason code {self.code!r}")


@dataclass(frozen=True, slots=True)
class SiteHealth:
    """The verdict on one serving site for one group, with the evidence behind it."""

    site: str
    situation: Situation
    down: tuple[str, ...] = ()  # critical services down by quorum
    degraded: tuple[str, ...] = ()  # degraded-role services down (alert only)
    votes: dict[str, dict[str, Verdict]] = field(default_factory=dict)  # service -> site -> vote
    voters: int = 0  # observer sites with a fresh vote on this site
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.situation == "healthy"


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one engine cycle: new states, what was decided, when to look again."""

    states: dict[str, GroupState]
    decisions: tuple[Decision, ...]
    health: dict[str, dict[str, SiteHealth]]  # group -> site -> health
    wake_at: float | None  # the earliest time a policy timer may change a decision
    stale_at: float | None = None  # the next time an observation goes stale (its vote lapses)
