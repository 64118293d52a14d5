"""The scheduler: spread start times, cadence from the core's hysteresis (a faster re-check while
a verdict is changing), callbacks, stopping, against real servers and real plugins."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from pathlib import Path

from failover.config.model import CommandCheck, HttpCheck
from failover.core.model import CheckResult, CheckState
from failover.probes import ProbeScheduler, ProbeTarget, run_once
from failover.testing.servers.http import HttpServer


class ManualClock:
    """Time moves only when the test says so; sleepers wake in due order."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.sleepers, (self.time + seconds, next(self._order), future))
        await future

    async def settle(self, sleepers: int) -> None:
        """Wait (really, bounded) until `sleepers` loops are asleep on this clock."""
        deadline = time.monotonic() + 10
        while len(self.sleepers) < sleepers:
            assert time.monotonic() < deadline, "the scheduler did not settle"
            await asyncio.sleep(0.005)

    async def run_until(self, until: float, sleepers: int) -> None:
        """Advance to `until`, waking each sleeper at its due time and letting it finish."""
        await self.settle(sleepers)
        while self.sleepers and self.sleepers[0][0] <= until:
            due, _, future = heapq.heappop(self.sleepers)
            self.time = due
            future.set_result(None)
            await self.settle(sleepers)
        self.time = until


def command(argv: list[str], **fields: object) -> CommandCheck:
    return CommandCheck.model_validate({"type": "command", "command": argv, **fields})


def test_spread_starts_and_fast_recheck_while_changing() -> None:
    check = command(["true"], interval_s=1.0, timeout_s=0.5, rise=2, fall=2, fast_interval_s=0.25)
    targets = [ProbeTarget("dc1", f"s{i}", "generic", "command", check) for i in range(4)]
    clock = ManualClock()
    seen: list[tuple[str, float, str]] = []
    results: list[CheckResult] = []

    def on_result(key: str, state: CheckState, result: CheckResult) -> None:
        results.append(result)
        seen.append((key, clock.now(), state.verdict))

    async def scenario() -> None:
        scheduler = ProbeScheduler(targets, on_result, clock=clock)
        task = asyncio.create_task(scheduler.run())
        await clock.run_until(3.0, sleepers=4)
        scheduler.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert results and all(r.ok for r in results), results
    first = [at for key, at, _ in seen if key == "dc1/s1/command"]
    assert first == [0.25, 0.5, 1.5, 2.5]  # spread by 1/4 interval; re-check after 0.25 s
    verdicts = [v for key, _, v in seen if key == "dc1/s1/command"]
    assert verdicts == ["unknown", "up", "up", "up"]
    assert sorted({at for _, at, _ in seen if at < 0.8}) == [0.0, 0.25, 0.5, 0.75]


def test_verdicts_follow_a_real_server(healthy_http: HttpServer) -> None:
    check = HttpCheck.model_validate(
        {
            "type": "http",
            "path": "/health",
            "interval_s": 0.1,
            "timeout_s": 0.08,
            "rise": 2,
            "fall": 2,
        }
    )
    target = ProbeTarget("dc1", "app", "app", healthy_http.endpoint, check)
    verdicts: list[tuple[str, str]] = []
    keys: set[str] = set()

    def on_result(key: str, state: CheckState, result: CheckResult) -> None:
        keys.add(key)
        if not verdicts or verdicts[-1][0] != state.verdict:
            verdicts.append((state.verdict, result.reason))

    async def until(verdict: str) -> None:
        deadline = time.monotonic() + 5
        while not verdicts or verdicts[-1][0] != verdict:
            assert time.monotonic() < deadline, f"no {verdict} verdict: {verdicts}"
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        scheduler = ProbeScheduler([target], on_result)
        task = asyncio.create_task(scheduler.run())
        await until("up")
        healthy_http.set_health(503)
        await until("down")
        healthy_http.set_health(200)
        await until("up")
        scheduler.stop()
        await asyncio.wait_for(task, 5)
        assert scheduler.probes_run >= 6
        assert scheduler.states[target.key].verdict == "up"

    asyncio.run(scenario())
    assert keys == {f"dc1/app/{healthy_http.endpoint}"}
    assert [v for v, _ in verdicts] == ["unknown", "up", "down", "up"]
    assert verdicts[2][1] == f"HTTP 503 from {healthy_http.endpoint}"


def test_a_failing_callback_does_not_stop_probing() -> None:
    check = command(["true"], interval_s=0.05, timeout_s=0.04)
    calls: list[str] = []

    def on_result(key: str, state: CheckState, result: CheckResult) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("a subscriber broke")

    async def scenario() -> None:
        scheduler = ProbeScheduler(
            [ProbeTarget("dc1", "x", "generic", "command", check)], on_result
        )
        task = asyncio.create_task(scheduler.run())
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        scheduler.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert len(calls) >= 3


def test_stop_kills_a_plugin_in_flight(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 30\n")
    script.chmod(0o755)
    check = command([str(script)], interval_s=60, timeout_s=30)

    async def scenario() -> float:
        scheduler = ProbeScheduler(
            [ProbeTarget("dc1", "x", "generic", "command", check)], lambda *_: None
        )
        task = asyncio.create_task(scheduler.run())
        deadline = time.monotonic() + 5
        while not started.exists() or not started.read_text().strip():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        begun = time.monotonic()
        scheduler.stop()
        await asyncio.wait_for(task, 10)
        return time.monotonic() - begun

    assert asyncio.run(scenario()) < 5
    pid = int(started.read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"


def test_run_once_bounds_concurrency() -> None:
    check = command(["sleep", "0.2"], interval_s=2, timeout_s=1)
    targets = [ProbeTarget("dc1", f"s{i}", "generic", "command", check) for i in range(4)]
    started = time.monotonic()
    results = asyncio.run(run_once(targets, concurrency=2))
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert elapsed >= 0.4  # two at a time, two rounds


def test_a_target_listed_twice_is_refused() -> None:
    check = command(["true"])
    target = ProbeTarget("dc1", "x", "generic", "command", check)
    try:
        ProbeScheduler([target, target], lambda *_: None)
    except ValueError as exc:
        assert "twice" in str(exc)
    else:
        raise AssertionError("accepted a duplicate target")


def test_a_stop_before_run_starts_is_not_lost() -> None:
    async def scenario() -> None:
        scheduler = ProbeScheduler(
            [ProbeTarget("dc1", "x", "generic", "command", command(["true"]))], lambda *_: None
        )
        task = asyncio.create_task(scheduler.run())
        scheduler.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
