"""Operator commands: switchover (now, scheduled, forced, expiring), freeze, unfreeze.

Every switchover runs the same pre-checks and reports each one, passed or failed, and why.
`force` overrides the health, freeze and budget checks; never a switch already in flight.
A graceful switchover (`Command.graceful`, else `policy.graceful_switchover`) runs as the
stages of `failover.core.graceful`; a graceful DNS one starts one old TTL before its time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from failover.core import graceful
from failover.core.cycle import Cycle, View
from failover.core.model import Command, Decision, GroupState, Step
from failover.core.prechecks import FORCEABLE, blocking, prechecks

if TYPE_CHECKING:
    from failover.core.policy import Engine

__all__ = ["FORCEABLE", "apply", "blocking", "prechecks", "run_scheduled", "switchover"]


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
        elif (due := graceful.due_at(engine, group, command)) is not None and due > view.now:
            _schedule(engine, cycle, command, due)
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


def _schedule(engine: Engine, cycle: Cycle, command: Command, due: float) -> None:
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
    cycle.wake(due)
    kind = "graceful switchover" if graceful.wanted(engine, command) else "switchover"
    early = f", its preparation in {due - cycle.now:.0f} s" if due < command.at else ""
    cycle.say(
        "command",
        "scheduled",
        f"{kind} to {command.site} scheduled in {command.at - cycle.now:.0f} s{early}; "
        "pre-checks run again then",
        checks=checks,
        command_id=command.id,
        by=command.by,
    )


def run_scheduled(engine: Engine, cycle: Cycle) -> bool:
    """Run a due scheduled switchover; True when it ran (this cycle decided)."""
    command = cycle.state.scheduled
    due = None if command is None else graceful.due_at(engine, cycle.state.group, command)
    assert command is not None and due is not None
    if cycle.now < due:
        cycle.wake(due)
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
    if graceful.wanted(engine, command):
        graceful.start(engine, cycle, command, checks, forced)
        return
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
