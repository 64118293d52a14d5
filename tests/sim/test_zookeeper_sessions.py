"""Sessions as the real ensemble keeps them: a killed daemon's session runs out a session
timeout after the last packet its client sent; a restarted daemon cycles only once its first
connect ends (`failover/daemon/runner.py`); and a quorum's leader that lost its followers goes
on expiring sessions until it steps down, closes that a new quorum holding its history commits
(ZooKeeper 3.8: `SessionTrackerImpl`, `Leader.lead`)."""

from __future__ import annotations

import functools

import pytest

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
