"""The HTTP API of real daemons: health, status, metrics, and Escher-signed writes.

End to end: a signed switchover is accepted and carried out; unsigned, wrong, expired,
replayed and misaddressed requests are refused; a key is locked out after repeated failures;
every attempt, accepted or not, reaches the audit trail through the leader.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from failover.cli import cli
from tests.api.conftest import now, post, send, sign, wait_noted, wait_refused
from tests.operator.cluster import INSTANCES, LOCK_KEY_ID, LOCK_KEY_SECRET, Cluster

pytestmark = pytest.mark.zookeeper


def metrics(cluster: Cluster, instance: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    code, text = cluster.get(instance, "/metrics")
    assert code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matching = [
        v
        for found, v in samples.get(name, [])
        if all(found.get(k) == want for k, want in labels.items())
    ]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def test_health_on_every_daemon(steady: Cluster) -> None:
    leaders = []
    for instance, site in INSTANCES.items():
        code, body = steady.get(instance, "/health")
        doc = json.loads(body)
        assert code == 200
        assert doc["instance"] == instance and doc["site"] == site
        assert doc["session"] == "connected" and doc["cycles"] > 0
        leaders += [instance] if doc["leader"] else []
    assert len(leaders) == 1


def test_status_is_the_cli_document(steady: Cluster) -> None:
    served = steady.status("b")
    printed = json.loads(
        CliRunner().invoke(cli, ["status", "--json", "--config", str(steady.config_path)]).output
    )
    assert served.keys() == printed.keys()
    assert served["groups"]["web"]["active"] == printed["groups"]["web"]["active"] == "dc1"
    assert served["leader"] == printed["leader"]
    assert served["groups"]["web"]["sites"]["dc2"]["applied"] == "backup"


def test_metrics_exposition(steady: Cluster) -> None:
    leading = 0.0
    for instance, site in INSTANCES.items():
        samples = metrics(steady, instance)
        leading += value(samples, "failover_leader", instance=instance, site=site)
        assert value(samples, "failover_coordinator_connected", instance=instance) == 1.0
    assert leading == 1.0
    samples = metrics(steady, "a")
    epoch = steady.status()["groups"]["web"]["epoch"]
    assert value(samples, "failover_epoch", group="web") == epoch
    assert value(samples, "failover_active_site", group="web", site="dc1") == 1.0
    assert value(samples, "failover_steering_verified", group="web", site="dc1") == 1.0
    assert value(samples, "failover_applied_epoch", group="web", site="dc2") == epoch
    assert value(samples, "failover_switches_total", group="web") >= 0.0
    assert value(samples, "failover_audit_chain_ok") == 1.0  # verified at the first scrape
    for site in ("dc1", "dc2"):
        assert (
            value(
                samples,
                "failover_probe_latency_seconds_count",
                site=site,
                service="app",
                result="ok",
            )
            > 0
        )
        for observer in INSTANCES:
            assert (
                value(samples, "failover_verdict", site=site, service="app", observer=observer)
                == 1.0
            )


def test_signed_switchover_is_accepted_carried_out_and_audited(steady: Cluster) -> None:
    switches = value(metrics(steady, "b"), "failover_switches_total", group="web")
    code, body = post(
        steady, "b", "/switchover", {"site": "dc2", "group": "web", "reason": "api drill"}
    )
    assert code == 202, body
    command_id = body["command_id"]
    assert body["by"] == "ops" and body["site"] == "dc2"
    steady.wait_steady("dc2")
    entries = [
        e
        for e in steady.operator_audit()
        if (e.payload.get("command") or {}).get("id") == command_id
    ]
    assert {e.kind for e in entries} == {"desired", "command"}
    assert all(e.payload["command"]["by"] == "ops" for e in entries)
    assert all(e.payload["command"]["reason"] == "api drill" for e in entries)
    wait_noted(steady, "POST /switchover", f"accepted as {command_id}", "noted from api:ops")
    assert value(metrics(steady, "b"), "failover_switches_total", group="web") == switches + 1

    code, body = post(steady, "a", "/switchover", {"site": "dc1", "reason": "api drill over"})
    assert code == 202, body
    steady.wait_steady("dc1")


def test_refused_requests_are_refused_and_counted(steady: Cluster) -> None:
    data, _ = sign(steady, "a", "/freeze", {"reason": "unsigned"})
    code, body = send(steady, "a", "/freeze", data, {}, "127.0.0.11")
    assert code == 401 and "missing signature" in body["error"]

    code, body = post(
        steady, "a", "/freeze", {"reason": "wrong"}, "127.0.0.12", secret="not-the-secret"
    )
    assert code == 401 and body["error"] == "wrong signature"

    code, body = post(steady, "a", "/freeze", {"reason": "old"}, "127.0.0.13", at=now() - 1000)
    assert code == 401 and "expired" in body["error"]

    code, body = post(steady, "a", "/freeze", {"reason": "who"}, "127.0.0.14", key_id="nobody")
    assert code == 401 and body["error"] == "wrong signature"  # no hint that it is unknown

    data, headers = sign(steady, "a", "/unfreeze", {"reason": "once"})
    first, body = send(steady, "a", "/unfreeze", data, headers)
    assert first == 202, body
    again, body = send(steady, "a", "/unfreeze", data, headers, "127.0.0.15")
    assert again == 403 and "replayed" in body["error"]

    data, headers = sign(steady, "b", "/freeze", {"reason": "elsewhere"}, for_instance="a")
    code, body = send(steady, "b", "/freeze", data, headers, "127.0.0.16")
    assert code == 401 and "signed for host" in body["error"]

    code, body = post(steady, "a", "/switchover", {"site": "nowhere"})
    assert code == 400 and "'nowhere' is not a serving site" in body["error"]

    assert steady.status()["groups"]["web"]["frozen"] is False  # nothing refused took effect
    wait_refused(steady, "127.0.0.11", "", "missing signature")
    wait_refused(steady, "127.0.0.12", "ops", "wrong signature")
    wait_refused(steady, "127.0.0.13", "ops", "expired (or not yet valid)")
    wait_refused(steady, "127.0.0.14", "nobody", "wrong signature")
    wait_refused(steady, "127.0.0.15", "ops", "replayed")
    wait_refused(steady, "127.0.0.16", "ops", "signed for host '127.0.0.1")
    wait_noted(steady, "api:ops", "refused 400: site: 'nowhere'")  # verified: audited


def test_failures_slow_their_source_and_never_lock_the_key(steady: Cluster) -> None:
    for _attempt in range(3):
        code, body = post(
            steady, "w", "/unfreeze", {}, "127.0.0.21", key_id=LOCK_KEY_ID, secret="wrong"
        )
        assert code == 401, body
    assert "requests from 127.0.0.21 wait 0.5 s" in body["error"]
    code, body = post(
        steady, "w", "/unfreeze", {}, "127.0.0.21", key_id=LOCK_KEY_ID, secret=LOCK_KEY_SECRET
    )
    assert code == 429 and "retry in" in body["error"]
    code, body = post(
        steady,
        "w",
        "/unfreeze",
        {"reason": "elsewhere"},
        key_id=LOCK_KEY_ID,
        secret=LOCK_KEY_SECRET,
    )
    assert code == 202, body  # the same key from another source is not affected
    time.sleep(0.6)
    code, body = post(
        steady, "w", "/unfreeze", {}, "127.0.0.21", key_id=LOCK_KEY_ID, secret=LOCK_KEY_SECRET
    )
    assert code == 202, body
    wait_refused(steady, "127.0.0.21", LOCK_KEY_ID, "too many failed requests from 127.0.0.21")
    wait_noted(steady, f"api:{LOCK_KEY_ID}", "accepted as cmd-")
