"""A ZooKeeper server that goes silent under a busy client (lab: a private network namespace
with nftables, so that packets are really dropped; run under the lab lock).

kazoo notices a dead server only through an unanswered ping, and it pings only after half its
read timeout without sending anything: a daemon that sends a request every cycle never pings.
The live chaos run saw it: dc1 lost power, the witness's daemon was attached to a dc1 server,
its requests went unanswered for 12 s and its session expired, so the leader lacked the
witness's observations and the failover came 8 s late. The client gives a connection up
after half a session timeout of unacknowledged data (TCP_USER_TIMEOUT) and keeps its session
on another server.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.coord import CoordinatorError
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.steer.netns import enter_netns
from failover.testing.lab import unavailable
from failover.testing.servers.zookeeper import ZooKeeperEnsemble

pytestmark = [pytest.mark.lab, pytest.mark.zookeeper]
NETNS = "fo-zksilent"
SESSION_S = 4.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", NETNS)
    _ip("netns", "add", NETNS)
    try:
        _ip("-n", NETNS, "link", "set", "lo", "up")
        yield NETNS
    finally:
        _ip("netns", "del", NETNS)


def _nft(script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", NETNS, "nft", "-f", "-"],
        input=script,
        text=True,
        check=True,
        capture_output=True,
        timeout=10,
    )


def test_a_server_gone_silent_under_a_busy_client_does_not_cost_the_session(
    namespace: str, tmp_path: Path
) -> None:
    ensemble = ZooKeeperEnsemble(
        f"{tmp_path}/zk", 3, tick_ms=200, hosts=["127.0.0.1"] * 3, netns=[namespace] * 3
    )
    ensemble.start(60.0)
    # the client lives in the namespace: its thread and the threads kazoo starts from it
    inside = concurrent.futures.ThreadPoolExecutor(
        1, initializer=enter_netns, initargs=(namespace,)
    )
    leader = ensemble.leader_index()
    own = next(i for i in range(3) if i != leader)  # a follower: the quorum stays
    hosts = [ensemble.hosts[own], *(ensemble.hosts[i] for i in range(3) if i != own)]
    client = ZooKeeperCoordinator(
        hosts,
        cluster="shop",
        instance="a",
        chroot="/silent",
        session_timeout_s=SESSION_S,
        op_timeout_s=1.0,  # as the daemon's (runner.py): each call gives up after 1 s
    )
    client._zk.randomize_hosts = False  # attached to `own` first
    stop = threading.Event()
    answered: list[float] = []

    def busy() -> None:  # as a daemon's roles and cycles: requests, answered or not
        while not stop.wait(0.2):
            with contextlib.suppress(CoordinatorError):
                client.members()
                answered.append(time.monotonic())

    try:
        inside.submit(client.connect, 10.0).result(20.0)
        session = client.session_id
        for _ in range(6):  # staggered: a request every 0.2 s while calls wait 1 s each
            threading.Thread(target=busy, daemon=True).start()
            time.sleep(0.2)
        time.sleep(1.0)
        port = ensemble.nodes[own].client_port
        _nft(  # the server goes silent: nothing to or from its client port gets through
            "table inet silent {\n chain input {\n  type filter hook input priority 0;\n"
            f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n}}\n"
        )
        silenced = time.monotonic()
        deadline = silenced + 3 * SESSION_S
        while time.monotonic() < deadline and not (answered and answered[-1] > silenced + 0.5):
            time.sleep(0.1)
        assert answered and answered[-1] > silenced, "no answer since the server went silent"
        took = answered[-1] - silenced
        assert client.session_id == session, (
            f"the session was lost (new session after {took:.1f} s): the silent server "
            "kept the connection until the session had expired"
        )
        assert took < SESSION_S, f"answers again only after {took:.1f} s"
    finally:
        stop.set()
        inside.submit(client.close).result(20.0)
        inside.shutdown()
        ensemble.stop()
