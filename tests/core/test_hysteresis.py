from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config.model import TcpCheck
from failover.core.hysteresis import changing, next_check_in_s, observe
from failover.core.model import CheckResult, CheckState

OK, BAD = CheckResult(True, 0.01, "connected"), CheckResult(False, 0.5, "refused")


def run(results: list[bool], rise: int = 2, fall: int = 3) -> list[str]:
    state = CheckState()
    verdicts: list[str] = []
    for i, ok in enumerate(results):
        state = observe(state, OK if ok else BAD, float(i), rise, fall)
        verdicts.append(state.verdict)
    return verdicts


def test_starts_unknown_until_rise_successes() -> None:
    assert run([True, True, True]) == ["unknown", "up", "up"]


def test_starts_unknown_until_fall_failures() -> None:
    assert run([False, False, False]) == ["unknown", "unknown", "down"]


def test_mixed_start_restarts_the_count() -> None:
    assert run([True, False, True, True]) == ["unknown", "unknown", "unknown", "up"]


def test_goes_down_after_fall_consecutive_failures_only() -> None:
    assert run([True, True, False, False, True, False, False, False])[-4:] == [
        "up",
        "up",
        "up",
        "down",
    ]


def test_comes_back_after_rise_successes() -> None:
    verdicts = run([True, True, False, False, False, True, True])
    assert verdicts[4:] == ["down", "down", "up"]


def test_flip_records_when_and_why() -> None:
    state = CheckState()
    for t in range(3):
        state = observe(state, BAD, 10.0 + t, 1, 3)
    assert (state.verdict, state.since, state.reason) == ("down", 12.0, "refused")


def test_faster_recheck_while_changing() -> None:
    check = TcpCheck(type="tcp", interval_s=2, timeout_s=0.5, fast_interval_s=0.5)
    state = CheckState()
    assert changing(state) and next_check_in_s(state, check) == 0.5
    state = observe(observe(state, OK, 0, 2, 3), OK, 1, 2, 3)
    assert not changing(state) and next_check_in_s(state, check) == 2
    state = observe(state, BAD, 2, 2, 3)
    assert changing(state) and next_check_in_s(state, check) == 0.5


def test_default_recheck_is_half_the_interval_but_not_under_the_timeout() -> None:
    assert TcpCheck(type="tcp", interval_s=2, timeout_s=0.5).recheck_s == 1.0
    assert TcpCheck(type="tcp", interval_s=1, timeout_s=0.8).recheck_s == 0.8


@settings(max_examples=1000)
@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5), st.integers(1, 5))
def test_a_verdict_needs_a_full_run_of_agreeing_results(
    results: list[bool], rise: int, fall: int
) -> None:
    state = CheckState()
    for i, ok in enumerate(results):
        new = observe(state, OK if ok else BAD, float(i), rise, fall)
        if new.verdict != state.verdict:
            need = rise if new.verdict == "up" else fall
            tail = results[max(0, i - need + 1) : i + 1]
            assert len(tail) == need and all(r == (new.verdict == "up") for r in tail)
        state = new
