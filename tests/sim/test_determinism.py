from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from failover.sim.campaign import load_campaign, run_one
from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook
from tests.sim.conftest import CHAOS, ROOT


def test_same_seed_gives_a_byte_identical_trace() -> None:
    campaign = load_campaign(CHAOS)
    first = run_one(campaign, 7, keep_trace=True).trace
    second = run_one(campaign, 7, keep_trace=True).trace
    assert first == second
    assert first.count("\n") > 50  # a real run with faults, not an empty trace


def test_different_seeds_give_different_traces() -> None:
    campaign = load_campaign(CHAOS)
    assert (
        run_one(campaign, 7, keep_trace=True).trace != run_one(campaign, 8, keep_trace=True).trace
    )


def test_playbook_trace_is_identical_across_processes_and_hash_seeds() -> None:
    book = ROOT / "playbooks" / "site-power-loss.yaml"
    here = hashlib.sha256(run_playbook(load_playbook(book), 3).trace.encode()).hexdigest()
    code = (
        "import hashlib,sys;from failover.sim.playbook import load_playbook;"
        "from failover.sim.run import run_playbook;"
        f"t=run_playbook(load_playbook({str(book)!r}),3).trace;"
        "print(hashlib.sha256(t.encode()).hexdigest())"
    )
    for hash_seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=ROOT,
        )
        assert out.stdout.strip() == here


def test_virtual_clock_only_moves_forward() -> None:
    campaign = load_campaign(CHAOS)
    times = []
    for line in run_one(campaign, 11, keep_trace=True).trace.splitlines():
        times.append(float(line.split()[0]))
    assert times == sorted(times)
