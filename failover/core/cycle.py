"""One leader cycle's inputs and collector: the `View` (a snapshot, never a live client) and
the `Cycle` that gathers one group's decisions and timers. Shared by the policy and the
operator commands without either importing the other's module at run time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from failover.core.codes import Code, DecisionKind
from failover.core.model import Applied, Decision, GroupState, Observation, PreCheck, SiteHealth


@dataclass(frozen=True, slots=True)
class View:
    """What the leader knows at `now`: a snapshot, never a live client."""

    now: float
    observations: Sequence[Observation] = ()
    applied: Mapping[tuple[str, str], Applied] = field(default_factory=dict)
    # Serving sites whose agent holds a coordinator session (None: not known, not judged).
    agents: frozenset[str] | None = None
    # Serving sites without one -> when the reader first saw it gone (`core.agent.sessions_gone`;
    # a site missing here counts from `now`).
    agents_gone_at: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Cycle:
    """Collects one cycle's decisions and timers for one group."""

    state: GroupState
    health: dict[str, SiteHealth]
    now: float
    decisions: list[Decision] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)

    def say(
        self,
        kind: DecisionKind,
        code: Code,
        sentence: str,
        *,
        checks: tuple[PreCheck, ...] = (),
        command_id: str | None = None,
        **evidence: Any,
    ) -> None:
        self.decisions.append(
            Decision(
                self.state.group,
                kind,
                code,
                sentence,
                self.state.epoch,
                evidence=dict(evidence),
                checks=checks,
                command_id=command_id,
            )
        )

    def wake(self, at: float | None) -> None:
        if at is not None and at > self.now:
            self.wakes.append(at)
