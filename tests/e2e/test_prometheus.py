"""In the lab: a real Prometheus in the operators' network namespace scrapes the three
supervised daemons with docs/monitoring's rules (`for:` cut to 1 s). Nothing fires while the
stack is steady; when dc1's database stops, FailoverCheckFailing fires for it and
FailoverSwitched for both groups it moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.lab.stack import OPERATOR_LOCATION, Stack
from failover.lab.topology import netns
from failover.testing.servers.process import wait_until
from tests.monitoring.prometheus import MISSING, PROMETHEUS, Prometheus

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_prometheus_sees_a_database_failure_and_the_failover(stack: Stack, tmp_path: Path) -> None:
    if PROMETHEUS is None:
        pytest.fail(MISSING)
    targets = [instance.api for instance in stack.config.instances.values()]
    prometheus = Prometheus(tmp_path / "prometheus", targets, netns=netns(OPERATOR_LOCATION))
    prometheus.start()
    try:
        prometheus.settle(len(targets))
        stack.stop_service("dc1", "db")
        wait_until(
            lambda: "FailoverSwitched" in prometheus.firing(), 60.0, "FailoverSwitched fires"
        )
        wait_until(
            lambda: (
                {a["group"] for a in prometheus.firing()["FailoverSwitched"]}
                == set(stack.config.groups)
            ),
            30.0,
            "FailoverSwitched for every group",
        )
        failing = prometheus.firing().get("FailoverCheckFailing", [])
        assert ("dc1", "db") in {(a["site"], a["service"]) for a in failing}, failing

        def active() -> set[tuple[str, str]]:  # every daemon's latest scrape says dc2
            found = prometheus.value("max by (group, site) (failover_active_site) == 1")
            return {(r["metric"]["group"], r["metric"]["site"]) for r in found}

        wait_until(
            lambda: active() == {(group, "dc2") for group in stack.config.groups},
            30.0,
            "every daemon's metrics name dc2 active",
        )
        assert "FailoverNoLeader" not in prometheus.firing()
    finally:
        prometheus.stop()
