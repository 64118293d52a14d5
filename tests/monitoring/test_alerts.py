"""docs/monitoring: the alerting rules pass `promtool check rules` and their unit tests
(`promtool test rules`), every alert has a firing test and a runbook section that exists, and
every metric the rules and the dashboard query is one a daemon really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from failover.api.metrics import DaemonMetrics, audit_problems
from failover.config import load_config
from failover.coord import AuditRecord, MemoryCoordinator, MemoryStore
from failover.core.model import Observation, target_key
from failover.record.log import Recorder
from failover.status import build_status

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docs" / "monitoring"
OPERATIONS = ROOT / "docs" / "operations.md"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make system` installs Debian's prometheus package"
    return subprocess.run(
        [tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules_and_the_config() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_test_that_fires_it() -> None:
    doc = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    fired = {
        check["alertname"]
        for case in doc["tests"]
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert sorted({rule["alert"] for rule in rules()} - fired) == []


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown page."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_alert_has_a_runbook_section_in_operations_md() -> None:
    known = anchors(OPERATIONS.read_text())
    for rule in rules():
        runbook = rule["annotations"].get("runbook", "")
        page, _, anchor = runbook.partition("#")
        assert page == "docs/operations.md" and anchor in known, (rule["alert"], runbook)
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def exported() -> set[str]:
    """Every series name one daemon exports, from the metrics code fed a real status
    document (the example config, a leader, observations of every target, an audit entry)."""
    config = load_config(ROOT / "examples" / "two-dc.yaml")
    clock = [1000.0]
    store = MemoryStore(lambda: clock[0])
    coordinator = MemoryCoordinator(store, "dc1-a")
    leadership = coordinator.campaign()
    assert leadership is not None
    coordinator.commit(leadership, audit=[AuditRecord("note", {"n": 1}, clock[0])])
    coordinator.publish(
        [
            Observation("dc1-a", "dc1", target_key(site_name, name, target), "up", 990.0, 999.0)
            for site_name, site in config.sites.items()
            for name, service in site.services.items()
            for target in service.targets()
        ]
    )
    metrics = DaemonMetrics("dc1-a", "dc1")
    metrics.update(
        build_status(coordinator, config, clock[0]),
        leading=True,
        term=leadership.term,
        cycles=7,
        session=coordinator.session_state(),
    )
    assert audit_problems(coordinator) == []
    metrics.audit_checked(True, clock[0])
    metrics.recorder = Recorder(config, "dc1-a", ROOT / "no-such-record-dir")  # never opened
    names = set()
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def queried(expression: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    return set(re.findall(r"\b(failover_[a-z_]+|up)\b", without_ranges))


def test_every_metric_the_rules_query_is_exported() -> None:
    names = exported()
    used = set().union(*(queried(rule["expr"]) for rule in rules()))
    assert used, "no metric found in the rules"
    assert sorted(used - names - PROMETHEUS_OWN) == []


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 10
    used = set().union(*(queried(e) for e in expressions))
    names = exported()
    assert sorted(used - names) == []
    assert {"failover_leader", "failover_active_site", "failover_verdict"} <= used


def test_the_exported_set_is_real() -> None:
    """The check above can fail: a name the daemon does not export is not in the set."""
    names = exported()
    assert "failover_cycles_total" in names and "failover_audit_chain_ok" in names
    assert "failover_probe_latency_seconds_bucket" in names
    assert "failover_leaders" not in names and "failover_cycles" not in names


def test_a_tampered_audit_chain_is_reported() -> None:
    clock = [1000.0]
    store = MemoryStore(lambda: clock[0])
    coordinator = MemoryCoordinator(store, "dc1-a")
    leadership = coordinator.campaign()
    assert leadership is not None
    coordinator.commit(
        leadership, audit=[AuditRecord("note", {"n": n}, clock[0] + n) for n in range(3)]
    )
    assert audit_problems(coordinator) == []
    store.tamper_audit(2, {"n": 99})
    assert audit_problems(coordinator) == ["entry 2: content does not match its hash"]


@pytest.mark.parametrize("path", ["alerts.yml", "alerts_test.yml", "prometheus.yml"])
def test_the_monitoring_files_are_plain_yaml(path: str) -> None:
    assert isinstance(yaml.safe_load((MONITORING / path).read_text()), dict)


def test_the_promtool_tests_are_what_the_script_writes(tmp_path: Path) -> None:
    written = tmp_path / "alerts_test.yml"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make-alerts-test.py"), str(written)],
        check=True,
        timeout=60,
    )
    assert written.read_text() == (MONITORING / "alerts_test.yml").read_text(), (
        "docs/monitoring/alerts_test.yml is stale: run scripts/make-alerts-test.py"
    )
