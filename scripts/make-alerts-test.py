"""Writes docs/monitoring/alerts_test.yml: the promtool unit tests of alerts.yml, one case per
alert (it fires when it should, stays quiet before its `for:` or when the cause is elsewhere),
with the expected annotations rendered from alerts.yml. Run it after changing an alert (an
argument writes elsewhere), then `promtool test rules docs/monitoring/alerts_test.yml`;
tests/monitoring/test_alerts.py checks that the checked-in file is what it writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parents[1] / "docs" / "monitoring"

with open(MONITORING / "alerts.yml", encoding="utf-8") as handle:
    rules = {r["alert"]: r for g in yaml.safe_load(handle)["groups"] for r in g["rules"]}
A = 'job="failover", instance="10.1.0.2:8700"'
B = 'job="failover", instance="10.2.0.2:8700"'
AD = A + ', exported_instance="dc1-a", site="dc1"'
BD = B + ', exported_instance="dc2-a", site="dc2"'


def render(text, labels, value):
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)
    return text.replace("{{ $value }}", value)


def fires(name, at, labels, value="0"):
    rule = rules[name]
    all_labels = {**rule.get("labels", {}), **labels}
    ann = {k: render(v, all_labels, value) for k, v in rule["annotations"].items()}
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": all_labels, "exp_annotations": ann}],
    }


def quiet(name, at):
    return {"eval_time": at, "alertname": name, "exp_alerts": []}


def case(comment, series, checks, interval="15s"):
    return {
        "interval": interval,
        "name": comment,
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": checks,
    }


a_lab = {"job": "failover", "instance": "10.1.0.2:8700"}
a_daemon = {**a_lab, "exported_instance": "dc1-a", "site": "dc1"}
tests = [
    case(
        "FailoverDaemonDown: dc1-a stops answering at 30 s; dc2-a stays up",
        [(f"up{{{A}}}", "1 1 0x10"), (f"up{{{B}}}", "1x12")],
        [quiet("FailoverDaemonDown", "1m"), fires("FailoverDaemonDown", "2m30s", a_lab)],
    ),
    case(
        "FailoverCyclesStalled: dc1-a's cycle count stops growing at 2 min; dc2-a's grows",
        [
            (f"failover_cycles_total{{{AD}}}", "0+15x8 120x24"),
            (f"failover_cycles_total{{{BD}}}", "0+15x32"),
        ],
        [quiet("FailoverCyclesStalled", "3m"), fires("FailoverCyclesStalled", "5m30s", a_daemon)],
    ),
    case(
        "FailoverNoLeader: dc1-a leads until 1 min, then nobody does",
        [(f"failover_leader{{{AD}}}", "1x4 0x20"), (f"failover_leader{{{BD}}}", "0x24")],
        [quiet("FailoverNoLeader", "1m15s"), fires("FailoverNoLeader", "2m30s", {})],
    ),
    case(
        "FailoverNoLeader: no daemon exports anything at all",
        [(f"up{{{A}}}", "0x12")],
        [fires("FailoverNoLeader", "2m", {})],
    ),
    case(
        "FailoverCoordinatorDisconnected: dc1-a loses its session at 1 min; dc2-a keeps its own"
        " (so FailoverZooKeeperUnavailable stays quiet)",
        [
            (f"failover_coordinator_connected{{{AD}}}", "1x4 0x12"),
            (f"failover_coordinator_connected{{{BD}}}", "1x16"),
        ],
        [
            quiet("FailoverCoordinatorDisconnected", "1m45s"),
            fires("FailoverCoordinatorDisconnected", "2m30s", a_daemon),
            quiet("FailoverZooKeeperUnavailable", "3m"),
        ],
    ),
    case(
        "FailoverZooKeeperUnavailable: every daemon loses its session at 1 min",
        [
            (f"failover_coordinator_connected{{{AD}}}", "1x4 0x12"),
            (f"failover_coordinator_connected{{{BD}}}", "1x4 0x12"),
        ],
        [
            quiet("FailoverZooKeeperUnavailable", "1m15s"),
            fires("FailoverZooKeeperUnavailable", "2m", {}),
        ],
    ),
    case(
        "FailoverStatusUnreadable: dc1-a is connected but cannot read the state from 1 min",
        [
            (f"failover_coordinator_connected{{{AD}}}", "1x24"),
            (f"failover_status_read_ok{{{A}}}", "1x4 0x20"),
            (f"failover_coordinator_connected{{{BD}}}", "1x24"),
            (f"failover_status_read_ok{{{B}}}", "1x24"),
        ],
        [
            quiet("FailoverStatusUnreadable", "2m"),
            fires("FailoverStatusUnreadable", "3m30s", a_daemon),
        ],
    ),
    case(
        "FailoverSteeringNotVerified: both daemons see dc2 unverified from 1 min; only one sees"
        " dc1 unverified (a stale read), which is not enough",
        [
            (f'failover_steering_verified{{{A}, group="web", site="dc2"}}', "1x4 0x20"),
            (f'failover_steering_verified{{{B}, group="web", site="dc2"}}', "1x4 0x20"),
            (f'failover_steering_verified{{{A}, group="web", site="dc1"}}', "1x4 0x20"),
            (f'failover_steering_verified{{{B}, group="web", site="dc1"}}', "1x24"),
        ],
        [
            quiet("FailoverSteeringNotVerified", "2m"),
            fires("FailoverSteeringNotVerified", "3m30s", {"group": "web", "site": "dc2"}),
        ],
    ),
    case(
        "FailoverDesiredNotApplied: epoch 4 from 1 min; dc1 applies it, dc2 stays at 3",
        [
            (f'failover_epoch{{{A}, group="web"}}', "3x4 4x20"),
            (f'failover_applied_epoch{{{A}, group="web", site="dc1"}}', "3x4 4x20"),
            (f'failover_applied_epoch{{{A}, group="web", site="dc2"}}', "3x24"),
        ],
        [
            quiet("FailoverDesiredNotApplied", "2m"),
            fires("FailoverDesiredNotApplied", "3m30s", {"group": "web", "site": "dc2"}, "1"),
        ],
    ),
    case(
        "FailoverFailOpen: dc1 is down all along, dc2 goes down at 1 min",
        [
            (
                f'failover_site_healthy{{{A}, group="web", site="dc1", situation="site_down"}}',
                "0x20",
            ),
            (f'failover_site_healthy{{{A}, group="web", site="dc2", situation="healthy"}}', "1x3"),
            (
                f'failover_site_healthy{{{A}, group="web", site="dc2", situation="service_down"}}',
                "_x4 0x16",
            ),
            (f'failover_active_site{{{A}, group="web", site="dc1"}}', "1x20"),
            (f'failover_active_site{{{A}, group="web", site="dc2"}}', "0x20"),
        ],
        [quiet("FailoverFailOpen", "1m30s"), fires("FailoverFailOpen", "2m30s", {"group": "web"})],
    ),
    case(
        "FailoverSwitched: web switches at 1 min (both daemons count it); mail never does",
        [
            (f'failover_switches_total{{{A}, group="web"}}', "0x4 1x60"),
            (f'failover_switches_total{{{B}, group="web"}}', "0x4 1x60"),
            (f'failover_switches_total{{{A}, group="mail"}}', "0x64"),
        ],
        [
            quiet("FailoverSwitched", "45s"),
            fires("FailoverSwitched", "2m", {"group": "web"}),
            quiet("FailoverSwitched", "12m"),
        ],
    ),
    case(
        "FailoverBlocked: web's active dc1 goes down at 1 min and stays active; mail's dc1 goes"
        " down too but mail fails over to dc2 at 1 min 30 s",
        [
            (f'failover_site_healthy{{{A}, group="web", site="dc1", situation="healthy"}}', "1x3"),
            (
                f'failover_site_healthy{{{A}, group="web", site="dc1", situation="service_down"}}',
                "_x4 0x20",
            ),
            (f'failover_site_healthy{{{A}, group="web", site="dc2", situation="healthy"}}', "1x24"),
            (f'failover_active_site{{{A}, group="web", site="dc1"}}', "1x24"),
            (f'failover_active_site{{{A}, group="web", site="dc2"}}', "0x24"),
            (f'failover_site_healthy{{{A}, group="mail", site="dc1", situation="healthy"}}', "1x3"),
            (
                f'failover_site_healthy{{{A}, group="mail", site="dc1", situation="site_down"}}',
                "_x4 0x20",
            ),
            (
                f'failover_site_healthy{{{A}, group="mail", site="dc2", situation="healthy"}}',
                "1x24",
            ),
            (f'failover_active_site{{{A}, group="mail", site="dc1"}}', "1x5 0x19"),
            (f'failover_active_site{{{A}, group="mail", site="dc2"}}', "0x5 1x19"),
        ],
        [
            quiet("FailoverBlocked", "2m"),
            fires("FailoverBlocked", "3m30s", {"group": "web", "site": "dc1"}),
            quiet("FailoverFailOpen", "3m30s"),
        ],
    ),
    case(
        "FailoverBudgetExhausted: web's budget falls to 0 at 2 min; mail keeps 4",
        [
            (f'failover_switch_budget_left{{{A}, group="web"}}', "2x4 1x4 0x20"),
            (f'failover_switch_budget_left{{{A}, group="mail"}}', "4x28"),
        ],
        [
            quiet("FailoverBudgetExhausted", "2m30s"),
            fires("FailoverBudgetExhausted", "3m30s", {"group": "web"}),
        ],
    ),
    case(
        "FailoverFrozenLong: web frozen from 1 min; mail never",
        [
            (f'failover_frozen{{{A}, group="web"}}', "0 1x300"),
            (f'failover_frozen{{{B}, group="web"}}', "0 1x300"),
            (f'failover_frozen{{{A}, group="mail"}}', "0x300"),
        ],
        [quiet("FailoverFrozenLong", "4h"), fires("FailoverFrozenLong", "4h30m", {"group": "web"})],
        interval="1m",
    ),
    case(
        "FailoverCheckFailing: dc1-a sees dc1/app down from 1 min (both daemons export it),"
        " dc2-a sees it up; an unknown verdict (-1) is not a failure",
        [
            (
                f'failover_verdict{{{A}, site="dc1", service="app", target="10.1.0.10:8080", '
                'observer="dc1-a", observer_site="dc1"}',
                "1x4 0x40",
            ),
            (
                f'failover_verdict{{{B}, site="dc1", service="app", target="10.1.0.10:8080", '
                'observer="dc1-a", observer_site="dc1"}',
                "1x4 0x40",
            ),
            (
                f'failover_verdict{{{A}, site="dc1", service="app", target="10.1.0.10:8080", '
                'observer="dc2-a", observer_site="dc2"}',
                "1x44",
            ),
            (
                f'failover_verdict{{{A}, site="dc2", service="app", target="10.2.0.10:8080", '
                'observer="dc1-a", observer_site="dc1"}',
                "-1x44",
            ),
        ],
        [
            quiet("FailoverCheckFailing", "5m"),
            fires(
                "FailoverCheckFailing",
                "6m30s",
                {"site": "dc1", "service": "app", "target": "10.1.0.10:8080"},
                "1",
            ),
        ],
    ),
    case(
        "FailoverAuditChainBroken: dc1-a's check finds the chain broken at 1 min",
        [
            (f"failover_audit_chain_ok{{{A}}}", "1x4 0x4"),
            (f"failover_audit_chain_ok{{{B}}}", "1x8"),
        ],
        [quiet("FailoverAuditChainBroken", "45s"), fires("FailoverAuditChainBroken", "1m15s", {})],
    ),
    case(
        "FailoverRecordingStopped: dc1-a's disk fills at 1 min; dc2-a records on",
        [
            (f"failover_recording_ok{{{AD}}}", "1x4 0x60"),
            (f"failover_recording_ok{{{BD}}}", "1x64"),
        ],
        [
            quiet("FailoverRecordingStopped", "10m"),
            fires(
                "FailoverRecordingStopped",
                "11m30s",
                {
                    "job": "failover",
                    "instance": "10.1.0.2:8700",
                    "exported_instance": "dc1-a",
                    "site": "dc1",
                },
            ),
        ],
    ),
    case(
        "FailoverProbesLate: from 1 min dc1-a's checks start 0.25-0.5 s late; dc2-a's on time",
        [
            *(
                (f'failover_probe_start_lag_seconds_bucket{{{AD}, le="{le}"}}', values)
                for le, values in (("0.1", "0+60x4 240x40"), ("0.25", "0+60x4 240x40"))
            ),
            *(
                (f'failover_probe_start_lag_seconds_bucket{{{AD}, le="{le}"}}', "0+60x44")
                for le in ("0.5", "+Inf")
            ),
            *(
                (f'failover_probe_start_lag_seconds_bucket{{{BD}, le="{le}"}}', "0+60x44")
                for le in ("0.1", "0.25", "0.5", "+Inf")
            ),
        ],
        [quiet("FailoverProbesLate", "5m"), fires("FailoverProbesLate", "8m", a_daemon)],
    ),
    case(
        "FailoverCyclesSlow: from 1 min dc1-a's cycles take 1-2 s; dc2-a's 0.05 s",
        [
            *(
                (f'failover_cycle_seconds_bucket{{{AD}, le="{le}"}}', values)
                for le, values in (("0.1", "0+15x4 60x40"), ("1.0", "0+15x4 60x40"))
            ),
            *(
                (f'failover_cycle_seconds_bucket{{{AD}, le="{le}"}}', "0+15x44")
                for le in ("2.0", "+Inf")
            ),
            *(
                (f'failover_cycle_seconds_bucket{{{BD}, le="{le}"}}', "0+15x44")
                for le in ("0.1", "1.0", "2.0", "+Inf")
            ),
        ],
        [quiet("FailoverCyclesSlow", "5m"), fires("FailoverCyclesSlow", "8m", a_daemon)],
    ),
]
doc = {"rule_files": ["alerts.yml"], "evaluation_interval": "15s", "tests": tests}
header = (
    "# promtool unit tests of alerts.yml (`promtool test rules alerts_test.yml`), written by\n"
    "# scripts/make-alerts-test.py: every alert fires when it should and stays quiet before its\n"
    "# `for` has passed or when the cause is elsewhere. Series carry the labels a scrape of a\n"
    "# daemon gives (job, instance = the target, exported_instance = the daemon's name).\n"
    "# tests/monitoring runs them.\n"
)
with open(
    sys.argv[1] if len(sys.argv) > 1 else MONITORING / "alerts_test.yml", "w", encoding="utf-8"
) as f:
    f.write(header + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True))
