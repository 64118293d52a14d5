"""The simulator runs the daemon's own observer: each observer process keeps its verdicts in
the shipped `failover.daemon.observer.Verdicts` and publishes them through its coordinator
client. Its heartbeats are published when a leader reads (`failover.sim.observers`), which
decides as a heartbeat every period does. A deliberately broken observer (tests/broken.py) is
caught by a playbook's expectations and by the checker; the shipped one passes them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from failover.coord import Coordinator
from failover.daemon.leader import Leader, Snapshot
from failover.daemon.observer import Verdicts
from failover.sim import control
from failover.sim.campaign import load_campaign, run_one
from failover.sim.observers import Observers
from failover.sim.playbook import load_playbook
from failover.sim.run import Outcome, run_playbook
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.broken import NeverRepublishes, PublishesItsPreviousVerdicts
from tests.sim.conftest import CHAOS, REFERENCE, ROOT

ADVERSARIAL = ROOT / "simulations" / "adversarial.yaml"
DESIRED = re.compile(r"^\s*([\d.]+) desired\s+(\w+): (\w+) (\w+) epoch (\d+) by (\S+) \((\w+)\)")


def play(name: str) -> Outcome:
    return run_playbook(load_playbook(ROOT / "playbooks" / f"{name}.yaml"), seed=1)


def failed(outcome: Outcome) -> set[str]:
    return {str(e.name) for e in outcome.expectations if not e.passed}


def test_each_observer_process_publishes_the_shipped_verdicts() -> None:
    assert vars(control)["Verdicts"] is Verdicts
    world = World(load_topology(REFERENCE), 1)
    world.run_until(30.0)
    observers = [p for p in world.control.processes.values() if "observer" in p.daemon.roles]
    assert observers
    for process in observers:
        assert type(process.verdicts) is Verdicts
        published, _ = world.store.published[process.daemon.name]  # its client's node
        assert {o.target: o.verdict for o in published} == {
            target: state.verdict for target, state in process.verdicts.states.items()
        }
        assert {o.verdict for o in published} == {"up"}


def test_a_killed_observer_last_heartbeated_as_it_died() -> None:
    """Its periodic cycle may have published just before the kill: its node stays fresh to
    the leader until its session expires, as a heartbeating daemon's does."""
    world = World(load_topology(REFERENCE), 1)
    world.run_until(100.0)  # quiet: nobody read, so nobody heartbeated since the start
    assert world.control.stamps["witness-a"] == 0.0
    world.crash("witness-a", "killed", restart=False)
    assert world.control.stamps["witness-a"] == 100.0
    world.run_until(100.5)
    leading = world.control.acting()
    assert leading is not None
    leader = world.control.processes[leading.name].cycle.leader
    assert leader is not None and leader.arrivals["witness-a"].seen_at >= 100.0
    assert "witness-a" in world.store.published  # until its session expires


def reads_checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """At every leader read: each observer that runs on a live session has published its
    current verdicts (or has a change on its way) at most a heartbeat ago."""
    checked = [0]
    read = Leader.read

    def checking(self: Leader, coordinator: Coordinator, now: float) -> Snapshot:
        snap = read(self, coordinator, now)
        world: Any = coordinator.store.world  # type: ignore[attr-defined]
        for name, process in world.control.processes.items():
            verdicts = process.verdicts
            if verdicts is None or not process.live or not process.daemon.connected:
                continue
            if process.client.session_state() != "connected":
                continue
            assert verdicts.published_at is not None
            assert world.now - verdicts.published_at <= verdicts.heartbeat_s + 1e-6, name
            assert world.now - world.control.stamps[name] <= verdicts.heartbeat_s + 1e-6, name
            if not verdicts.dirty:
                published, _ = world.store.published[name]
                assert [o.verdict for o in published] == [
                    s.verdict for s in verdicts.states.values()
                ], name
            checked[0] += 1
        return snap

    monkeypatch.setattr(Leader, "read", checking)
    return checked


def test_every_read_finds_each_heard_observer_published_within_a_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = reads_checked(monkeypatch)
    campaign = load_campaign(ADVERSARIAL)
    for seed in range(4):
        assert not run_one(campaign, seed).violations
    assert play("clock-skew").passed  # a wall clock stepped back stops no heartbeat
    assert checked[0] > 1000


def fingerprint(trace: str) -> list[tuple[float, tuple[str, ...]]]:
    """Every desired state written: (time, (group, active, phase, epoch, by, code))."""
    out = []
    for line in trace.splitlines():
        found = DESIRED.match(line)
        if found:
            out.append((float(found[1]), found.groups()[1:]))
    return out


@pytest.mark.parametrize(
    ("path", "seeds"), [(ADVERSARIAL, range(12)), (CHAOS, range(3))], ids=["adversarial", "chaos"]
)
def test_heartbeats_at_reads_decide_as_a_heartbeat_every_period(
    monkeypatch: pytest.MonkeyPatch, path: Any, seeds: range
) -> None:
    campaign = load_campaign(path)
    moved = 0
    for seed in seeds:
        lazy = run_one(campaign, seed, keep_trace=True)
        monkeypatch.setattr(Observers, "heartbeat_events", True)
        every = run_one(campaign, seed, keep_trace=True)
        monkeypatch.setattr(Observers, "heartbeat_events", False)
        assert not lazy.violations and not every.violations, seed
        assert every.events > 2 * lazy.events  # the reference has its heartbeats as events
        ours, theirs = fingerprint(lazy.trace), fingerprint(every.trace)
        assert [f for _, f in ours] == [f for _, f in theirs], seed
        # two reactions to a watch apart at most (the most found in 140 runs: 0.097 s)
        apart = 2 * campaign.topology.world.daemons.react_s + control.TIMER_MARGIN_S
        assert all(abs(a - b) <= apart for (a, _), (b, _) in zip(ours, theirs, strict=True)), seed
        moved += len(ours)
    assert moved >= 10  # decisions were compared, not two quiet runs


def test_an_observer_that_never_republishes_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert play("what-an-sre-checks").passed and play("stale-writer").passed
    monkeypatch.setattr(control, "Verdicts", NeverRepublishes)
    # its verdicts are stale when the operator's switch back needs the target healthy
    broken = play("what-an-sre-checks")
    assert "active == dc1 within 31 s not before 29 s" in failed(broken)
    # a new leader counts a stamp it never saw as fresh: the checker sees the stale votes
    broken = play("stale-writer")
    assert "switch_without_quorum" in {str(v["name"]) for v in broken.violations}


def test_an_observer_that_publishes_its_previous_verdicts_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert play("db-down").passed
    monkeypatch.setattr(control, "Verdicts", PublishesItsPreviousVerdicts)
    broken = play("db-down")
    assert "active == dc2 within 8 s" in failed(broken)
