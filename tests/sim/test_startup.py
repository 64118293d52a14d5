"""A daemon that starts again starts connecting only after `world.daemons.startup_s`, as the
lab's `failover run` does (interpreter start-up and a quick first connect: 0.54-0.88 s, median
0.71 s), and runs its roles once connected (tests/sim/test_zookeeper_sessions.py). When its
supervisor is started anew (a crash held down is over, the power is back) the supervisor's
own start comes first (`launch_s`: 0.18-0.44 s in the lab); a restart by the supervisor that
kept running has none (its `restart_s` after the crash)."""

from __future__ import annotations

from pathlib import Path

from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook

ROOT = Path(__file__).resolve().parents[2]


def started_after(book_name: str, mark: str) -> list[float]:
    """How long after each line containing `mark` a daemon started (the next start)."""
    outcome = run_playbook(load_playbook(ROOT / "playbooks" / f"{book_name}.yaml"), 1)
    times = [(float(line.split()[0]), line) for line in outcome.timeline]
    marks = [t for t, line in times if mark in line]
    starts = [t for t, line in times if line.endswith(" started")]
    assert marks and starts, outcome.timeline
    return [min(s for s in starts if s >= m) - m for m in marks if any(s >= m for s in starts)]


def test_a_daemon_held_down_starts_after_its_supervisor_and_its_own_start_up() -> None:
    daemons = load_playbook(ROOT / "playbooks" / "active-agent-crash.yaml").topology.world.daemons
    assert daemons.startup_s > 0 and daemons.launch_s > 0
    found = started_after("active-agent-crash", "ends: ")
    assert found == [daemons.startup_s + daemons.launch_s], found


def test_a_daemon_its_supervisor_restarts_starts_after_the_restart_delay_and_start_up() -> None:
    book = load_playbook(ROOT / "playbooks" / "witness-leads-agent-frozen.yaml")
    model = book.topology.world.daemons
    found = started_after("witness-leads-agent-frozen", "killed by the watchdog")
    assert found and all(abs(f - (model.restart_s + model.startup_s)) < 1e-6 for f in found), found


def test_a_daemon_whose_power_is_back_starts_after_its_supervisor_and_its_own_start_up() -> None:
    model = load_playbook(ROOT / "playbooks" / "site-power-loss.yaml").topology.world.daemons
    found = started_after("site-power-loss", " on")
    assert found == [model.startup_s + model.launch_s], found
