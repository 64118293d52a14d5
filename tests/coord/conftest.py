"""Fixtures: a real ZooKeeper ensemble (Debian's `zookeeper`), a chroot per test, both back ends.

`FAILOVER_ZK_BACKEND=testcontainers` selects the official ZooKeeper image through
testcontainers instead (only where a Docker engine exists; otherwise those tests are skipped
with the reason). When a test fails, the tail of every server log is added to its report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.testing.servers.zookeeper import ZooKeeperEnsemble
from tests.coord.harness import MemoryHarness, ZooKeeperHarness

BACKEND = os.environ.get("FAILOVER_ZK_BACKEND", "local")
TICK_MS = 200


class ContainerEnsemble:
    """A single ZooKeeper server in a container (testcontainers back end)."""

    def __init__(self) -> None:
        try:
            from testcontainers.core.container import DockerContainer
        except ImportError:
            pytest.skip("testcontainers back end: testcontainers is not installed (.[docker])")
        try:
            self.container = (
                DockerContainer("zookeeper:3.8")
                .with_exposed_ports(2181)
                .with_env("ZOO_TICK_TIME", str(TICK_MS))
            )
            self.container.start()
        except Exception as exc:  # docker.errors.DockerException without an engine
            reason = exc.__class__.__name__
            pytest.skip(f"testcontainers back end: no Docker engine here ({reason})")
        host = self.container.get_container_host_ip()
        self.connect_string = f"{host}:{self.container.get_exposed_port(2181)}"

    def logs(self, lines: int = 60) -> str:
        out, err = self.container.get_logs()
        return "\n".join((out + err).decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.container.stop()


def start_ensemble(workdir: Path, size: int = 3) -> ZooKeeperEnsemble:
    return ZooKeeperEnsemble(workdir, size, tick_ms=TICK_MS).start(timeout_s=60.0)


@pytest.fixture(scope="session")
def zk_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A 3-node ensemble shared by the non-destructive tests (each uses its own chroot)."""
    if BACKEND == "testcontainers":
        container = ContainerEnsemble()
        yield container
        container.stop()
        return
    ensemble = start_ensemble(tmp_path_factory.mktemp("zk-shared"))
    yield ensemble
    ensemble.stop()


@pytest.fixture
def fresh_ensemble(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """A 3-node ensemble of its own, for tests that kill, pause or restart servers."""
    if BACKEND == "testcontainers":
        pytest.skip("testcontainers back end: server kill/pause helpers need local processes")
    ensemble = start_ensemble(tmp_path / "zk")
    yield ensemble
    ensemble.stop()


@pytest.fixture
def zk_harness(zk_ensemble: Any, tmp_path: Path) -> Iterator[ZooKeeperHarness]:
    harness = ZooKeeperHarness(zk_ensemble.connect_string, tmp_path)
    harness.logs = zk_ensemble.logs  # shown when the test fails
    yield harness
    harness.close()


@pytest.fixture(params=["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The contract suite's back end: in memory, or a real ensemble."""
    if request.param == "memory":
        memory = MemoryHarness()
        yield memory
        memory.close()
        return
    zk = request.getfixturevalue("zk_harness")
    yield zk


@pytest.fixture(params=["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def quorum_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Like `harness`, but on an ensemble of its own, whose quorum the test may take away."""
    if request.param == "memory":
        memory = MemoryHarness()
        yield memory
        memory.close()
        return
    ensemble = request.getfixturevalue("fresh_ensemble")
    zk = ZooKeeperHarness(ensemble.connect_string, tmp_path, ensemble)
    zk.logs = ensemble.logs
    yield zk
    zk.close()
