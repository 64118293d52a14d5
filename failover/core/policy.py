"""The group policy: which site is active, when to move, and why.

`Engine.step(states, view)` is the leader's cycle: (desired states, observations, applied
states, now) -> (new desired states, decisions, when to look again). It never reads a clock
and does no I/O; the daemon and the simulator run this same code.

The rules of one group's cycle (`_decide`), in the order they are tried; the first that
applies decides (codes: `failover.core.codes`):

1. phase `switching`: promote once the old site confirmed its demotion or surely stopped
   announcing primary; else wait (promoted, awaiting_demotion).
2. an expiring override's time has come: it lapses, and the rules below decide
   (override_lapsed).
3. a scheduled switchover is due: run it as the operator's command (command codes); a
   graceful switchover's stage is done or due: move it on (graceful_*; `core.graceful`).
4. the active site is down (service_down, site_down, agent_lost): if an automatic switch is
   blocked, alert and stop the hold-down (fail_open, target_unhealthy, frozen, cooldown,
   budget); else run the hold-down, then fail over (hold_down, failover).
5. phase `suspect` but the active site no longer down: cancel the hold-down (recovered).
6. the active site neither healthy nor down: say why nothing moves (active_observers_disagree,
   active_site_isolated, active_no_quorum).
7. failback `auto` and the preferred site not active: if blocked, stop the wait
   (failback_*); else fail back once the preferred site was healthy for the failback wait
   (failback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from failover.config.model import BgpSteering, Config
from failover.core import agent as agent_rule
from failover.core import commands, graceful
from failover.core.codes import ACTIVE_CODES, FAILBACK_CODES, Blocked, Code
from failover.core.cycle import Cycle, View
from failover.core.health import Layout, assess, index, stale_at
from failover.core.model import (
    AUTO,
    Command,
    Decision,
    GroupState,
    Override,
    SiteHealth,
    Step,
)
from failover.core.transitions import transition

HOUR_S = 3600.0
TRIGGERS = ("service_down", "site_down", "agent_lost")


class Engine:
    """The decision rules of one cluster; holds nothing but what the config implies."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.layout = Layout(config)
        self.policy = config.policy

    # --- public -------------------------------------------------------------------------

    def initial(self, group: str, now: float) -> GroupState:
        return GroupState(
            group=group,
            active=self.config.preferred_site(group),
            changed_at=now,
            reason="initial state: the preferred site",
        )

    def assess(self, view: View) -> dict[str, dict[str, SiteHealth]]:
        fresh = index(view.observations, view.now, self.layout.stale_after_s)
        health = {group: assess(self.layout, group, fresh) for group in self.config.groups}
        if view.agents is not None:
            for group, sites in health.items():
                if not self.uses_demotion(group):
                    continue  # DNS is steered by the leader: a site's agent does not matter
                for site in self.layout.serving:
                    if site not in view.agents:
                        gone = view.now - view.agents_gone_at.get(site, view.now)
                        sites[site] = replace(
                            sites[site],
                            situation="agent_lost",
                            detail=(
                                f"{site} has had no agent with a coordinator session for "
                                f"{gone:.1f} s; it cannot hold primary"
                            ),
                        )
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
        """How long after the switch's commit the leader waits for an unconfirmed demotion
        (`core.agent`: the old primary surely ended by then)."""
        daemon = self.config.cluster.daemon
        return agent_rule.stale_primary_s(
            lease_s=self.config.lease_s(group),
            watchdog_s=daemon.watchdog_s,
            stop_hook_s=daemon.stop_hook_s,
            cycle_s=daemon.cycle_s,
        )

    def uses_demotion(self, group: str) -> bool:
        return isinstance(self.config.groups[group].steering, BgpSteering)

    # --- the cycle ------------------------------------------------------------------------

    def _decide(self, cycle: Cycle, view: View) -> None:
        state = cycle.state
        if state.phase == "switching":
            self._finish_switch(cycle, view)
            plan = cycle.state.graceful
            if cycle.state.phase == "steady" and plan is not None and plan.stage == "switching":
                graceful.promoted(self, cycle)  # a graceful BGP switchover: now the drain
            return
        if state.override and state.override.until is not None:
            if cycle.now < state.override.until:
                cycle.wake(state.override.until)
            else:
                self._override_lapsed(cycle)  # the policy decides from here, as always
        if cycle.state.scheduled is not None and commands.run_scheduled(self, cycle):
            return
        if graceful.advance(self, cycle, view):
            return
        state = cycle.state
        active = cycle.health[state.active]
        if active.situation in TRIGGERS:
            self._active_down(cycle, active, view)
            return
        if state.phase == "suspect":
            cycle.state = replace(
                state,
                phase=transition(state.phase, "recover"),
                suspect_since=None,
                hold_down_from=None,
            )
            cycle.say(
                "info",
                "recovered",
                f"{state.active} no longer down ({active.situation}: {active.detail}); "
                "hold-down cancelled",
            )
            return
        if active.situation != "healthy":
            cycle.say(
                "info",
                ACTIVE_CODES[active.situation],
                f"{state.active}: {active.situation.replace('_', ' ')} "
                f"({active.detail}); nothing moves",
            )
        self._failback(cycle)

    def _active_down(self, cycle: Cycle, active: SiteHealth, view: View) -> None:
        """The active site is down: hold down, then fail over, unless the switch is blocked.

        The hold-down runs only while a switch could happen: a blocked cycle stops it, and it
        starts again from zero once the switch is no longer blocked, so the target has been
        healthy for the whole hold-down when the switch is written (safety rule 7)."""
        state, now = cycle.state, cycle.now
        if state.phase == "steady":
            state = replace(
                state,
                phase=transition(state.phase, "suspect"),
                suspect_since=now,
                hold_down_from=None,
            )
        since = state.suspect_since if state.suspect_since is not None else now
        evidence = (
            active.detail
            if active.situation == "agent_lost"
            else f"{active.detail} for {now - since:.1f} s"
        )
        target = self.layout.other(state.active)
        blocked = self._auto_blocked(cycle, target, state)
        if blocked is not None:
            cycle.state = replace(state, hold_down_from=None)
            code, why = blocked
            cycle.say(
                "alert",
                code,
                f"{evidence}; not failing over to {target}: {why}",
                situation=active.situation,
                down=list(active.down),
            )
            return
        if state.hold_down_from is None:
            state = replace(state, hold_down_from=now)
        cycle.state = state
        held = now - (state.hold_down_from or now)
        if held < self.policy.hold_down_s:
            cycle.wake((state.hold_down_from or now) + self.policy.hold_down_s)
            cycle.say(
                "info",
                "hold_down",
                f"{evidence}; hold-down {self.policy.hold_down_s:g} s "
                f"({held:.1f} s with {target} healthy)",
                situation=active.situation,
                down=list(active.down),
            )
            return
        gone_at = None
        if active.situation == "agent_lost":
            gone_at = view.agents_gone_at.get(state.active, now)
        self.begin_switch(
            cycle,
            target,
            "failover",
            f"{evidence}; failing over to {target}",
            AUTO,
            gone_at=gone_at,
            situation=active.situation,
            down=list(active.down),
        )

    def _auto_blocked(
        self, cycle: Cycle, target: str, state: GroupState | None = None
    ) -> tuple[Blocked, str] | None:
        """Why an automatic switch to `target` may not happen now (None: it may)."""
        state, now = state or cycle.state, cycle.now
        health = cycle.health[target]
        if not health.healthy:
            if cycle.health[state.active].situation in TRIGGERS and health.situation in TRIGGERS:
                return "fail_open", (
                    f"{target} is unhealthy too ({health.detail}); staying on "
                    f"{state.active} so that a site keeps serving"
                )
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

    def begin_switch(
        self,
        cycle: Cycle,
        target: str,
        code: Code,
        sentence: str,
        by: str,
        gone_at: float | None = None,
        **evidence: Any,
    ) -> None:
        """Move the group towards `target`: demote first (BGP), or at once (DNS).

        Unless the old site confirms its demotion, its promotion waits until the old primary
        has surely ended (`core.agent.surely_demoted_at`): counted from this commit, or from
        `gone_at`, when the leader first saw the old agent's session gone, if earlier."""
        if cycle.state.graceful is not None:  # a failover wins over a planned switchover
            graceful.cancel(cycle, f"{code} to {target}: {sentence}")
        state, now = cycle.state, cycle.now
        direct = not self.uses_demotion(state.group)
        deadline = agent_rule.surely_demoted_at(now, gone_at, self.demote_wait_s(state.group))
        cycle.state = replace(
            state,
            phase=transition(state.phase, "switch_direct" if direct else "switch"),
            active=target,
            switch_from=None if direct else state.active,
            switch_started_at=None if direct else now,
            demote_by=None if direct else deadline,
            epoch=state.epoch + 1,
            suspect_since=None,
            hold_down_from=None,
            preferred_healthy_since=None,
            switch_times=tuple(t for t in state.switch_times if t > now - HOUR_S) + (now,),
            last_switch_at=now,
            reason=sentence,
            code=code,
            by=by,
            changed_at=now,
        )
        tail = (
            f"epoch {cycle.state.epoch}"
            if direct
            else f"demoting {state.active} first, epoch {cycle.state.epoch}"
        )
        cycle.say("desired", code, f"{sentence}, {tail}", by=by, **evidence)
        if not direct:
            cycle.wake(deadline)

    def _finish_switch(self, cycle: Cycle, view: View) -> None:
        state, now = cycle.state, cycle.now
        old = state.switch_from or ""
        applied = view.applied.get((state.group, old))
        confirmed = (
            applied is not None
            and applied.epoch >= state.epoch
            and applied.announcement != "primary"
        )
        started = state.switch_started_at if state.switch_started_at is not None else now
        deadline = (
            state.demote_by
            if state.demote_by is not None
            else started + self.demote_wait_s(state.group)
        )
        if (
            not confirmed
            and applied is not None
            and applied.epoch >= state.epoch
            and applied.announcement == "primary"
        ):
            # The old agent read this switch and reports its primary still in effect (its
            # demotion failed). The stale-primary bound assumes an agent that runs can steer,
            # or is killed and its stop hook holds the site: not this one while it runs.
            if view.agents is None or old in view.agents:
                cycle.say(
                    "alert",
                    "demotion_failed",
                    f"{old} could not demote itself at epoch {state.epoch} "
                    f"({applied.detail or 'failed'}); not promoting {state.active} while "
                    f"{old} may still announce primary",
                )
                return
            gone_at = view.agents_gone_at.get(old, now)
            deadline = max(deadline, gone_at + self.demote_wait_s(state.group))
        if not confirmed and now < deadline:
            cycle.wake(deadline)
            cycle.say(
                "info",
                "awaiting_demotion",
                f"waiting for {old} to confirm its demotion (epoch {state.epoch}); "
                f"it surely stops announcing primary in {deadline - now:.1f} s",
            )
            return
        why = (
            f"{old} confirmed {applied.announcement} at epoch {applied.epoch}"
            if confirmed and applied
            else f"{old} did not confirm; it surely stopped announcing primary "
            f"{deadline - started:.1f} s after the switch began"
        )
        cycle.state = replace(
            state,
            phase=transition(state.phase, "promote"),
            epoch=state.epoch + 1,
            switch_from=None,
            switch_started_at=None,
            demote_by=None,
            code="promoted",
            reason=f"{why}; {state.active} promoted",
            changed_at=now,
        )
        cycle.say(
            "desired",
            "promoted",
            f"{why}; promoting {state.active} to primary, epoch {cycle.state.epoch}",
            confirmed=confirmed,
        )

    def _override_lapsed(self, cycle: Cycle) -> None:
        """An expiring override lapses; from then on the policy decides as it always does: a
        move back to the preferred site is an automatic failback (failback `auto`, preferred
        site healthy for the failback wait, not blocked) and never happens with `manual`."""
        state = cycle.state
        assert state.override is not None
        lapsed = state.override
        cycle.state = replace(state, override=None, preferred_healthy_since=None)
        preferred = self.config.preferred_site(state.group)
        if state.active == preferred:
            then = "the preferred site stays active"
        elif self.policy.failback == "auto":
            then = f"failback to {preferred} follows the failback rule"
        else:
            then = f"failback is manual: {state.active} stays active"
        cycle.say(
            "info", "override_lapsed", f"override to {lapsed.site} by {lapsed.by} lapsed; {then}"
        )

    def _failback(self, cycle: Cycle) -> None:
        """Automatic failback: the preferred site healthy, and a switch unblocked, for the
        whole failback wait (at least the hold-down); a blocked cycle restarts the wait."""
        state, now = cycle.state, cycle.now
        preferred = self.config.preferred_site(state.group)
        idle = (
            self.policy.failback != "auto"
            or state.active == preferred
            or state.override is not None
        )
        blocked = None if idle else self._auto_blocked(cycle, preferred)
        if idle or blocked is not None:
            if state.preferred_healthy_since is not None:
                cycle.state = replace(state, preferred_healthy_since=None)
            if blocked is not None and blocked[0] != "target_unhealthy":
                cycle.say(
                    "info",
                    FAILBACK_CODES[blocked[0]],
                    f"failback to {preferred} waits: {blocked[1]}",
                )
            return
        since = state.preferred_healthy_since
        if since is None:
            cycle.state = state = replace(state, preferred_healthy_since=now)
            since = now
        wait = max(self.policy.failback_after_s, self.policy.hold_down_s)
        if now - since < wait:
            cycle.wake(since + wait)
            return
        self.begin_switch(
            cycle,
            preferred,
            "failback",
            f"{preferred} healthy for {now - since:.1f} s; failing back",
            AUTO,
        )

    def set_override(
        self,
        state: GroupState,
        site: str,
        by: str,
        reason: str,
        now: float,
        expires_s: float | None,
    ) -> GroupState:
        until = None if expires_s is None else now + expires_s
        if site == self.config.preferred_site(state.group) and until is None:
            return replace(state, override=None)
        return replace(state, override=Override(site, until, by, reason))
