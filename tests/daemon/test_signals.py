"""The daemon's signals against a real cluster: SIGTERM hands leadership over at once and
changes no steering; SIGHUP reloads a valid config, or keeps the old one and says why."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from failover.testing.servers.process import wait_until
from tests.operator.cluster import FAILOVER, SETTLING, Cluster, start_cluster

pytestmark = pytest.mark.zookeeper


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(Path(tmp_path_factory.mktemp("signals")))
    yield running
    running.stop()


def log_lines(cluster: Cluster, instance: str) -> list[dict[str, object]]:
    text = cluster.daemons[instance].log_path.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def hup_with(cluster: Cluster, text: str, logged: str) -> dict[str, object]:
    """Give b `text` as its config and SIGHUP it; return the log line containing `logged`.
    The original config is put back whatever happens."""
    good = cluster.config_path.read_text()
    cluster.config_path.write_text(text)
    try:
        cluster.daemons["b"].signal(signal.SIGHUP)
        wait_until(
            lambda: any(logged in str(line["msg"]) for line in log_lines(cluster, "b")),
            10.0,
            f"{logged!r} logged",
            retry_on=(OSError, ValueError, KeyError),
        )
    finally:
        cluster.config_path.write_text(good)
    return next(line for line in log_lines(cluster, "b") if logged in str(line["msg"]))


def leader_of(cluster: Cluster, asking: str) -> str | None:
    leader = cluster.status(asking)["leader"]
    return None if leader is None else str(leader["instance"])


def test_sighup_keeps_the_old_config_on_errors_and_takes_a_valid_one(cluster: Cluster) -> None:
    good = cluster.config_path.read_text()
    refusal = hup_with(cluster, good.replace("hold_down_s: 1", "hold_down_s: -5"), "reload refused")
    assert "policy.hold_down_s" in str(refusal["msg"]) and "(got -5)" in str(refusal["msg"])
    assert cluster.get("b", "/health")[0] == 200  # still running, on the old config

    changed = yaml.safe_load(good)
    changed["policy"]["hold_down_s"] = 1.5
    hup_with(cluster, yaml.safe_dump(changed), "config reloaded")
    assert cluster.get("b", "/health")[0] == 200
    cluster.wait_steady("dc1")


def test_sigterm_hands_leadership_over_at_once_and_changes_no_steering(cluster: Cluster) -> None:
    from failover.testing.servers.process import Process

    leader = leader_of(cluster, "a")
    assert leader is not None
    before = cluster.status("a")["groups"]["web"]
    process = cluster.daemons[leader]
    others = [name for name in cluster.daemons if name != leader]
    stopped_at = time.monotonic()
    process.signal(signal.SIGTERM)
    assert process.wait(10.0) == 0
    wait_until(
        lambda: leader_of(cluster, others[0]) in others, 5.0, "a new leader", retry_on=SETTLING
    )
    took_s = time.monotonic() - stopped_at
    assert took_s < 1.5  # at once: a crash would take the 2 s session timeout
    after = cluster.status(others[0])["groups"]["web"]
    assert (after["active"], after["epoch"]) == (before["active"], before["epoch"])
    assert any(line["msg"] == "stopped" for line in log_lines(cluster, leader))
    # bring it back as it was
    cluster.daemons[leader] = Process(
        process.name,
        [FAILOVER, "run", "--config", str(cluster.config_path), "--instance", leader],
        log_path=process.log_path,
    ).start()
    wait_until(
        lambda: cluster.get(leader, "/health")[0] == 200,
        20.0,
        "restarted daemon",
        retry_on=SETTLING,
    )


def test_sighup_refuses_a_config_without_this_instance(cluster: Cluster) -> None:
    other = yaml.safe_load(cluster.config_path.read_text())
    del other["instances"]["b"]
    hup_with(cluster, yaml.safe_dump(other), "instances: no instance 'b'")
    assert cluster.get("b", "/health")[0] == 200


def test_a_slow_reload_does_not_stall_health(cluster: Cluster) -> None:
    """A reload reads and checks the new config in a worker thread, between two cycles: a
    config that takes a second or so to parse (220 KB, 45,000 list items) never stalls /health
    (parsed on the event loop, it stalled the API for as long as the parse took: one answer at
    most, as late as the parse is long)."""
    from failover.config import parse_config

    good = cluster.config_path.read_text()
    slow = yaml.safe_load(good)
    slow["sites"]["dc1"]["services"]["app"]["check"]["expect_status"] = [200] * 45_000
    text = yaml.safe_dump(slow, default_flow_style=None, width=1_000_000)
    started = time.perf_counter()
    parse_config(text)
    parse_s = time.perf_counter() - started
    assert parse_s > 0.4, f"the config parses in {parse_s:.2f} s: not slow enough to tell"

    def reloads() -> int:
        return sum("config reloaded" in str(line["msg"]) for line in log_lines(cluster, "b"))

    before = reloads()
    cluster.config_path.write_text(text)
    gaps: list[float] = []
    try:
        cluster.daemons["b"].signal(signal.SIGHUP)
        deadline = time.monotonic() + 30.0
        while reloads() == before and time.monotonic() < deadline:
            asked = time.perf_counter()
            assert cluster.get("b", "/health")[0] == 200
            gaps.append(time.perf_counter() - asked)
            time.sleep(0.05)
    finally:
        cluster.config_path.write_text(good)
    assert reloads() == before + 1, "the slow config was not reloaded"
    assert len(gaps) >= 3 and max(gaps) < parse_s / 2, (parse_s, gaps)
    cluster.daemons["b"].signal(signal.SIGHUP)  # back to the small config
    wait_until(lambda: reloads() == before + 2, 30.0, "the config reloaded back")
    cluster.wait_steady("dc1")
