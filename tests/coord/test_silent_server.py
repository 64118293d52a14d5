"""A server that goes silent under a connected client (a cut: SIGSTOP here) keeps the session
"connected" until kazoo's ping times out (2/3 of the session timeout). The live game-day
(inter-site cut, the client attached to a server across the cut) saw a daemon's cycle of many
calls, each waiting its whole timeout, outlast the watchdog: the daemon was killed, its session
expired and the other site failed over. And kazoo pings only while no request goes out: a
client that calls every second never notices. After one call times out the connection is
dropped (kazoo moves to another server, keeping the session) and the next calls fail at once."""

from __future__ import annotations

import time

from failover.coord import CoordinatorUnavailable
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.testing.servers.zookeeper import ZooKeeperEnsemble
from tests.coord.harness import wait_real


def test_calls_fail_at_once_after_one_timed_out_on_a_silent_server(
    fresh_ensemble: ZooKeeperEnsemble,
) -> None:
    leader = fresh_ensemble.leader_index()
    assert leader is not None
    own, other = [i for i in range(3) if i != leader]
    hosts = [fresh_ensemble.hosts[i] for i in (own, other, leader)]
    client = ZooKeeperCoordinator(
        hosts,
        cluster="shop",
        instance="a",
        chroot="/quiet",
        session_timeout_s=8.0,
        op_timeout_s=0.5,
    )
    client._zk.randomize_hosts = False  # attached to `own`
    paused = False
    try:
        client.connect(timeout_s=10.0)
        client.desired("web")
        session = client.session_id
        fresh_ensemble.pause(own)
        paused = True
        started = time.monotonic()
        failed = 0
        for _ in range(8):  # one cycle's calls
            try:
                client.desired("web")
            except CoordinatorUnavailable:
                failed += 1
        took = time.monotonic() - started
        assert failed == 8
        # one call's timeout, not eight (kazoo notices the silence after >= 2.3 s only)
        assert took < 1.5, took

        def reads() -> bool:
            try:
                client.desired("web")
            except CoordinatorUnavailable:
                return False
            return True

        # the silent server's connection is dropped: the same session on another server
        wait_real(reads, 6.0, "reads again, through another server")
        assert client.session_id == session
    finally:
        if paused:
            fresh_ensemble.resume(own)
        client.close()
