"""A real Prometheus scrapes three real daemons (tests/operator/cluster.py: ZooKeeper, BIND,
HTTP services, all on loopback) with docs/monitoring/alerts.yml, `for:` shortened so that the
test takes seconds: every rule evaluates without error against the real exposition, nothing
fires while the cluster is steady, a failing check fires FailoverCheckFailing and the failover
it causes FailoverSwitched, and with ZooKeeper gone FailoverNoLeader and
FailoverZooKeeperUnavailable fire."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.servers.process import Process, free_port, wait_until
from tests.operator.cluster import Cluster, start_cluster

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]
MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
PROMETHEUS = shutil.which("prometheus")


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        rules = (MONITORING / "alerts.yml").read_text()
        # the same expressions, with every `for:` cut to 1 s (FrozenLong keeps its hours)
        rules = re.sub(r"for: (?!4h)\S+", "for: 1s", rules)
        (workdir / "alerts.yml").write_text(rules)
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["scrape_configs"][0]["static_configs"] = [{"targets": targets}]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.address = f"127.0.0.1:{free_port()}"
        assert PROMETHEUS is not None
        self.process = Process("prometheus", [
            PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={self.address}"],
            log_path=workdir / "prometheus.log")

    def start(self) -> Prometheus:
        self.process.start()
        wait_until(lambda: self.get("/-/ready") is not None, 30.0, "prometheus ready")
        return self

    def get(self, path: str, **query: str) -> Any:
        url = f"http://{self.address}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
        return json.loads(body) if path.startswith("/api/") else body

    def firing(self) -> dict[str, list[dict[str, str]]]:
        alerts = self.get("/api/v1/alerts")["data"]["alerts"]
        found: dict[str, list[dict[str, str]]] = {}
        for alert in alerts:
            if alert["state"] == "firing":
                found.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return found

    def value(self, expression: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expression)["data"][
            "result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        groups = self.get("/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Prometheus]]:
    if PROMETHEUS is None:
        pytest.fail("prometheus is missing: `make system` installs Debian's prometheus package")
    work = tmp_path_factory.mktemp("prometheus")
    cluster = start_cluster(work / "cluster")
    prometheus = Prometheus(work / "prometheus", list(cluster.api.values()))
    try:
        yield cluster, prometheus.start()
    finally:
        prometheus.process.stop()
        cluster.stop()


def test_alerts_fire_from_what_real_daemons_export(watched: tuple[Cluster, Prometheus]
                                                    ) -> None:
    cluster, prometheus = watched
    wait_until(lambda: len(prometheus.value('up{job="failover"} == 1')) == 3, 30.0,
               "three daemons scraped")
    wait_until(lambda: len(prometheus.value("failover_verdict == 1")) >= 6, 30.0,
               "the daemons' verdicts scraped")
    wait_until(lambda: all(r.get("lastEvaluation", "").startswith("20")
                           for r in prometheus.rules()), 30.0, "every rule evaluated")
    assert [(r["name"], r["lastError"]) for r in prometheus.rules() if r["health"] != "ok"] == []
    # before the first scrapes nobody seemed to lead (the cut `for:` lets that fire): settled,
    # nothing fires
    wait_until(lambda: prometheus.firing() == {}, 20.0, "no alert firing while steady")
    time.sleep(3.0)
    assert prometheus.firing() == {}
    assert prometheus.value("sum(failover_leader)")[0]["value"][1] == "1"

    cluster.http["dc1"].set_health(503)  # dc1's app fails its check: web moves to dc2
    try:
        wait_until(lambda: "FailoverCheckFailing" in prometheus.firing(), 60.0,
                   "FailoverCheckFailing fires")
        labels = prometheus.firing()["FailoverCheckFailing"]
        assert {(a["site"], a["service"]) for a in labels} == {("dc1", "app")}
        cluster.wait_steady("dc2", 30.0)
        wait_until(lambda: "FailoverSwitched" in prometheus.firing(), 30.0,
                   "FailoverSwitched fires")
        assert [a["group"] for a in prometheus.firing()["FailoverSwitched"]] == ["web"]
    finally:
        cluster.http["dc1"].set_health(200)
    wait_until(lambda: "FailoverCheckFailing" not in prometheus.firing(), 60.0,
               "FailoverCheckFailing resolves")
    assert "FailoverNoLeader" not in prometheus.firing()

    cluster.zk.stop()  # no coordinator: the leader loses its session and nobody can lead
    wait_until(lambda: {"FailoverNoLeader", "FailoverZooKeeperUnavailable"}
               <= set(prometheus.firing()), 60.0,
               "FailoverNoLeader and FailoverZooKeeperUnavailable fire")
    assert "FailoverDaemonDown" not in prometheus.firing()  # the daemons still serve /metrics
