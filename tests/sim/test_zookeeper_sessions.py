"""Sessions as the real ensemble keeps them: a killed daemon's session runs out a session
timeout after the last packet its client sent; a restarted daemon cycles only once its first
connect ends (`failover/daemon/runner.py`); and a quorum's leader that lost its followers goes
on expiring sessions until it steps down, closes that a new quorum holding its history commits
(ZooKeeper 3.8: `SessionTrackerImpl`, `Leader.lead`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from failover.daemon.roles import Cycle
from failover.sim.faults import LinkFault, ZooKeeperFault, inject
from failover.sim.world import World
from tests.sim.test_zookeeper_clients import _at, _times, _world

SESSION_S = 4.0  # the reference's session timeout
CYCLE_S = 1.0  # the reference's cycle_s


def _last_heard(world: World, name: str) -> float:
    sid = world.control.processes[name].client._session_id
    assert sid is not None
    return world.store.sessions[sid].last_heard


# --- a killed daemon's session -------------------------------------------------------------


def test_a_killed_daemons_session_runs_out_from_its_last_packet_not_from_the_kill() -> None:
    """The daemon calls every cycle (kazoo pings only after a third of the session without a
    packet): the ensemble last heard it within a cycle before the kill (the lab's seed 39b
    saw its session end before kill + timeout)."""
    before = []
    for seed in range(1, 9):
        world = _world(seed)
        _at(world, 10.0, functools.partial(world.crash, "dc2-a", "killed", restart=False))
        world.run_until(30.0)
        (expired,) = _times(world, r"dc2-a session \d+ expired")
        before.append(10.0 + SESSION_S - expired)
    assert all(0.0 <= b < CYCLE_S for b in before), before
    assert len(set(before)) > 1  # drawn: the simulator keeps no phase of the periodic cycles


def test_a_frozen_daemon_killed_by_its_watchdog_was_last_heard_when_it_froze() -> None:
    world = _world()
    _at(world, 10.0, lambda: world.pause("dc2-a"))
    world.run_until(30.0)
    assert _times(world, "dc2-a killed by the watchdog")
    expired = _times(world, r"dc2-a session \d+ expired")
    assert expired == [pytest.approx(10.0 + SESSION_S, abs=1e-5)]


# --- a restarted daemon's first connect ----------------------------------------------------


def _cut_from_zookeeper(world: World, name: str) -> list[Callable[[], None]]:
    return [
        inject(world, LinkFault(kind="link_cut", between=(name, server)))
        for server in world.zk_names
    ]


def _cycles(monkeypatch: pytest.MonkeyPatch, world: World) -> list[tuple[str, float, str]]:
    seen: list[tuple[str, float, str]] = []
    run = Cycle.run

    def recorded(self: Cycle, now: float) -> float | None:
        seen.append((self.member.instance, world.now, self.coordinator.session_state()))
        return run(self, now)

    monkeypatch.setattr(Cycle, "run", recorded)
    return seen


def _restart_cut_off(until: float) -> World:
    """dc1-a (the active site's agent) is killed at 10 s, restarts 5 s later (running its
    roles `startup_s` after that) while it reaches no ZooKeeper server until `until`."""
    world = _world()
    world.run_until(9.0)
    ends: list[Callable[[], None]] = []

    def heal() -> None:
        for end in ends:
            end()

    _at(world, 10.0, lambda: world.crash("dc1-a", "killed"))
    _at(world, 11.0, lambda: ends.extend(_cut_from_zookeeper(world, "dc1-a")))
    _at(world, until, heal)
    return world


def test_a_restarted_daemon_cycles_only_once_its_first_session_is_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner waits in `_connect` (bounded by the session timeout) before its first cycle:
    an agent that cycled before would hold its site's primary with no epoch (chaos 4835)."""
    world = _restart_cut_off(until=17.5)
    cycles = _cycles(monkeypatch, world)
    world.run_until(40.0)
    (started,) = _times(world, "dc1-a started")
    assert started == pytest.approx(15.0 + world.model.daemons.startup_s)
    (connected,) = [t for t in _times(world, "dc1-a new session") if t > started]
    assert connected > 17.5
    mine = [(t, state) for name, t, state in cycles if name == "dc1-a" and t >= started]
    assert mine and all(state == "connected" and t > connected for t, state in mine), mine
    assert not [line for line in world.lines if "epoch 0" in line]


