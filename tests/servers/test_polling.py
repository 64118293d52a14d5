"""The polling helper: only the expected errors mean "not yet"; any other ends the wait at once."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from failover.testing.servers.base import wait_ready
from failover.testing.servers.process import Process, ProcessError, attempt, wait_until


class Flaky:
    """Raises `error` for the first `failures` calls, then returns True."""

    def __init__(self, error: BaseException, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return True


def test_expected_errors_are_retried_until_the_predicate_holds() -> None:
    flaky = Flaky(ConnectionRefusedError("not listening yet"), 3)
    wait_until(flaky, 5.0, "flaky", interval_s=0.001)
    assert flaky.calls == 4


def test_an_unexpected_error_ends_the_wait_at_once() -> None:
    flaky = Flaky(KeyError("a bug"), 3)
    started = time.monotonic()
    with pytest.raises(KeyError, match="a bug"):
        wait_until(flaky, 5.0, "flaky", interval_s=0.001)
    assert flaky.calls == 1
    assert time.monotonic() - started < 1.0


def test_the_caller_names_what_is_expected() -> None:
    flaky = Flaky(KeyError("not there yet"), 2)
    wait_until(flaky, 5.0, "flaky", interval_s=0.001, retry_on=(KeyError,))
    assert flaky.calls == 3
    with pytest.raises(ConnectionRefusedError):  # nothing is retried with retry_on=()
        wait_until(Flaky(ConnectionRefusedError(), 1), 5.0, "strict", retry_on=())


def test_the_timeout_names_what_and_the_last_error_retried() -> None:
    flaky = Flaky(ConnectionRefusedError("port 1 refused"), 10**9)
    with pytest.raises(
        TimeoutError,
        match=r"^flaky: not within 0.05 s \(last: "
        r"ConnectionRefusedError: port 1 refused\)$",
    ):
        wait_until(flaky, 0.05, "flaky", interval_s=0.001)
    with pytest.raises(TimeoutError, match=r"^never: not within 0.05 s$"):
        wait_until(lambda: False, 0.05, "never", interval_s=0.001)


def test_attempt_gives_the_default_only_for_expected_errors() -> None:
    assert attempt(lambda: 7, (OSError,), None) == 7
    assert attempt(Flaky(TimeoutError("slow"), 1), (OSError,), "no answer") == "no answer"
    with pytest.raises(ValueError):
        attempt(Flaky(ValueError("a bug"), 1), (OSError,), None)


def sleeper(tmp_path: Path, code: str = "import time; time.sleep(30)") -> Process:
    return Process("sleeper", [sys.executable, "-c", code], log_path=tmp_path / "log").start()


def test_wait_ready_fails_at_once_with_the_log_when_the_process_exits(tmp_path: Path) -> None:
    process = sleeper(tmp_path, "print('bad config'); raise SystemExit(3)")
    started = time.monotonic()
    with pytest.raises(ProcessError, match=r"(?s)exited before ready.*bad config"):
        wait_ready(process, lambda: False, 10.0, "ready")
    assert time.monotonic() - started < 5.0


def test_wait_ready_stops_the_process_on_a_bug_in_the_check(tmp_path: Path) -> None:
    process = sleeper(tmp_path)
    with pytest.raises(ZeroDivisionError):
        wait_ready(process, lambda: bool(1 / 0), 10.0, "ready")
    assert not process.alive


def test_wait_ready_retries_what_a_starting_server_raises(tmp_path: Path) -> None:
    process = sleeper(tmp_path)
    try:
        flaky = Flaky(ConnectionResetError("starting"), 2)
        wait_ready(process, flaky, 5.0, "ready", interval_s=0.001)
        assert flaky.calls == 3 and process.alive
        with pytest.raises(ProcessError, match=r"never: not within 0\.1 s"):
            wait_ready(process, lambda: False, 0.1, "never")
        assert not process.alive
    finally:
        process.stop()
