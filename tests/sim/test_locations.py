"""Finer locations: each daemon and ZooKeeper server is a location of its own; a cut can join
any two, and a session needs a reachable server of the quorum."""

from __future__ import annotations

from failover.sim.faults import LinkFault, inject, problems
from failover.sim.topology import load_topology, zookeeper_names
from failover.sim.world import World
from tests.sim.conftest import REFERENCE


def _world() -> World:
    return World(load_topology(REFERENCE), 1)


def _cut(world: World, a: str, b: str) -> None:
    inject(world, LinkFault(kind="link_cut", between=(a, b)))


def test_servers_are_named_by_site_and_number() -> None:
    names = [name for name, _ in zookeeper_names(load_topology(REFERENCE).world.zookeeper)]
    assert names == ["zk-dc1-1", "zk-dc1-2", "zk-dc2-1", "zk-dc2-2", "zk-witness-1"]


def test_a_daemon_cut_from_the_other_sites_keeps_its_session_through_its_own() -> None:
    world = _world()
    world.run_until(5.0)
    _cut(world, "dc1-a", "dc2")
    _cut(world, "dc1-a", "witness")
    world.run_until(30.0)
    assert world.daemons["dc1-a"].connected and world.quorum_ready
    assert "dc1-a session" not in world.trace().split("5.000", 1)[-1]
    site = _world()
    site.run_until(5.0)
    _cut(site, "dc1", "dc2")
    _cut(site, "dc1", "witness")
    site.run_until(30.0)
    assert not site.daemons["dc1-a"].connected  # the whole site: its servers lose the quorum


def test_a_daemon_cut_from_every_quorum_server_loses_its_session() -> None:
    world = _world()
    world.run_until(5.0)
    for server in world.zk_names:
        _cut(world, "dc2-a", server)
    world.run_until(30.0)
    assert not world.daemons["dc2-a"].connected
    assert "dc2-a session" in world.trace() and " expired" in world.trace()
    assert world.daemons["dc1-a"].connected


def test_a_zookeeper_leader_cut_from_a_majority_is_replaced() -> None:
    world = _world()
    world.run_until(5.0)
    assert world.zk_names[world.zk_leader] == "zk-witness-1"  # the highest id, as in the lab
    for follower in ("zk-dc1-1", "zk-dc1-2", "zk-dc2-1"):
        _cut(world, "zk-witness-1", follower)
    world.run_until(30.0)
    assert world.quorum_ready and world.zk_names[world.zk_leader] == "zk-dc2-2"
    assert "quorum re-electing" in world.trace()
    assert all(d.connected for d in world.daemons.values())


def test_only_a_two_way_cut_reaches_a_daemon_or_server() -> None:
    spec = LinkFault(kind="link_latency", between=("dc1-a", "dc2"))
    found = problems(spec, ["dc1", "dc2"], ["dc1", "dc2"], [], ["dc1-a"], [], ["zk-dc1-1"])
    assert found == [
        ("between", "'dc1-a': only a two-way link_cut reaches a daemon, server or router")
    ]
    spec = LinkFault(kind="link_cut", between=("zk-dc1-1", "nowhere"))
    found = problems(spec, ["dc1", "dc2"], ["dc1", "dc2"], [], ["dc1-a"], [], ["zk-dc1-1"])
    assert found == [("between", "unknown location 'nowhere'")]
