"""A daemon that starts again (its crash over, its site's power back, its supervisor's
restart) starts connecting only after `world.daemons.startup_s`, as the lab's `failover run`
does (interpreter start-up and a quick first connect: 0.54-0.88 s, median 0.71 s), and runs
its roles once connected (tests/sim/test_zookeeper_sessions.py)."""

from __future__ import annotations

from pathlib import Path

from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook

ROOT = Path(__file__).resolve().parents[2]


def test_a_restarted_daemon_runs_its_roles_after_its_start_up() -> None:
    book = load_playbook(ROOT / "playbooks" / "active-agent-crash.yaml")
    startup = book.topology.world.daemons.startup_s
    assert startup > 0
    outcome = run_playbook(book, 1)
    ends = [float(line.split()[0]) for line in outcome.timeline if "ends: " in line]
    started = [float(line.split()[0]) for line in outcome.timeline if line.endswith(" started")]
    assert ends and started, outcome.timeline
    assert any(abs(s - (e + startup)) < 1e-6 for e in ends for s in started), (ends, started)
    assert not any(abs(s - e) < 1e-6 for e in ends for s in started)
