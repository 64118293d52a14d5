"""The second factor (TOTP) for operator writes: unit checks with a clock given by the test,
and a forced switchover on real daemons (their config needs a code for forced ones only)."""

from __future__ import annotations

import time

import pyotp
import pytest

from failover.api.totp import SecondFactor, TotpError, parse_totp_secrets
from failover.config.model import ApiOptions
from tests.api.conftest import post
from tests.operator.cluster import TOTP_SECRET, Cluster

T0 = 1_800_000_000.0
SIGNED = ("content-type", "host", "x-escher-date", "x-failover-totp")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def factor(clock: Clock, **options: object) -> SecondFactor:
    settings = ApiOptions.model_validate(
        {"totp_file": "x", "max_totp_failures": 3, "backoff_s": 2, **options}
    )
    return SecondFactor(settings, {"ops": TOTP_SECRET}, clock=clock)


def code(at: float) -> str:
    return str(pyotp.TOTP(TOTP_SECRET).at(int(at)))


def test_a_code_is_required_signed_right_and_used_once() -> None:
    clock = Clock()
    check = factor(clock)
    assert check.required("freeze", False) and check.required("switchover", True)
    assert not factor(clock, totp_actions=["switchover"]).required("freeze", False)
    assert factor(clock, totp_actions=[]).required("switchover", True)  # --force always
    assert check.check("ops", None, SIGNED) == (
        401,
        "second factor required: a signed X-Failover-TOTP header",
    )
    unsigned = check.check("ops", code(T0), SIGNED[:3])  # present but not signed
    assert unsigned is not None and unsigned[0] == 401
    assert check.check("ops", code(T0), SIGNED) is None
    assert check.check("ops", code(T0), SIGNED) == (401, "this second factor code was already used")
    clock.now += 30
    assert check.check("ops", code(T0 - 30), SIGNED) == (401, "wrong second factor")
    assert check.check("nobody", code(clock.now), SIGNED) == (401, "wrong second factor")


def test_wrong_codes_make_that_key_wait() -> None:
    clock = Clock()
    check = factor(clock)
    for _ in range(2):
        assert check.check("ops", "000000", SIGNED) == (401, "wrong second factor")
    assert check.check("ops", "000000", SIGNED) == (401, "wrong second factor; ops waits 2 s")
    waiting = check.check("ops", code(clock.now), SIGNED)
    assert waiting is not None and waiting[0] == 429
    clock.now += 2
    assert check.check("ops", code(clock.now), SIGNED) is None


def test_secret_file_lines() -> None:
    assert parse_totp_secrets(f"# x\nops:{TOTP_SECRET.lower()}\n", "f") == {"ops": TOTP_SECRET}
    for bad in ("ops\n", "ops:short\n", "bad key:JBSWY3DPEHPK3PXP\n", "ops:JBSWY3DPEHPK3PX1\n"):
        with pytest.raises(TotpError, match="line 1"):
            parse_totp_secrets(bad, "f")


@pytest.mark.zookeeper
def test_a_forced_switchover_needs_the_second_factor(steady: Cluster) -> None:
    body = {"site": "dc1", "force": True, "reason": "forced"}
    code_, answer = post(steady, "a", "/switchover", body)
    assert code_ == 401 and "second factor required" in answer["error"]
    code_, answer = post(steady, "a", "/switchover", {**body, "reason": "bad"}, totp="123456")
    assert code_ == 401 and answer["error"].startswith("wrong second factor")
    now = pyotp.TOTP(TOTP_SECRET).now()
    code_, answer = post(steady, "a", "/switchover", {**body, "reason": "good"}, totp=now)
    assert code_ == 202, answer
    code_, answer = post(steady, "a", "/freeze", {"reason": "no factor needed"})
    assert code_ == 202, answer  # totp_actions: [] in this cluster
    assert post(steady, "a", "/unfreeze", {"reason": "done"})[0] == 202
    time.sleep(0.5)
    steady.wait_steady("dc1")
