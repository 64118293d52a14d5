"""The group policy: which site is active, when to move, and why.

`Engine.step(states, view)` is the leader's cycle: (desired states, observations, applied
states, now) -> (new desired states, decisions, when to look again). It never reads a clock
and does no I/O; the daemon and the simulator run this same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from failover.config.model import BgpSteering, Config
from failover.core import commands
from failover.core.health import Layout, assess, index, stale_at
from failover.core.model import (
    AUTO,
    Applied,
    Command,
    Decision,
    GroupState,
    Observation,
    Override,
    PreCheck,
    SiteHealth,
    Step,
)
from failover.core.transitions import transition

HOUR_S = 3600.0
TRIGGERS = ("service_down", "site_down", "agent_lost")


@dataclass(frozen=True, slots=True)
class View:
    """What the leader knows at `now`: a snapshot, never a live client."""

    now: float
    observations: Sequence[Observation] = ()
    applied: Mapping[tuple[str, str], Applied] = field(default_factory=dict)
    # Serving sites whose agent holds a coordinator session (None: not known, not judged).
    agents: frozenset[str] | None = None


@dataclass(slots=True)
class Cycle:
    """Collects one cycle's decisions and timers for one group."""

    state: GroupState
    health: dict[str, SiteHealth]
    now: float
    decisions: list[Decision] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)

    def say(self, kind: str, code: str, sentence: str, *, checks: tuple[PreCheck, ...] = (),
            command_id: str | None = None, **evidence: Any) -> None:
        self.decisions.append(Decision(
            self.state.group, kind, code, sentence, self.state.epoch,  # type: ignore[arg-type]
            evidence=dict(evidence), checks=checks, command_id=command_id))

    def wake(self, at: float | None) -> None:
        if at is not None and at > self.now:
            self.wakes.append(at)


