"""Operator commands: switchover (now, scheduled, forced, expiring), freeze, unfreeze.

Every switchover runs the same pre-checks and reports each one, passed or failed, and why.
`force` overrides the health, freeze and budget checks; never a switch already in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from failover.core.cycle import Cycle, View
from failover.core.model import Command, Decision, GroupState, PreCheck, SiteHealth, Step

if TYPE_CHECKING:
    from failover.core.policy import Engine

FORCEABLE = frozenset({"target_healthy", "not_frozen", "budget"})


def prechecks(
    engine: Engine,
    state: GroupState,
    health: Mapping[str, SiteHealth],
    target: str | None,
    now: float,
) -> tuple[PreCheck, ...]:
    serving = engine.layout.serving
    if target not in serving:
        valid = PreCheck(
            "target", False, f"{target!r} is not a serving site ({', '.join(serving)})"
        )
    elif target == state.active and state.phase != "switching":
        valid = PreCheck("target", False, f"{target} is already active")
    else:
        valid = PreCheck(
            "target", True, f"{target} is a serving site, now {state.active} is active"
        )
    site = health.get(target or "")
    healthy = PreCheck(
        "target_healthy",
        site is not None and site.healthy,
        f"{target} is {site.situation} ({site.detail})"
        if site
        else "no health for an unknown site",
    )
    frozen = PreCheck(
        "not_frozen",
        not state.frozen,
        f"frozen by {state.frozen_by}: {state.frozen_reason}"
        if state.frozen
        else "automation is not frozen",
    )
    flight = PreCheck(
        "nothing_in_flight",
        state.phase != "switching",
        f"a switch to {state.active} is in flight"
        if state.phase == "switching"
        else "no switch in flight",
    )
    used = engine.switches_last_hour(state, now)
    budget = PreCheck(
        "budget", used < engine.budget, f"{used} of {engine.budget} switches used in the last hour"
    )
    return valid, healthy, frozen, flight, budget


def blocking(checks: tuple[PreCheck, ...], scheduled: bool, force: bool) -> list[PreCheck]:
    """The failed pre-checks that stop a switchover: for a scheduled one only `target` (the
    rest run again at its time); else every failed check `force` does not override. The CLI
    shows the operator this same rule before it submits."""
    failed = [check for check in checks if not check.passed]
    if scheduled:
        return [check for check in failed if check.name == "target"]
    return [check for check in failed if not (force and check.name in FORCEABLE)]


def apply(engine: Engine, states: Mapping[str, GroupState], command: Command, view: View) -> Step:
    health = engine.assess(view)
    new_states = dict(states)
    decisions: list[Decision] = []
    if command.kind == "note":  # something to keep in the audit trail; changes nothing
        decisions.append(
            Decision(
                command.group or "",
                "command",
                "noted",
                f"noted from {command.by}: {command.reason}",
                0,
                command_id=command.id,
            )
        )
        return Step(new_states, tuple(decisions), health, None)
    if command.group is not None and command.group not in engine.config.groups:
        decisions.append(
            Decision(
                command.group,
                "command",
                "refused",
                f"{command.kind} refused: no group {command.group!r}",
                0,
                command_id=command.id,
            )
        )
        return Step(new_states, tuple(decisions), health, None)
    for group in [command.group] if command.group else list(engine.config.groups):
        cycle = Cycle(states.get(group) or engine.initial(group, view.now), health[group], view.now)
        if command.kind == "freeze":
            _freeze(cycle, command, frozen=True)
        elif command.kind == "unfreeze":
            _freeze(cycle, command, frozen=False)
        elif command.at is not None and command.at > view.now:
            _schedule(engine, cycle, command)
        else:
            switchover(engine, cycle, command)
        new_states[group] = cycle.state
        decisions += cycle.decisions
    return Step(new_states, tuple(decisions), health, None)


def _freeze(cycle: Cycle, command: Command, frozen: bool) -> None:
    state = cycle.state
    word = "frozen" if frozen else "unfrozen"
    if state.frozen == frozen:
        cycle.say("command", "accepted", f"already {word}", command_id=command.id, by=command.by)
        return
    # a freeze blocks automatic switches: a running hold-down or failback wait starts again
    # from zero once unfrozen (safety rule 7)
    cycle.state = replace(
        state,
        frozen=frozen,
        frozen_by=command.by if frozen else "",
        frozen_reason=command.reason if frozen else "",
        scheduled=state.scheduled,
        hold_down_from=None if frozen else state.hold_down_from,
        preferred_healthy_since=None if frozen else state.preferred_healthy_since,
    )
    cycle.say(
        "command",
        "accepted",
        f"automation {word} by {command.by}" + (f": {command.reason}" if command.reason else ""),
        command_id=command.id,
        by=command.by,
    )


def _schedule(engine: Engine, cycle: Cycle, command: Command) -> None:
    checks = prechecks(engine, cycle.state, cycle.health, command.site, cycle.now)
    if blocking(checks, scheduled=True, force=command.force):
        cycle.say(
            "command",
            "refused",
            f"switchover refused: {checks[0].detail}",
            checks=checks,
            command_id=command.id,
            by=command.by,
        )
        return
    cycle.state = replace(cycle.state, scheduled=command)
    assert command.at is not None
    cycle.wake(command.at)
    cycle.say(
        "command",
        "scheduled",
        f"switchover to {command.site} scheduled in {command.at - cycle.now:.0f} s; "
        "pre-checks run again then",
        checks=checks,
        command_id=command.id,
        by=command.by,
    )


def run_scheduled(engine: Engine, cycle: Cycle) -> bool:
    """Run a due scheduled switchover; True when it ran (this cycle decided)."""
    command = cycle.state.scheduled
    assert command is not None and command.at is not None
    if cycle.now < command.at:
        cycle.wake(command.at)
        return False
    cycle.state = replace(cycle.state, scheduled=None)
    switchover(engine, cycle, command)
    return True


def switchover(engine: Engine, cycle: Cycle, command: Command) -> None:
    state, target = cycle.state, command.site or ""
    checks = prechecks(engine, state, cycle.health, target, cycle.now)
    failed = [c for c in checks if not c.passed]
    stops = blocking(checks, scheduled=False, force=command.force)
    if stops:
        cycle.say(
            "command",
            "refused",
            f"switchover to {target} refused: " + "; ".join(f"{c.name}: {c.detail}" for c in stops),
            checks=checks,
            command_id=command.id,
            by=command.by,
        )
        return
    forced = (" (forced past " + ", ".join(c.name for c in failed) + ")") if failed else ""
    why = f": {command.reason}" if command.reason else ""
    engine.begin_switch(
        cycle,
        target,
        "switchover",
        f"switchover to {target} by {command.by}{why}{forced}",
        command.by,
        forced=[c.name for c in failed],
    )
    cycle.state = engine.set_override(
        cycle.state, target, command.by, command.reason, cycle.now, command.expires_s
    )
    cycle.say(
        "command",
        "accepted",
        f"switchover to {target} started{forced}, epoch {cycle.state.epoch}",
        checks=checks,
        command_id=command.id,
        by=command.by,
    )
