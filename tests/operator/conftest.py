"""Fixtures: one real cluster (ZooKeeper, BIND, HTTP services, three daemons) for the package.

The tests run in file order and leave the cluster as they found it: `web` steady on dc1,
automation not frozen, both services healthy. When a test fails, the daemons' logs are
added to its report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.testing.servers.process import wait_until
from tests.operator.cluster import SETTLING, Cluster, start_cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(Path(tmp_path_factory.mktemp("operator-cluster")))
    yield running
    running.stop()


@pytest.fixture
def steady(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with `web` steady on dc1 and both sites healthy, before and after."""
    cluster.wait_steady("dc1")
    wait_until(cluster.every_vote_up, 10.0, "every observer site votes up", retry_on=SETTLING)
    yield cluster
    for server in cluster.http.values():
        server.set_health(200)
