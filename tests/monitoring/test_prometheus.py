"""A real Prometheus scrapes three real daemons (tests/operator/cluster.py: ZooKeeper, BIND,
HTTP services, all on loopback) with docs/monitoring/alerts.yml, `for:` shortened so that the
test takes seconds: every rule evaluates without error against the real exposition, nothing
fires while the cluster is steady, a failing check fires FailoverCheckFailing and the failover
it causes FailoverSwitched, and with ZooKeeper gone FailoverNoLeader and
FailoverZooKeeperUnavailable fire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from failover.testing.servers.process import wait_until
from tests.monitoring.prometheus import MISSING, PROMETHEUS, Prometheus
from tests.operator.cluster import Cluster, start_cluster

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Prometheus]]:
    if PROMETHEUS is None:
        pytest.fail(MISSING)
    work = tmp_path_factory.mktemp("prometheus")
    cluster = start_cluster(work / "cluster")
    prometheus = Prometheus(work / "prometheus", list(cluster.api.values()))
    try:
        yield cluster, prometheus.start()
    finally:
        prometheus.stop()
        cluster.stop()


def test_alerts_fire_from_what_real_daemons_export(watched: tuple[Cluster, Prometheus]) -> None:
    cluster, prometheus = watched
    prometheus.settle(3)
    time.sleep(3.0)
    assert prometheus.firing() == {}
    assert prometheus.value("sum(failover_leader)")[0]["value"][1] == "1"

    cluster.http["dc1"].set_health(503)  # dc1's app fails its check: web moves to dc2
    try:
        wait_until(
            lambda: "FailoverCheckFailing" in prometheus.firing(),
            60.0,
            "FailoverCheckFailing fires",
        )
        labels = prometheus.firing()["FailoverCheckFailing"]
        assert {(a["site"], a["service"]) for a in labels} == {("dc1", "app")}
        cluster.wait_steady("dc2", 30.0)
        wait_until(
            lambda: "FailoverSwitched" in prometheus.firing(), 30.0, "FailoverSwitched fires"
        )
        assert [a["group"] for a in prometheus.firing()["FailoverSwitched"]] == ["web"]
    finally:
        cluster.http["dc1"].set_health(200)
    wait_until(
        lambda: "FailoverCheckFailing" not in prometheus.firing(),
        60.0,
        "FailoverCheckFailing resolves",
    )
    assert "FailoverNoLeader" not in prometheus.firing()

    cluster.zk.stop()  # no coordinator: the leader loses its session and nobody can lead
    wait_until(
        lambda: {"FailoverNoLeader", "FailoverZooKeeperUnavailable"} <= set(prometheus.firing()),
        60.0,
        "FailoverNoLeader and FailoverZooKeeperUnavailable fire",
    )
    assert "FailoverDaemonDown" not in prometheus.firing()  # the daemons still serve /metrics
