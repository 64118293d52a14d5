"""`failover supervise --restart-s`: a child that dies starts again, unless the supervisor was
told to stop while it waited to restart it (as systemd's Restart= with a stop in between)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

SUPERVISE = [sys.executable, "-m", "failover", "supervise", "--watchdog-s", "5"]


def _events(stderr: str) -> list[str]:
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("component") == "supervisor":
                found.append(record["event"])
    return found


def test_a_dead_child_starts_again() -> None:
    process = subprocess.Popen(
        [*SUPERVISE, "--restart-s", "0.2", "--", "sh", "-c", "exit 3"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert _events(stderr).count("started") >= 3, stderr


def test_a_stop_while_waiting_to_restart_starts_nothing() -> None:
    process = subprocess.Popen(
        [*SUPERVISE, "--restart-s", "2", "--", "sh", "-c", "exit 3"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if '"event": "restart"' in line:
            break
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=10)
    events = _events("".join(lines) + rest)
    assert "restart" in events
    assert events.count("started") == 1, events
    assert process.returncode is not None
