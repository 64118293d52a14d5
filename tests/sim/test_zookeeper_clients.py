"""Each daemon's ZooKeeper client is attached to one server and moves as kazoo does; the
ensemble notices a silent loss after tickTime x syncLimit. Figures from the lab (5 servers,
tick 200 ms, syncLimit 5, session 4 s, the daemon's kazoo settings) are in the docstrings."""

from __future__ import annotations

import re
from collections.abc import Callable

from failover.sim.faults import LinkFault, ZooKeeperFault, inject
from failover.sim.topology import parse_topology
from failover.sim.world import World
from tests.sim.conftest import REFERENCE


def _world(seed: int = 1, replace: tuple[str, str] | None = None) -> World:
    text = REFERENCE.read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    return World(parse_topology(text, "reference.yaml", REFERENCE.parent), seed)


def _at(world: World, when: float, action: Callable[[], object]) -> None:
    world.at(when, lambda _: action())


def _cut(world: World, a: str, b: str) -> None:
    inject(world, LinkFault(kind="link_cut", between=(a, b)))


def _times(world: World, pattern: str) -> list[float]:
    return [float(line.split()[0]) for line in world.lines if re.search(pattern, line)]


def _server(world: World, name: str) -> int:
    return world.zk_names.index(name)


def test_the_ensemble_is_led_by_the_highest_id_as_in_the_lab() -> None:
    world = _world()
    assert world.zk_names[world.zk_leader] == "zk-witness-1"  # the lab: myid 5 leads


def _follower_cut(attached: str, session: str = "4") -> World:
    world = _world(replace=("session_timeout_s: 4", f"session_timeout_s: {session}"))
    world.run_until(5.0)
    world.zk.attach("dc1-a", _server(world, attached))
    _at(world, 10.0, lambda: _cut(world, "zk-dc1-1", "zk-witness-1"))
    world.run_until(40.0)
    return world


def test_a_session_expires_after_a_cut_only_when_its_server_is_cut_from_the_leader() -> None:
    """With a session shorter than tickTime x syncLimit, a client whose server is cut from
    the ZooKeeper leader is dropped too late: its session is gone. A client on another server
    of the same site, just as close to the rest of the quorum, keeps its session."""
    cut = _follower_cut("zk-dc1-1", session="0.8")
    assert _times(cut, r"dc1-a session \d+ expired") == [10.8]  # unheard since the cut
    assert _times(cut, "dc1-a new session")
    kept = _follower_cut("zk-dc1-2", session="0.8")
    assert not _times(kept, "dc1-a session .* expired")
    assert not _times(kept, "dc1-a.* dropped")


def test_a_follower_cut_from_its_leader_drops_its_clients_after_sync_limit_ticks() -> None:
    """Lab: dropped 0.95-1.03 s after the cut, connected again 0.01-0.83 s later (a refusing
    server costs nothing, a silent one the bounded connect timeout, 0.4 s), session kept."""
    world = _follower_cut("zk-dc1-1")
    (dropped,) = _times(world, "dc1-a's connection to zk-dc1-1 dropped")
    assert dropped == 11.0  # tickTime 200 ms x syncLimit 5
    back = [t for t in _times(world, "dc1-a connected to") if t > dropped]
    assert back and back[0] - dropped <= 4 * world.zk.connect_s + 0.1
    assert not _times(world, "dc1-a session .* expired")
    assert world.daemons["dc1-a"].connected


def test_a_daemon_cut_from_its_server_notices_when_a_call_goes_unanswered() -> None:
    """The daemon calls every cycle (so kazoo never pings); its next call gets no answer within
    the call timeout and its coordinator drops the connection; the session survives."""
    noticed = []
    for seed in range(1, 9):
        world = _world(seed)
        world.run_until(5.0)
        world.zk.attach("dc2-a", _server(world, "zk-witness-1"))
        _at(world, 10.0, lambda world=world: _cut(world, "dc2-a", "zk-witness-1"))
        world.run_until(30.0)
        (dropped,) = _times(world, "dc2-a's connection to zk-witness-1 dropped")
        noticed.append(dropped - 10.0)
        assert not _times(world, "dc2-a session .* expired")
        assert world.daemons["dc2-a"].connected
    call_s = 1.0  # min(session timeout, watchdog / 3)
    assert all(call_s <= d <= call_s + 1.0 for d in noticed), noticed  # + up to one cycle
    assert len(set(noticed)) > 1  # drawn, not fixed


def test_a_killed_zookeeper_leader_is_replaced_sooner_than_a_silently_lost_one() -> None:
    """Lab: after a kill -9 of the leader clients are back in 0.40-0.70 s; after its site went
    silent the followers drop their clients at 1.03 s and are back at 1.50 s."""
    killed = _world()
    down = ZooKeeperFault(kind="zookeeper_server_down", site="witness")
    _at(killed, 10.0, lambda: inject(killed, down))
    killed.run_until(30.0)
    silent = _world()
    _at(silent, 10.0, lambda: silent.set_power("witness", False))
    silent.run_until(30.0)
    assert _times(killed, "quorum serving") == [10.4]  # election_s
    assert _times(silent, "quorum serving") == [11.4]  # tickTime x syncLimit + election_s
    assert min(_times(killed, r"dropped$")) == 10.0  # the followers' connections reset
    assert min(_times(silent, r"dropped$")) == 11.0
    for world in (killed, silent):
        assert not _times(world, "(dc1|dc2)-a session .* expired")
        assert all(world.daemons[n].connected for n in ("dc1-a", "dc2-a"))
