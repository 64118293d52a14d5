"""`failover supervise` and the daemon's notifier speaking systemd's protocol, for real.

A child process sends READY=1 and WATCHDOG=1 with `failover.daemon.notify.Notifier` at the
interval it reads from $WATCHDOG_USEC, as the daemon does; the supervisor runs the stop hook
however the child ends (clean exit, frozen and killed by the watchdog, stopped), with
SERVICE_RESULT and EXIT_STATUS as systemd gives ExecStopPost=. No lab needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from failover.lab.daemons import FAILOVER
from failover.lab.netns import pid_alive
from failover.testing.servers.process import wait_until

CHILD = """
import sys, time
from failover.daemon.notify import Notifier, watchdog_interval_s
notifier = Notifier()
notifier.ready("child")
interval = watchdog_interval_s()
assert interval is not None, "no WATCHDOG_USEC"
beats = int(sys.argv[1])
while beats != 0:
    notifier.watchdog()
    time.sleep(interval)
    beats -= 1
"""


TICKING_CHILD = """
import sys, threading, time
from failover.daemon.notify import Notifier, watchdog_interval_s
out = open(sys.argv[1], "w", buffering=1)
def tick():
    while True:
        out.write(f"{time.monotonic()}\\n")
        time.sleep(0.001)
for _ in range(4):
    threading.Thread(target=tick, daemon=True).start()
notifier = Notifier()
notifier.ready("child")
interval = watchdog_interval_s()
while True:
    notifier.watchdog()
    time.sleep(interval)
"""


def supervise(tmp_path: Path, beats: int, watchdog_s: float = 1.0) -> subprocess.Popen[str]:
    hook = f"sh -c 'echo $SERVICE_RESULT $EXIT_STATUS >> {tmp_path / 'hook'}'"
    argv = [
        FAILOVER,
        "supervise",
        "--watchdog-s",
        str(watchdog_s),
        "--stop-hook",
        hook,
        "--",
        sys.executable,
        "-c",
        CHILD,
        str(beats),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def child_of(process: subprocess.Popen[str]) -> int:
    path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    wait_until(lambda: bool(path.read_text().split()), 10.0, "the supervised child")
    return int(path.read_text().split()[0])


def hook_runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "hook"
    return path.read_text().splitlines() if path.exists() else []


def finish(process: subprocess.Popen[str], timeout_s: float = 15.0) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"the supervisor did not end: {stderr}") from None
    return process.returncode, stderr


def test_keepalives_hold_the_watchdog_off_and_a_clean_exit_runs_the_hook(tmp_path: Path) -> None:
    started = time.monotonic()
    process = supervise(tmp_path, beats=6, watchdog_s=1.0)  # 6 x 0.5 s: longer than 1 s
    code, stderr = finish(process)
    assert code == 0, stderr
    assert time.monotonic() - started >= 2.5
    assert '"event": "ready"' in stderr and '"event": "watchdog"' not in stderr
    assert hook_runs(tmp_path) == ["success 0"]


def test_a_frozen_child_is_killed_by_the_watchdog_and_the_hook_runs(tmp_path: Path) -> None:
    process = supervise(tmp_path, beats=-1, watchdog_s=1.0)  # beats forever...
    pid = child_of(process)
    wait_until(lambda: Path(f"/proc/{pid}").exists(), 5.0, "the child")
    time.sleep(1.5)  # ...past the first watchdog period, then freezes
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    wait_until(lambda: bool(hook_runs(tmp_path)), 10.0, "the stop hook")
    took_s = time.monotonic() - frozen_at
    code, stderr = finish(process)
    assert '"event": "watchdog"' in stderr, stderr
    assert hook_runs(tmp_path)[0].startswith("watchdog "), hook_runs(tmp_path)
    assert took_s < 1.0 + 3.0, f"the hook ran {took_s:.1f} s after the child froze"
    assert code != 0


def test_a_frozen_child_killed_by_the_watchdog_never_runs_again(tmp_path: Path) -> None:
    """The watchdog's kill must not thaw the child first: SIGCONT before SIGABRT let a frozen
    daemon run for a moment (the lab saw it log and ping ZooKeeper, which kept its session 3 s
    longer). As systemd does, the supervisor signals first and continues the child after, so it
    dies on waking. Four threads write the time every millisecond; none is written after the freeze.
    The old order let some through in about half of the freezes: five freezes here."""
    for round_ in range(5):
        late = ran_after_freeze(tmp_path / f"ticks-{round_}")
        assert late is None, f"freeze {round_}: the child ran {late:.3f} s later"


def ran_after_freeze(ticks: Path) -> float | None:
    """Freeze the ticking child once; how long after the freeze it last wrote, if it did."""
    argv = [FAILOVER, "supervise", "--watchdog-s", "1", "--"]
    argv += [sys.executable, "-c", TICKING_CHILD, str(ticks)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = child_of(process)
    wait_until(lambda: ticks.exists() and ticks.stat().st_size > 0, 10.0, "the first tick")
    time.sleep(1.2)
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: stopped(pid), 5.0, "every thread of the child stopped")
    frozen_at = time.monotonic()
    wait_until(lambda: not pid_alive(pid), 10.0, "the watchdog's kill")
    process.send_signal(signal.SIGTERM)
    finish(process)
    late = [float(line) - frozen_at for line in ticks.read_text().split()]
    return max(late) if max(late) > 0 else None


def stopped(pid: int) -> bool:
    """Every thread of the process is stopped (a SIGSTOP reaches a running thread a moment
    after `kill` returns)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return all((task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for task in tasks)


def test_stopping_the_supervisor_stops_the_child_and_runs_the_hook(tmp_path: Path) -> None:
    process = supervise(tmp_path, beats=-1, watchdog_s=1.0)
    pid = child_of(process)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = finish(process)
    assert not Path(f"/proc/{pid}").exists(), "the child outlived its supervisor"
    assert hook_runs(tmp_path) == ["signal -15"], stderr
    assert '"event": "stop_hook"' in stderr, stderr
