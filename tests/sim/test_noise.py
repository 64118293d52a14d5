"""Background probe loss (`Noise`): not a fault, so a failover it causes counts as false."""

from __future__ import annotations

import pytest

from failover.sim.campaign import Noise, run_steady, run_steady_split
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.sim.conftest import REFERENCE, ROOT


def test_heavy_noise_on_every_check_causes_false_failovers_that_are_counted() -> None:
    result = run_steady(load_topology(REFERENCE), 0.5, 3, Noise(0.35, cross_site_only=False))
    assert result.down_verdicts > 10
    assert result.false_failovers >= 1
    assert {v["name"] for v in result.violations} == {"false_failover"}


def test_noise_across_sites_only_spares_each_sites_own_checks() -> None:
    world = World(load_topology(REFERENCE), 1)
    Noise(0.5, cross_site_only=True).apply(world)
    world.run_until(600.0)
    seen = [line.split()[2:5] for line in world.lines if " verdict " in line]
    assert seen  # the noise turns verdicts
    for observer, _, target in seen:
        assert target.split("/")[0] != observer.split("-")[0]  # dc1-a never doubts dc1/...


def test_light_noise_without_faults_moves_nothing() -> None:
    result = run_steady(load_topology(REFERENCE), 20.0, 5, Noise(0.01, cross_site_only=False))
    assert result.switches == 0 and result.violations == []


def test_a_split_long_run_is_the_same_over_one_or_two_processes() -> None:
    topology = load_topology(ROOT / "simulations" / "fast.yaml")
    noise = Noise(0.05, cross_site_only=False)
    one = run_steady_split(topology, 0.2, 7, noise, pieces=2, jobs=1)
    two = run_steady_split(topology, 0.2, 7, noise, pieces=2, jobs=2)
    assert [(r.seed, r.events, r.down_verdicts) for r in one] == [
        (r.seed, r.events, r.down_verdicts) for r in two
    ]
    assert [r.seed for r in one] == [7000, 7001] and one[0].events != one[1].events


def test_the_fast_topology_runs_the_fast_profile() -> None:
    config = load_topology(ROOT / "simulations" / "fast.yaml").config
    app = config.sites["dc1"].services["app"].check
    assert (app.interval_s, app.timeout_s, app.fall) == (0.2, 0.15, 3)
    assert config.policy.hold_down_s == 0.3


def test_noise_out_of_range_is_refused() -> None:
    world = World(load_topology(REFERENCE), 1)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        world.observers.set_ambient_loss(1.5)
