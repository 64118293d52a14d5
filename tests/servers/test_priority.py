"""The supervisor starts its child with the scheduling priority asked for (as systemd's Nice=,
CPUSchedulingPolicy=, CPUSchedulingResetOnFork= do), refuses a bad one with exit 2, and the
daemon reports how late its checks start (metric and warning)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from failover.api.metrics import DaemonMetrics
from failover.config.model import CommandCheck
from failover.daemon.observer import Observer
from failover.daemon.supervisor import Priority, Supervisor, SupervisorOptions
from failover.probes import ProbeScheduler, ProbeTarget
from tests.core.world import example

FAILOVER = str(Path(sys.executable).parent / "failover")

REPORT = """
import json, os, subprocess, sys
forked = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                        capture_output=True, text=True, check=True).stdout
open(sys.argv[1], "w").write(json.dumps({"nice": os.getpriority(os.PRIO_PROCESS, 0),
                  "policy": os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
                  "rt": os.sched_getparam(0).sched_priority,
                  "forked_policy": int(forked)}))
"""


def supervised(priority: Priority, tmp_path: Path) -> dict[str, int]:
    out = tmp_path / "child.json"
    command = [sys.executable, "-c", REPORT, str(out)]
    code = Supervisor(SupervisorOptions(command=command, watchdog_s=5, priority=priority)).run()
    assert code == 0
    report: dict[str, int] = json.loads(out.read_text())
    return report


@pytest.mark.skipif(os.geteuid() != 0, reason="a real-time policy needs root")
def test_the_child_runs_real_time_and_what_it_forks_does_not(tmp_path: Path) -> None:
    seen = supervised(Priority(policy="rr", rt_priority=10), tmp_path)
    assert seen["policy"] == os.SCHED_RR and seen["rt"] == 10
    assert seen["forked_policy"] == os.SCHED_OTHER  # check plugins run at normal priority


def test_the_child_gets_the_nice_value(tmp_path: Path) -> None:
    seen = supervised(Priority(nice=7), tmp_path)
    assert seen["nice"] == 7 and seen["policy"] == os.SCHED_OTHER


def test_without_settings_the_child_keeps_the_supervisors(tmp_path: Path) -> None:
    seen = supervised(Priority(), tmp_path)
    assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, 0)
    assert seen["policy"] == os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sched-priority", "5"], "sched priority: 5 needs --sched fifo or rr"),
        (["--sched", "rr"], "sched priority: 0 must be 1..99 for rr"),
    ],
)
def test_supervise_refuses_a_bad_priority(args: list[str], message: str) -> None:
    done = subprocess.run(
        [FAILOVER, "supervise", "--watchdog-s", "1", *args, "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs util-linux's setpriv")
def test_supervise_without_the_privilege_says_so() -> None:
    # without CAP_SYS_NICE nobody may lower a nice value: exit 2 with a clear message
    done = subprocess.run(
        [
            "setpriv",
            "--bounding-set",
            "-sys_nice",
            "--inh-caps",
            "-sys_nice",
            FAILOVER,
            "supervise",
            "--watchdog-s",
            "1",
            "--nice",
            "-5",
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "needs root (CAP_SYS_NICE)" in done.stderr and "Traceback" not in done.stderr


def test_a_blocked_loop_shows_as_start_lag_in_metrics_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = example()
    observer = Observer(config, "dc1-a", on_change=lambda: None)
    metrics = DaemonMetrics("dc1-a", "dc1")
    observer.on_lag = metrics.probe_lag
    check = CommandCheck.model_validate(
        {"type": "command", "command": ["true"], "interval_s": 0.1, "timeout_s": 0.05}
    )
    target = ProbeTarget("dc1", "x", "generic", "command", check)
    # the observer's own lag hook, on a scheduler of one cheap target
    scheduler = ProbeScheduler([target], lambda *_: None, freeze_gc=False)
    scheduler.on_lag = observer._on_lag

    async def scenario() -> None:
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.3)
        time.sleep(0.4)  # the loop cannot start the next check: as on a starved host
        await asyncio.sleep(0.3)
        scheduler.stop()
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.WARNING, logger="failover.daemon"):
        asyncio.run(scenario())
    assert max(scheduler.lateness_s) >= 0.3
    warnings = [r.getMessage() for r in caplog.records if "checks start late" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, not once per late start
    text = metrics.exposition().decode()
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("failover_probe_start_lag_seconds_count")
    )
    assert float(count.split()[-1]) == len(scheduler.lateness_s)
    over = next(
        line
        for line in text.splitlines()
        if line.startswith("failover_probe_start_lag_seconds_bucket") and 'le="0.25"' in line
    )
    assert float(over.split()[-1]) < len(scheduler.lateness_s)  # the late one is above 0.25 s
