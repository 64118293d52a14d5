"""Rise/fall hysteresis for one observer and one target, as keepalived and ExaBGP do it.

A verdict flips only after `fall` consecutive failures (up -> down) or `rise` consecutive
successes (down -> up); while a flip is under way the next check comes sooner.
"""

from __future__ import annotations

from dataclasses import replace

from failover.config.model import CheckBase
from failover.core.model import CheckResult, CheckState


def observe(state: CheckState, result: CheckResult, now: float, rise: int, fall: int) -> CheckState:
    """Fold one raw result into the hysteresis state."""
    ok = result.ok
    if state.verdict == "unknown":
        streak = state.streak + 1 if state.streak and state.streak_ok == ok else 1
        if streak >= (rise if ok else fall):
            return CheckState("up" if ok else "down", 0, ok, now, result.reason)
        return CheckState("unknown", streak, ok, state.since, result.reason)
    if (state.verdict == "up") == ok:
        if state.streak == 0 and state.reason == result.reason:
            return state
        return replace(state, streak=0, streak_ok=ok, reason=result.reason)
    streak = state.streak + 1
    if streak >= (fall if state.verdict == "up" else rise):
        return CheckState("up" if ok else "down", 0, ok, now, result.reason)
    return replace(state, streak=streak, streak_ok=ok, reason=result.reason)


def changing(state: CheckState) -> bool:
    """True while the verdict is unknown or a flip is under way."""
    return state.verdict == "unknown" or state.streak > 0


def next_check_in_s(state: CheckState, check: CheckBase) -> float:
    """Seconds until the next probe: the fast re-check while changing, else the interval."""
    return check.recheck_s if changing(state) else check.interval_s
