"""Each serving site's edge router is a location (`router-SITE`): cut from the isp, its BGP
session and the clients' way in fail; cut from a daemon, that daemon cannot steer through it."""

from __future__ import annotations

from failover.sim.faults import LinkFault, inject, problems
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.sim.conftest import REFERENCE


def _world() -> World:
    return World(load_topology(REFERENCE), 1)


def test_a_router_cut_from_the_isp_loses_its_routes_there_after_the_hold_time() -> None:
    world = _world()
    world.run_until(10.0)
    inject(world, LinkFault(kind="link_cut", between=("router-dc1", "isp")))
    hold_s = world.model.steering.bgp_hold_s
    world.run_until(10.0 + hold_s - 0.01)
    assert world.traffic.seen[("web", "dc1")] == "primary"
    world.traffic.refresh()
    assert world.traffic.rate < 0.5  # the clients' way in is cut at once
    world.run_until(10.0 + hold_s + 0.01)
    assert world.traffic.seen[("web", "dc1")] == "withdrawn"
    assert world.steering.route[("web", "dc1")] == "primary"  # the router itself announces on
    assert world.traffic.top("web") == "dc2"


def test_a_site_cut_from_the_clients_keeps_its_bgp_session() -> None:
    """`dc1`-`clients` is the lab's cut between dc1 and the client namespace: the isp's BGP
    session with dc1 goes on."""
    world = _world()
    world.run_until(10.0)
    inject(world, LinkFault(kind="link_cut", between=("dc1", "clients")))
    world.run_until(60.0)
    assert world.traffic.seen[("web", "dc1")] == "primary"


def test_an_agent_cut_from_its_router_cannot_steer_and_its_stop_hook_neither() -> None:
    world = _world()
    world.run_until(10.0)
    inject(world, LinkFault(kind="link_cut", between=("dc1-a", "router-dc1")))
    world.crash("dc1-a", "crashes", restart=False)
    world.run_until(30.0)
    assert world.steering.route[("web", "dc1")] == "primary"
    assert "the stop hook on dc1-a cannot reach router-dc1" in world.trace()
    other = _world()
    other.run_until(10.0)
    other.crash("dc1-a", "crashes", restart=False)
    other.run_until(30.0)
    assert other.steering.route[("web", "dc1")] == "held"


def test_router_and_isp_names_are_checked() -> None:
    def found(*between: str, kind: str = "link_cut") -> list[tuple[str, str]]:
        spec = LinkFault(kind=kind, between=between)  # type: ignore[arg-type]
        return problems(spec, ["dc1", "dc2", "witness"], ["dc1", "dc2"], [], ["dc1-a"], [], [])

    assert found("router-dc1", "isp") == []
    assert found("dc1-a", "router-dc2") == []
    assert found("dc1", "isp") == [
        ("between", "'isp' pairs only with a site's router (router-dc1, router-dc2)")
    ]
    assert found("router-witness", "isp")[0] == ("between", "unknown location 'router-witness'")
    assert found("router-dc1", "isp", kind="link_latency")[0][1].startswith("'router-dc1': only")
