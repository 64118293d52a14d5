from __future__ import annotations

from pathlib import Path

import pytest

from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook
from tests.broken import FailsOverAt30, IgnoresQuorum
from tests.sim.conftest import PLAYBOOKS, ROOT


def test_every_scenario_of_the_issue_has_a_playbook() -> None:
    names = {p.stem for p in PLAYBOOKS}
    for kind in ("app", "lb", "db", "mail", "firewall"):
        assert f"{kind}-down" in names
    assert {
        "site-power-loss",
        "inter-site-cut",
        "witness-lost",
        "zookeeper-server-lost",
        "zookeeper-quorum-lost",
        "leader-crash-mid-switch",
        "flapping-app",
        "switchover-and-back",
        "maintenance-freeze",
        "no-witness",
    } <= names


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.stem)
def test_shipped_playbook_passes(path: Path) -> None:
    outcome = run_playbook(load_playbook(path), seed=1)
    failed = [v for v in outcome.expectations + outcome.steady_state if not v.passed]
    assert outcome.passed, (failed, outcome.violations, "\n".join(outcome.timeline))
    assert outcome.violations == []


@pytest.mark.parametrize("seed", [2, 5])
def test_failover_playbooks_pass_under_other_seeds(seed: int) -> None:
    for name in ("db-down", "site-power-loss", "leader-crash-mid-switch", "inter-site-cut"):
        outcome = run_playbook(load_playbook(ROOT / "playbooks" / f"{name}.yaml"), seed=seed)
        assert outcome.passed, (name, outcome.expectations)


def test_no_witness_shows_the_limitation_that_the_witness_removes() -> None:
    without = run_playbook(load_playbook(ROOT / "playbooks" / "no-witness.yaml"))
    with_witness = run_playbook(load_playbook(ROOT / "playbooks" / "site-power-loss.yaml"))
    assert without.switches == 0
    world = without.series["world"]
    assert world.control.desired["mail"].active == "dc1"  # pointing at the dead site
    assert world.traffic.lost_s("mail") > 200
    assert "quorum lost" in without.trace
    assert with_witness.switches == 2
    assert with_witness.rto_s is not None and with_witness.rto_s < 60
    assert without.unavailable_s > 3 * with_witness.unavailable_s


def test_leader_crash_mid_switch_is_finished_by_the_next_leader() -> None:
    outcome = run_playbook(load_playbook(ROOT / "playbooks" / "leader-crash-mid-switch.yaml"))
    trace = outcome.trace
    crash = trace.index("dc1-a crashed")
    assert trace.index("dc2 switching epoch 2") < crash
    promoted = trace.index("dc2 steady epoch 3")
    assert "[leader dc2-a]" in trace[promoted:].splitlines()[0]
    assert "stop hook holds the primary" in trace


def test_the_broken_policy_is_caught_by_the_invariants() -> None:
    book = load_playbook(ROOT / "playbooks" / "inter-site-cut.yaml")
    outcome = run_playbook(book, seed=1, engine_factory=IgnoresQuorum)
    names = {v["name"] for v in outcome.violations}
    assert "switch_on_inter_site_cut" in names
    assert "switch_without_quorum" in names
    assert not outcome.passed
    assert all(v["trace"] for v in outcome.violations)  # each with the trace that led to it


def test_a_failover_on_a_healthy_site_counts_as_false() -> None:
    book = load_playbook(ROOT / "playbooks" / "witness-lost.yaml")
    broken = run_playbook(book, seed=1, engine_factory=FailsOverAt30)
    assert broken.series["world"].checker.false_failovers >= 1
    sound = run_playbook(load_playbook(ROOT / "playbooks" / "db-down.yaml"), seed=1)
    assert sound.series["world"].checker.false_failovers == 0


def test_loss_on_a_site_own_checks_reaches_only_that_site_observer() -> None:
    outcome = run_playbook(load_playbook(ROOT / "playbooks" / "own-checks-lossy.yaml"))
    downs = [line for line in outcome.trace.splitlines() if " sees " in line and " down" in line]
    assert downs, "the loss on dc1's own checks changed no verdict"
    assert all(" dc1-a sees dc1/" in line for line in downs), downs
    assert outcome.switches == 0 and outcome.passed
