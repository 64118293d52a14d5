"""The pre-checks of an operator's switchover, and which failures stop it.

Every switchover runs the same pre-checks and reports each one, passed or failed, and why.
`force` overrides the health, freeze and budget checks; never a switch (or a graceful
switchover) already in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from failover.core.model import GroupState, PreCheck, SiteHealth

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
    plan = state.graceful
    flight = PreCheck(
        "nothing_in_flight",
        state.phase != "switching" and plan is None,
        f"a switch to {state.active} is in flight"
        if state.phase == "switching"
        else f"a graceful switchover to {plan.to_site} is {plan.stage}"
        if plan is not None
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
