"""End to end under faults: daemons killed or frozen, ZooKeeper's quorum lost, the witness cut off.

The daemons run under `failover supervise` with the stop hook `failover demote`: a killed or
frozen daemon cannot demote its own site, and the kernel route it set outlives it, so its
supervisor does (see docs/failover@.service).
"""

from __future__ import annotations

import time

import pytest

from failover.lab.stack import Stack
from failover.servers.process import wait_until
from tests.e2e.conftest import epochs, watch

pytestmark = [pytest.mark.lab, pytest.mark.slow]
HOOK_S = 4.0  # the stop hook is a fresh `failover demote` process (Python start-up included)


def session_timeout_s(stack: Stack) -> float:
    return stack.config.cluster.zookeeper.session_timeout_s


def test_leader_killed_in_steady_state_another_leads_and_traffic_stays(stack: Stack) -> None:
    before = epochs(stack)
    old = stack.leader()
    assert old is not None
    stack.kill_daemon(old)
    samples = watch(stack, session_timeout_s(stack) + 10.0,
                    until=lambda: stack.leader() not in (None, old))
    new = stack.leader()
    assert new not in (None, old), f"no new leader after {samples[-1][0]:.1f} s"
    sites = {route[0] if route else None for _, route, _ in samples}
    assert sites == {"dc1"}, f"the isp's best route moved: {samples}"
    assert {site for _, _, site in samples} == {"dc1"}
    assert epochs(stack) == before
    wait_until(lambda: [e["event"] for e in stack.daemons[old].events()][-2:]
               == ["exited", "stop_hook"], HOOK_S, "the stop hook after the kill")


@pytest.mark.parametrize("fault", ["kill -9", "SIGSTOP"])
def test_active_sites_daemon_killed_or_frozen_is_demoted_by_its_supervisor(
        stack: Stack, fault: str) -> None:
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
    samples = watch(stack, bound_s + 10.0, until=lambda: stack.route() != ("dc1", "primary"),
                    interval_s=0.05)
    took_s = time.monotonic() - started
    assert stack.announcement("dc1") == "backup", samples[-3:]
    assert took_s <= bound_s, f"dc1 still primary {took_s:.1f} s after {fault}"
    wait_until(lambda: [e["event"] for e in daemon.events()][-1:] == ["stop_hook"], HOOK_S,
               "the stop hook")
    events = daemon.events()
    kinds = [e["event"] for e in events]
    if fault == "SIGSTOP":
        assert "watchdog" in kinds, kinds
    assert kinds[-1] == "stop_hook" and events[-1]["code"] == 0, events[-3:]
    assert "primary -> backup" in daemon.log_tail(10)
    assert stack.route() == ("dc1", "backup")  # demoted, never withdrawn
    # The leader sees dc1's agent gone once its session expires (agent_lost): after the
    # hold-down and the rest of dc1's lease, dc2 is promoted.
    lease_s = stack.config.lease_s(stack.bgp_group)
    watch(stack, session_timeout_s(stack) + lease_s + 2.0,
          until=lambda: stack.route() == ("dc2", "primary"))
    assert stack.route() == ("dc2", "primary")


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
    demoted = [at for at, route, _ in samples if route == ("dc1", "backup")]
    assert demoted, "dc1 must demote itself to backup once its lease runs out"
    assert demoted[0] >= lease_s - 1.0, f"dc1 demoted after {demoted[0]:.1f} s, lease {lease_s}"
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
        assert {route for _, route, _ in samples} == {("dc1", "primary")}, samples
        assert {site for _, _, site in samples} == {"dc1"}
        wait_until(lambda: stack.leader() in (stack.instance_of("dc1"),
                                              stack.instance_of("dc2")),
                   session_timeout_s(stack) + 5.0, "a leader in a serving site")
        assert epochs(stack) == before
    finally:
        stack.lab.heal_all()