class Engine:
    """The decision rules of one cluster; holds nothing but what the config implies."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.layout = Layout(config)
        self.policy = config.policy
        self.session_timeout_s = config.cluster.zookeeper.session_timeout_s

    # --- public -------------------------------------------------------------------------

    def initial(self, group: str, now: float) -> GroupState:
        return GroupState(group=group, active=self.config.preferred_site(group),
                          changed_at=now, reason="initial state: the preferred site")

    def assess(self, view: View) -> dict[str, dict[str, SiteHealth]]:
        fresh = index(view.observations, view.now, self.layout.stale_after_s)
        health = {group: assess(self.layout, group, fresh) for group in self.config.groups}
        if view.agents is not None:
            for group, sites in health.items():
                if not self.uses_demotion(group):
                    continue  # DNS is steered by the leader: a site's agent does not matter
                for site in self.layout.serving:
                    if site not in view.agents:
                        sites[site] = replace(sites[site], situation="agent_lost", detail=(
                            f"{site} has no agent with a coordinator session; it cannot hold "
                            "primary"))
        return health

    def step(self, states: Mapping[str, GroupState], view: View) -> Step:
        health = self.assess(view)
        new_states: dict[str, GroupState] = {}
        decisions: list[Decision] = []
        wakes: list[float] = []
        for group in self.config.groups:
            state = states.get(group) or self.initial(group, view.now)
            cycle = Cycle(state, health[group], view.now)
            self._decide(cycle, view)
            new_states[group] = cycle.state
            decisions += cycle.decisions
            wakes += cycle.wakes
        stale = stale_at(view.observations, view.now, self.layout.stale_after_s)
        return Step(new_states, tuple(decisions), health, min(wakes) if wakes else None, stale)

    def command(self, states: Mapping[str, GroupState], command: Command, view: View) -> Step:
        """Carry out one operator command; its outcome is a `command` decision per group."""
        return commands.apply(self, states, command, view)

    def demote_wait_s(self, group: str) -> float:
        """How long the leader waits for an unconfirmed demotion: the old agent's session
        must expire and then its lease run out before it surely announces backup."""
        return self.session_timeout_s + self.config.lease_s(group)

    def uses_demotion(self, group: str) -> bool:
        return isinstance(self.config.groups[group].steering, BgpSteering)

    # --- the cycle ------------------------------------------------------------------------

    def _decide(self, cycle: Cycle, view: View) -> None:
        state = cycle.state
        if state.phase == "switching":
            self._finish_switch(cycle, view)
            return
        if state.override and state.override.until is not None:
            if cycle.now >= state.override.until:
                self._override_lapsed(cycle)
                return
            cycle.wake(state.override.until)
        if state.scheduled is not None and commands.run_scheduled(self, cycle):
            return
        active = cycle.health[state.active]
        if active.situation in TRIGGERS:
            self._active_down(cycle, active)
            return
        if state.phase == "suspect":
            cycle.state = replace(state, phase=transition(state.phase, "recover"),
                                  suspect_since=None)
            cycle.say("info", "recovered",
                      f"{state.active} no longer down ({active.situation}: {active.detail}); "
                      "hold-down cancelled")
            return
        if active.situation != "healthy":
            cycle.say("info", f"active_{active.situation}",
                      f"{state.active}: {active.situation.replace('_', ' ')} "
                      f"({active.detail}); nothing moves")
        self._failback(cycle)

    def _active_down(self, cycle: Cycle, active: SiteHealth) -> None:
        state, now = cycle.state, cycle.now
        if state.phase == "steady":
            cycle.state = state = replace(state, phase=transition(state.phase, "suspect"),
                                          suspect_since=now)
        since = state.suspect_since if state.suspect_since is not None else now
        evidence = f"{active.detail} for {now - since:.1f} s"
        if now - since < self.policy.hold_down_s:
            cycle.wake(since + self.policy.hold_down_s)
            cycle.say("info", "hold_down",
                      f"{evidence}; hold-down {self.policy.hold_down_s:g} s",
                      situation=active.situation, down=list(active.down))
            return
        target = self.layout.other(state.active)
        blocked = self._auto_blocked(cycle, target)
        if blocked is not None:
            code, why = blocked
            cycle.say("alert", code, f"{evidence}; not failing over to {target}: {why}",
                      situation=active.situation, down=list(active.down))
            return
        demote_by = None
        if active.situation == "agent_lost":
            # Its session expired by `since`, so its lease began before that and has run out
            # `lease_s` after it at the latest.
            demote_by = since + self.config.lease_s(state.group)
        self.begin_switch(cycle, target, "failover", f"{evidence}; failing over to {target}",
                          AUTO, demote_by=demote_by, situation=active.situation,
                          down=list(active.down))

    def _auto_blocked(self, cycle: Cycle, target: str) -> tuple[str, str] | None:
        """Why an automatic switch to `target` may not happen now (None: it may)."""
        state, now = cycle.state, cycle.now
        health = cycle.health[target]
        if not health.healthy:
            if cycle.health[state.active].situation in TRIGGERS and health.situation in TRIGGERS:
                return "fail_open", (f"{target} is unhealthy too ({health.detail}); staying on "
                                     f"{state.active} so that a site keeps serving")
            return "target_unhealthy", f"{target} is {health.situation} ({health.detail})"
        if state.frozen:
            return "frozen", f"automation frozen by {state.frozen_by} ({state.frozen_reason})"
        if state.last_switch_at is not None and now - state.last_switch_at < self.policy.cooldown_s:
            until = state.last_switch_at + self.policy.cooldown_s
            cycle.wake(until)
            return "cooldown", f"cooling down for {until - now:.1f} s more"
        used = self.switches_last_hour(state, now)
        if used >= self.policy.max_switches_per_hour:
            cycle.wake(min(t for t in state.switch_times if t > now - HOUR_S) + HOUR_S)
            return "budget", f"{used} switches in the last hour (budget {self.budget})"
        return None

    @property
    def budget(self) -> int:
        return self.policy.max_switches_per_hour

    def switches_last_hour(self, state: GroupState, now: float) -> int:
        return sum(1 for t in state.switch_times if t > now - HOUR_S)

    def begin_switch(self, cycle: Cycle, target: str, code: str, sentence: str, by: str,
                     demote_by: float | None = None, **evidence: Any) -> None:
        """Move the group towards `target`: demote first (BGP), or at once (DNS).

        `demote_by`: when the old primary has surely demoted itself if it never confirms
        (default: its session must expire and then its lease run out, from now)."""
        state, now = cycle.state, cycle.now
        direct = not self.uses_demotion(state.group)
        deadline = now + self.demote_wait_s(state.group)
        if demote_by is not None:
            deadline = min(deadline, demote_by)
        cycle.state = replace(
            state,
            phase=transition(state.phase, "switch_direct" if direct else "switch"),
            active=target,
            switch_from=None if direct else state.active,
            switch_started_at=None if direct else now,
            demote_by=None if direct else deadline,
            epoch=state.epoch + 1,
            suspect_since=None,
            preferred_healthy_since=None,
            switch_times=tuple(t for t in state.switch_times if t > now - HOUR_S) + (now,),
            last_switch_at=now,
            reason=sentence, code=code, by=by, changed_at=now,
        )
        tail = (f"epoch {cycle.state.epoch}" if direct else
                f"demoting {state.active} first, epoch {cycle.state.epoch}")
        cycle.say("desired", code, f"{sentence}, {tail}", by=by, **evidence)
        if not direct:
            cycle.wake(deadline)

    def _finish_switch(self, cycle: Cycle, view: View) -> None:
        state, now = cycle.state, cycle.now
        old = state.switch_from or ""
        applied = view.applied.get((state.group, old))
        confirmed = (applied is not None and applied.epoch >= state.epoch
                     and applied.announcement != "primary")
        started = state.switch_started_at if state.switch_started_at is not None else now
        deadline = (state.demote_by if state.demote_by is not None
                    else started + self.demote_wait_s(state.group))
        if not confirmed and now < deadline:
            cycle.wake(deadline)
            cycle.say("info", "awaiting_demotion",
                      f"waiting for {old} to confirm its demotion (epoch {state.epoch}); "
                      f"its lease surely ends in {deadline - now:.1f} s")
            return
        why = (f"{old} confirmed backup at epoch {applied.epoch}" if confirmed and applied
               else f"{old} did not confirm; its lease surely expired after "
                    f"{deadline - started:g} s")
        cycle.state = replace(state, phase=transition(state.phase, "promote"),
                              epoch=state.epoch + 1, switch_from=None, switch_started_at=None,
                              demote_by=None,
                              code="promoted", reason=f"{why}; {state.active} promoted",
                              changed_at=now)
        cycle.say("desired", "promoted",
                  f"{why}; promoting {state.active} to primary, epoch {cycle.state.epoch}",
                  confirmed=confirmed)

    def _override_lapsed(self, cycle: Cycle) -> None:
        state = cycle.state
        assert state.override is not None
        lapsed = state.override
        cycle.state = state = replace(state, override=None)
        preferred = self.config.preferred_site(state.group)
        if state.active == preferred:
            cycle.say("info", "override_lapsed", f"override to {lapsed.site} lapsed")
            return
        blocked = self._auto_blocked(cycle, preferred)
        if blocked is not None and blocked[0] != "cooldown":
            cycle.say("alert", blocked[0],
                      f"override to {lapsed.site} lapsed; staying on {state.active}: {blocked[1]}")
            return
        self.begin_switch(cycle, preferred, "override_lapsed",
                          f"override to {lapsed.site} by {lapsed.by} lapsed; back to {preferred}",
                          AUTO)

    def _failback(self, cycle: Cycle) -> None:
        state, now = cycle.state, cycle.now
        preferred = self.config.preferred_site(state.group)
        if (self.policy.failback != "auto" or state.active == preferred or state.override
                or state.frozen):
            if state.preferred_healthy_since is not None:
                cycle.state = replace(state, preferred_healthy_since=None)
            return
        if not cycle.health[preferred].healthy:
            if state.preferred_healthy_since is not None:
                cycle.state = replace(state, preferred_healthy_since=None)
            return
        since = state.preferred_healthy_since
        if since is None:
            cycle.state = state = replace(state, preferred_healthy_since=now)
            since = now
        if now - since < self.policy.failback_after_s:
            cycle.wake(since + self.policy.failback_after_s)
            return
        blocked = self._auto_blocked(cycle, preferred)
        if blocked is not None:
            cycle.say("info", f"failback_{blocked[0]}", f"failback to {preferred} waits: "
                      f"{blocked[1]}")
            return
        self.begin_switch(cycle, preferred, "failback",
                          f"{preferred} healthy for {now - since:.1f} s; failing back", AUTO)

    def set_override(self, state: GroupState, site: str, by: str, reason: str,
                     now: float, expires_s: float | None) -> GroupState:
        until = None if expires_s is None else now + expires_s
        if site == self.config.preferred_site(state.group) and until is None:
            return replace(state, override=None)
        return replace(state, override=Override(site, until, by, reason))
