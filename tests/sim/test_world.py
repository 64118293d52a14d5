from __future__ import annotations

from collections.abc import Callable

from failover.sim.faults import LinkFault, ServiceFault, ZooKeeperFault, inject
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.sim.conftest import REFERENCE


def _world(seed: int = 1) -> World:
    return World(load_topology(REFERENCE), seed)


def _at(world: World, when: float, action: Callable[[], object]) -> None:
    def fire(_: object) -> None:
        action()

    world.at(when, fire)


def test_a_quiet_world_needs_no_probe_events() -> None:
    world = _world()
    world.run_until(3600.0)
    assert world._seq < 10  # nothing changes: no probes, no engine cycles
    assert world.traffic.availability(None) == 1.0


def test_a_fault_is_probed_at_the_check_interval_then_goes_quiet() -> None:
    world = _world()
    _at(
        world,
        10.0,
        lambda: inject(world, ServiceFault(kind="service_down", site="dc2", service="app")),
    )
    world.run_until(100.0)
    before = world._seq
    verdicts = [line for line in world.lines if " verdict " in line]
    assert len(verdicts) == 3  # every observer sees dc2's app down once
    world.run_until(3600.0)
    assert world._seq - before < 10
    assert world.control.switches == 0  # the standby site failing moves nothing


def test_without_quorum_the_primary_is_held_after_the_lease_never_withdrawn() -> None:
    world = _world()
    _at(
        world,
        10.0,
        lambda: inject(world, ZooKeeperFault(kind="zookeeper_server_down", site="dc2", count=2)),
    )
    _at(
        world,
        10.0,
        lambda: inject(world, ZooKeeperFault(kind="zookeeper_server_down", site="witness")),
    )
    world.run_until(15.0)
    assert not world.quorum_ready
    route = world.steering.route
    assert route[("web", "dc1")] == "primary"  # within the lease (6 s)
    world.run_until(20.0)
    assert world.steering.route[("web", "dc1")] == "held"
    assert world.steering.route[("web", "dc2")] == "backup"
    world.run_until(120.0)
    assert world.control.switches == 0
    assert world.traffic.rate == 1.0  # both sites still reachable as backups


def test_one_way_cut_breaks_round_trips_in_both_directions() -> None:
    world = _world()
    inject(world, LinkFault(kind="link_cut", between=("dc1", "witness"), one_way=True))
    assert not world.reach("dc1", "witness") and not world.reach("witness", "dc1")
    assert world.reach("dc1", "dc2")


def test_session_expires_only_with_a_quorum_and_after_the_timeout() -> None:
    world = _world()
    _at(world, 10.0, lambda: world.pause("witness-a"))
    world.run_until(12.9)
    daemon = world.daemons["witness-a"]
    assert daemon.paused and not daemon.connected
    world.run_until(13.5)
    # the watchdog (3 s) killed the frozen daemon; its session lives until the timeout
    assert not daemon.alive
    assert "witness-a session 3 expired" not in world.trace()
    world.run_until(14.5)
    assert "witness-a session 3 expired" in world.trace()


def test_lease_expiry_is_reached_even_when_the_rule_rounds_at_its_deadline() -> None:
    # (511.993 + 6) - 511.993 < 6 in floating point: the rule must still say held at the
    # deadline lease_ends_at names, so the agent neither loops there nor stays primary.
    world = _world()
    _at(world, 511.993, lambda: inject(world, LinkFault(kind="link_cut", between=("dc1", "dc2"))))
    _at(
        world,
        511.993,
        lambda: inject(world, LinkFault(kind="link_cut", between=("dc1", "witness"))),
    )
    world.run_until(530.0)
    assert world.steering.route[("web", "dc1")] == "held"
    assert world._seq < 5000


def test_a_one_one_one_ensemble_keeps_its_quorum_when_a_site_dies() -> None:
    from failover.sim.topology import parse_topology

    text = REFERENCE.read_text().replace(
        "servers: {dc1: 2, dc2: 2, witness: 1}", "servers: {dc1: 1, dc2: 1, witness: 1}"
    )
    world = World(parse_topology(text, "small.yaml"), 1)
    _at(world, 10.0, lambda: world.set_power("dc1", False))
    world.run_until(60.0)
    assert world.quorum_ready and set(world.quorum_sites) == {"dc2", "witness"}
    assert world.control.desired["web"].active == "dc2"
    assert world.control.desired["web"].phase == "steady"


def test_the_upstream_picks_one_path_never_a_split() -> None:
    from failover.sim.traffic import best_path

    order = ["dc1", "dc2"]
    assert best_path({"dc1": "backup", "dc2": "backup"}, order) == "dc1"  # lowest router id
    assert best_path({"dc1": "backup", "dc2": "held"}, order) == "dc2"
    assert best_path({"dc1": "held", "dc2": "primary"}, order) == "dc2"
    assert best_path({"dc1": "primary", "dc2": "primary"}, order) == "dc1"
    assert best_path({"dc1": "withdrawn", "dc2": "backup"}, order) == "dc2"
    assert best_path({"dc1": "withdrawn", "dc2": "withdrawn"}, order) is None
