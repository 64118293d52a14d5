"""Skipping ahead over lossy probes' successes gives the trace that probing one by one gives.

The reference is the same code with `skip_ahead` off: every lossy probe is an event that draws
its number from the pair's stream. The runs mix background loss with chaos (pauses, cuts,
restarts, flaps) so that skips are settled by every kind of change in the world.
"""

from __future__ import annotations

import pytest

from failover.sim.campaign import Campaign, Noise, load_campaign, run_one, run_steady
from failover.sim.faults import DaemonFault, LinkFault, inject
from failover.sim.observers import Observers, Target
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.sim.conftest import CHAOS, REFERENCE, ROOT


def _short(path: str, duration_s: float) -> Campaign:
    campaign = load_campaign(ROOT / "simulations" / path)
    return Campaign(
        campaign.source,
        campaign.spec.model_copy(update={"duration_s": duration_s}),
        campaign.topology,
    )


def _verdicts(trace: str) -> list[str]:
    return [line for line in trace.splitlines() if " verdict " in line]


@pytest.mark.parametrize(
    ("path", "loss", "cross_site_only", "seed"),
    [
        ("chaos.yaml", 0.01, True, 1),
        ("chaos.yaml", 0.01, False, 2),
        ("chaos.yaml", 0.2, False, 3),
        ("chaos.yaml", 0.2, True, 4),
        ("adversarial.yaml", 0.01, False, 5),
        ("adversarial.yaml", 0.2, False, 6),
    ],
)
def test_skipping_ahead_gives_the_trace_of_probing_one_by_one(
    path: str, loss: float, cross_site_only: bool, seed: int
) -> None:
    campaign = _short(path, 900.0)
    skipped = run_one(campaign, seed, keep_trace=True, noise=Noise(loss, cross_site_only))
    one_by_one = run_one(
        campaign, seed, keep_trace=True, noise=Noise(loss, cross_site_only, skip_ahead=False)
    )
    assert skipped.trace == one_by_one.trace
    assert skipped.switches == one_by_one.switches
    assert skipped.events < one_by_one.events
    # the loss shows in the verdicts: the runs compared are not those of a quiet world
    quiet = run_one(campaign, seed, keep_trace=True)
    assert _verdicts(skipped.trace) != _verdicts(quiet.trace)


def test_a_long_quiet_run_with_loss_is_few_events_and_the_same_verdicts() -> None:
    topology = load_topology(REFERENCE)
    skipped = run_steady(topology, 3.0, 9, Noise(0.05, False), keep_trace=True)
    one_by_one = run_steady(topology, 3.0, 9, Noise(0.05, False, False), keep_trace=True)
    assert skipped.trace == one_by_one.trace
    assert skipped.events * 5 < one_by_one.events
    assert _verdicts(skipped.trace)  # 5 % loss, fall 3: some verdicts flip within 3 hours


def _paused_world(skip_ahead: bool, pause_s: float) -> World:
    """Loss on the probes between sites; the witness freezes for `pause_s` (less than its
    watchdog's 3 s) in the middle of its skips, at several phases of its probe grid, while a
    cut between the serving sites starts and ends."""
    world = World(load_topology(REFERENCE), 4)
    Noise(0.1, True, skip_ahead).apply(world)
    pause = DaemonFault(kind="daemon_pause", instance="witness-a")
    cut = LinkFault(kind="link_cut", between=("dc1", "dc2"))

    def fault(spec: DaemonFault | LinkFault, start: float, end: float) -> None:
        def begin(_: object) -> None:
            stop = inject(world, spec)
            world.at(end, lambda _: stop())

        world.at(start, begin)

    for start in (100.25, 200.6, 300.9, 401.3):
        fault(pause, start, start + pause_s)
        fault(cut, start + pause_s / 3, start + pause_s / 2)
    world.run_until(500.0)
    return world


@pytest.mark.parametrize("pause_s", [0.3, 0.9, 1.7, 2.9])
def test_a_pause_settles_a_skip_as_probing_one_by_one_would(pause_s: float) -> None:
    skipped = _paused_world(True, pause_s)
    one_by_one = _paused_world(False, pause_s)
    assert skipped.trace() == one_by_one.trace()
    assert skipped.trace().count(" resumed") == 4
    assert skipped._seq < one_by_one._seq


def test_the_same_seed_gives_the_same_long_run() -> None:
    campaign = load_campaign(CHAOS)
    noise = Noise(0.05, True)
    first = run_one(campaign, 12, keep_trace=True, noise=noise)
    assert first.trace == run_one(campaign, 12, keep_trace=True, noise=noise).trace


@pytest.mark.parametrize("path", ["chaos.yaml", "adversarial.yaml"])
def test_a_remembered_outcome_is_always_the_worlds_current_one(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcomes are remembered until the next `poke`: every change in the world must poke."""
    remembered = Observers._outcome
    checked = []

    def verified(self: Observers, site: str, target: Target) -> tuple[float, str, float]:
        known = remembered(self, site, target)
        assert known == self.outcome(site, target), (self.world.now, site, target.key)
        checked.append(known)
        return known

    monkeypatch.setattr(Observers, "_outcome", verified)
    for seed in (1, 2, 3):
        result = run_one(_short(path, 1800.0), seed, noise=Noise(0.05, False))
        errors = [v["message"] for v in result.violations if v["name"] == "simulator_error"]
        assert errors == []  # the run catches the assertion and reports it as a simulator error
    assert len(checked) > 1000
