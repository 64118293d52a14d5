"""End to end under faults: daemons killed or frozen, ZooKeeper's quorum lost, the witness cut off.

The daemons run under `failover supervise` with the stop hook `failover demote`: a killed or
frozen daemon cannot demote its own site, and the kernel route it set outlives it, so its
supervisor does (see docs/failover@.service).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from failover.core import Engine
from failover.lab.stack import Stack
from failover.testing.servers.process import wait_until
from tests.e2e.conftest import epochs, watch

pytestmark = [pytest.mark.lab, pytest.mark.slow]
HOOK_S = 4.0  # the stop hook is a fresh `failover demote` process (Python start-up included)


def session_timeout_s(stack: Stack) -> float:
    return stack.config.cluster.zookeeper.session_timeout_s


def stale_primary_s(stack: Stack) -> float:
    return Engine(stack.config).demote_wait_s(stack.bgp_group)


def test_leader_killed_in_steady_state_another_leads_and_traffic_stays(stack: Stack) -> None:
    before = epochs(stack)
    old = stack.leader()
    assert old is not None
    stack.kill_daemon(old)
    samples = watch(
        stack, session_timeout_s(stack) + 10.0, until=lambda: stack.leader() not in (None, old)
    )
    new = stack.leader()
    assert new not in (None, old), f"no new leader after {samples[-1][0]:.1f} s"
    sites = {route[0] if route else None for _, route, _ in samples}
    assert sites == {"dc1"}, f"the isp's best route moved: {samples}"
    assert {site for _, _, site in samples} == {"dc1"}
    assert epochs(stack) == before
    wait_until(
        lambda: [e["event"] for e in stack.daemons[old].events()][-2:] == ["exited", "stop_hook"],
        HOOK_S,
        "the stop hook after the kill",
    )


@pytest.mark.parametrize("fault", ["kill -9", "SIGSTOP"])
def test_active_sites_daemon_killed_or_frozen_is_demoted_by_its_supervisor(
    stack: Stack, fault: str
) -> None:
    instance = stack.instance_of("dc1")
    daemon = stack.daemons[instance]
    watchdog_s = daemon.watchdog_s
    started = time.monotonic()
    if fault == "kill -9":
        stack.kill_daemon(instance)
        bound_s = HOOK_S
    else:
        stack.freeze_daemon(instance)
        bound_s = watchdog_s + HOOK_S
    samples = watch(
        stack, bound_s + 10.0, until=lambda: stack.route() != ("dc1", "primary"), interval_s=0.05
    )
    took_s = time.monotonic() - started
    assert stack.announcement("dc1") == "held", samples[-3:]
    assert took_s <= bound_s, f"dc1 still primary {took_s:.1f} s after {fault}"
    wait_until(
        lambda: [e["event"] for e in daemon.events()][-1:] == ["stop_hook"], HOOK_S, "the stop hook"
    )
    events = daemon.events()
    kinds = [e["event"] for e in events]
    if fault == "SIGSTOP":
        assert "watchdog" in kinds, kinds
    assert kinds[-1] == "stop_hook" and events[-1]["code"] == 0, events[-3:]
    assert "primary -> held" in daemon.log_tail(10)
    assert stack.route() == ("dc1", "held")  # held: still preferred over dc2's backup
    # The leader sees dc1's agent gone once its session expires (agent_lost): after the
    # hold-down, once dc1 has surely stopped announcing primary, dc2 is promoted.
    later = watch(
        stack,
        session_timeout_s(stack) + stale_primary_s(stack) + 2.0,
        until=lambda: stack.route() == ("dc2", "primary"),
    )
    assert stack.route() == ("dc2", "primary"), (
        later[-5:],
        {site: stack.announcement(site) for site in ("dc1", "dc2")},
    )


def test_zookeeper_quorum_lost_for_30_s_changes_nothing_and_recovers(stack: Stack) -> None:
    ensemble = stack.zookeeper
    assert ensemble is not None
    before = epochs(stack)
    lease_s = stack.config.lease_s(stack.bgp_group)
    ensemble.kill(1)
    ensemble.kill(2)  # dc2's and the witness's nodes: dc1's alone has no quorum
    samples = watch(stack, 30.0, interval_s=0.25)
    assert {route[0] if route else None for _, route, _ in samples} == {"dc1"}, samples
    assert {site for _, _, site in samples} == {"dc1"}, "DNS must not change without a quorum"
    held = [at for at, route, _ in samples if route == ("dc1", "held")]
    assert held, "dc1 must hold its primary once its lease runs out"
    cycle_s = stack.config.cluster.daemon.cycle_s
    assert held[0] >= lease_s - cycle_s - 0.5, f"dc1 held after {held[0]:.1f} s, lease {lease_s}"
    ensemble.restart(1, wait=False)
    ensemble.restart(2, wait=False)
    ensemble.wait_ready([1, 2], timeout_s=30.0)
    stack.wait_steady("dc1", 40.0)
    assert epochs(stack) == before, "nothing may change because of a lost quorum"


def test_witness_isolated_nothing_moves(stack: Stack) -> None:
    before = epochs(stack)
    stack.lab.isolate("witness")
    try:
        stale_s = stack.config.policy.stale_after_s + stack.config.policy.hold_down_s + 2.0
        samples = watch(stack, max(stale_s, session_timeout_s(stack) + 4.0), interval_s=0.2)
        # dc1 may hold its primary for a moment if its agent's client spends its lease trying
        # the isolated ZooKeeper server: held still wins over dc2's backup, nothing moves
        assert {route[0] if route else None for _, route, _ in samples} == {"dc1"}, samples
        assert {route[1] for _, route, _ in samples if route} <= {"primary", "held"}, samples
        assert {site for _, _, site in samples} == {"dc1"}
        wait_until(
            lambda: stack.leader() in (stack.instance_of("dc1"), stack.instance_of("dc2")),
            session_timeout_s(stack) + 5.0,
            "a leader in a serving site",
        )
        assert epochs(stack) == before
    finally:
        stack.lab.heal_all()


def test_every_zookeeper_server_stopped_for_60_s_with_dc2_active_moves_nothing(
    stack: Stack,
) -> None:
    """Safety rule 5 with the site that is not preferred active: nobody can decide, so dc2's
    agent holds its primary after its lease (preferred over dc1's backup) and the isp's best
    route never falls back to dc1 by its router-id tie-break; afterwards dc2 is primary again."""
    stack.reset("dc2")
    ensemble = stack.zookeeper
    assert ensemble is not None
    before = epochs(stack)
    for index in range(ensemble.size):
        ensemble.kill(index)
    try:
        samples = watch(stack, 60.0, interval_s=0.25)
    finally:
        for index in range(ensemble.size):
            ensemble.restart(index, wait=False)
        ensemble.wait_ready(list(range(ensemble.size)), timeout_s=30.0)
    assert {route[0] if route else None for _, route, _ in samples} == {"dc2"}, samples
    assert ("dc2", "held") in {route for _, route, _ in samples}, "dc2 held after its lease"
    assert {site for _, _, site in samples} == {"dc2"}, "DNS must not change without a quorum"
    stack.wait_steady("dc2", 40.0)  # primary again, clean
    assert epochs(stack) == before, "nothing may change because of a lost quorum"


def test_a_cycle_stuck_in_a_steerer_is_killed_by_the_watchdog(stack: Stack) -> None:
    """The watchdog is fed only by cycles that complete: with dc1's BIRD frozen, dc1's agent
    blocks in its steerer's verification while demoting; its supervisor kills it within the
    watchdog and the stop hook runs; dc1 never stays primary."""
    instance = stack.instance_of("dc1")
    daemon = stack.daemons[instance]
    bird = stack.lab.pid("dc1-bird")
    assert bird is not None
    os.kill(bird, signal.SIGSTOP)
    try:
        started = time.monotonic()
        stack.cli("switchover", "--to", "dc2", "--reason", "stuck steerer test")
        wait_until(
            lambda: "watchdog" in [e["event"] for e in daemon.events()],
            daemon.watchdog_s + 15.0,
            "the watchdog to kill the stuck daemon",
        )
        killed_s = time.monotonic() - started
        wait_until(
            lambda: [e["event"] for e in daemon.events()][-1:] == ["stop_hook"],
            HOOK_S + 10.0,
            "the stop hook",
        )
        assert stack.announcement("dc1") in ("held", "backup")
    finally:
        os.kill(bird, signal.SIGCONT)
    assert killed_s <= daemon.watchdog_s + 6.0, f"killed only after {killed_s:.1f} s"
