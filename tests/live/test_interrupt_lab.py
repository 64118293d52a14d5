"""Ctrl-C in the middle of a live game-day: the command ends promptly and leaves nothing of
the lab behind (no `fo-*` namespace, no process in a namespace of its own, no nftables table
of the lab), as `failover lab down` would."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

import pytest

from failover.lab.daemons import FAILOVER
from failover.testing.lab import unavailable

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PLAYBOOK = Path(__file__).parent / "db-down-short.yaml"
TEARDOWN_S = 20.0  # the lab's own teardown: named takes ~2 s, PostgreSQL, five JVMs


def _net(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def elsewhere() -> set[str]:
    """PIDs whose network namespace is not ours."""
    own = _net("self")
    return {p for p in os.listdir("/proc") if p.isdigit() and _net(p) not in (None, own)}


def namespaces() -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith("fo-")]


def test_ctrl_c_mid_run_tears_the_lab_down() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    before = elsewhere()
    process = subprocess.Popen(
        [FAILOVER, "gameday", str(PLAYBOOK), "--live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    try:
        selector = selectors.DefaultSelector()
        assert process.stderr is not None
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and not any("live run:" in s for s in said):
            if selector.select(1.0):
                line = process.stderr.readline()
                if not line:
                    break
                said.append(line.rstrip())
        assert any("live run:" in s for s in said), "\n".join(said)
        time.sleep(3.0)  # mid-run: the fault is in, the recorder samples
        assert namespaces(), "the lab is not up mid-run"
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            code = process.wait(TEARDOWN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {TEARDOWN_S:g} s after Ctrl-C")
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10.0)
    assert code != 0, f"exit {code} after Ctrl-C"
    assert namespaces() == [], f"left after Ctrl-C ({took:.1f} s): {namespaces()}"
    time.sleep(0.5)  # a process killed by PID may still be on its way out
    left = elsewhere() - before
    commands = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in left if _net(p)}
    assert commands == {}, f"processes left in other namespaces: {commands}"
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    assert "fo_" not in tables.stdout, tables.stdout