def test_a_restarted_daemon_without_a_session_cycles_when_its_connect_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No session within the session timeout: the runner logs it and cycles anyway (its client
    keeps trying); its agent's lease rule decides alone until it connects."""
    world = _restart_cut_off(until=30.0)
    cycles = _cycles(monkeypatch, world)
    world.run_until(40.0)
    (started,) = _times(world, "dc1-a started")
    (gave_up,) = _times(world, "dc1-a: no ZooKeeper session within 4 s; cycling without one")
    assert gave_up == pytest.approx(started + SESSION_S)
    mine = [t for name, t, _ in cycles if name == "dc1-a" and t >= started]
    assert mine and min(mine) >= gave_up
    assert world.checker.violations == []


# --- a lost quorum's leader ----------------------------------------------------------------


def _old_leader_expires(cut_before_deadline_s: float, dc2_power_off: bool = False) -> World:
    """The witness's server stops (5 s: a dc2 server leads the four left), dc1-a is killed
    (10 s), the link between dc1 and dc2 is cut `cut_before_deadline_s` before dc1-a's
    session would run out (no quorum: two and two), the witness's server is back at 20 s."""
    world = _world()
    _at(
        world,
        5.0,
        lambda: inject(world, ZooKeeperFault(kind="zookeeper_server_down", site="witness")),
    )
    world.run_until(9.0)
    assert world.zk_names[world.zk_leader].startswith("zk-dc2")
    world.run_until(10.0)
    world.crash("dc1-a", "killed", restart=False)
    deadline = _last_heard(world, "dc1-a") + SESSION_S
    assert deadline < 10.0 + SESSION_S
    cut = LinkFault(kind="link_cut", between=("dc1", "dc2"))
    _at(world, deadline - cut_before_deadline_s, lambda: inject(world, cut))
    if dc2_power_off:
        _at(world, 18.0, lambda: world.set_power("dc2", False))

    def witness_back() -> None:
        index = world.zk_names.index("zk-witness-1")
        world.zk_servers[index] = ("witness", True)
        world.refresh_coordination()

    _at(world, 20.0, witness_back)
    world.run_until(40.0)
    return world


def test_a_session_that_runs_out_before_the_old_leader_steps_down_is_closed_at_re_formation() -> (
    None
):
    """Live chaos seed 2: the old leader expired the session in the syncLimit x tickTime before
    it noticed it had lost its quorum; the close was committed when the quorum re-formed."""
    world = _old_leader_expires(cut_before_deadline_s=0.5)
    assert _times(world, "quorum lost")
    (serving,) = [t for t in _times(world, "quorum serving") if t > 20.0]
    assert _times(world, r"dc1-a session \d+ expired") == [serving]


def test_a_session_with_time_left_when_the_old_leader_steps_down_gets_a_fresh_timeout() -> None:
    world = _old_leader_expires(cut_before_deadline_s=2.0)  # it steps down 1 s before
    (serving,) = [t for t in _times(world, "quorum serving") if t > 20.0]
    assert _times(world, r"dc1-a session \d+ expired") == [
        pytest.approx(serving + SESSION_S, abs=1e-5)
    ]


def test_the_old_leaders_closes_are_lost_when_the_new_quorum_holds_none_of_its_servers() -> None:
    """dc2 (the old leader and its follower) loses power before the witness's server is back:
    the quorum of dc1 and the witness never saw the closes, and renews every session."""
    world = _old_leader_expires(cut_before_deadline_s=0.5, dc2_power_off=True)
    (serving,) = [t for t in _times(world, "quorum serving") if t > 20.0]
    assert _times(world, r"dc1-a session \d+ expired") == [
        pytest.approx(serving + SESSION_S, abs=1e-5)
    ]
