"""The simulator runs the daemon's own roles: a deliberately broken daemon rule (tests/broken.py,
a subclass of the shipped `Agent` or `Leader` with one step of its loop wrong; the core rules
untouched) is caught by the simulator's invariants, and the same playbook passes with the
shipped classes."""

from __future__ import annotations

import pytest

from failover.daemon.agent import Agent
from failover.daemon.leader import Leader
from failover.sim import control
from failover.sim.playbook import load_playbook
from failover.sim.run import Outcome, run_playbook
from tests.broken import ConfirmsWithoutSession, CountsFromTheLastReport
from tests.sim.conftest import ROOT


def play(name: str) -> Outcome:
    return run_playbook(load_playbook(ROOT / "playbooks" / f"{name}.yaml"), seed=1)


def names(outcome: Outcome) -> set[str]:
    return {str(v["name"]) for v in outcome.violations}


def test_the_simulator_builds_the_shipped_classes() -> None:
    assert vars(control)["Agent"] is Agent and vars(control)["Leader"] is Leader


def test_an_agent_that_confirms_without_a_session_keeps_two_primaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert play("agent-lost-in-hold-down").passed
    monkeypatch.setattr(control, "Agent", ConfirmsWithoutSession)
    broken = play("agent-lost-in-hold-down")
    assert not broken.passed and "primary_overlap" in names(broken)
    assert any(
        "dc1 web primary" in line or "both primary" in line for line in broken.trace.splitlines()
    )


def test_a_leader_that_counts_a_lost_agent_from_its_last_report_promotes_too_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert play("agent-lost-before-its-lease-ends").passed
    monkeypatch.setattr(control, "Leader", CountsFromTheLastReport)
    broken = play("agent-lost-before-its-lease-ends")
    assert not broken.passed and "primary_overlap" in names(broken)


def test_a_stale_writers_commit_reaches_the_coordinator_and_is_refused() -> None:
    outcome = play("stale-writer")
    assert outcome.passed
    lines = outcome.trace.splitlines()
    frozen = next(i for i, line in enumerate(lines) if "frozen before its commit" in line)
    refused = next(i for i, line in enumerate(lines) if "stale commit refused: NotLeader" in line)
    assert any("dc1-a leads" in line for line in lines[frozen:refused])
    assert outcome.switches == 1  # only the new leader's failover was written
