"""The operator CLI against a real cluster: status, switchover, freeze, history, explain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from failover.cli import cli
from tests.operator.cluster import ADDRESSES, FAILOVER, Cluster, alice_code, wait_for

pytestmark = pytest.mark.zookeeper


def run(cluster: Cluster, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--config", str(cluster.config_path)])
    assert "Traceback" not in result.output, result.output
    return result


def test_status_shows_groups_sites_and_votes(steady: Cluster) -> None:
    every_up = {"dc1": "up", "dc2": "up", "witness": "up"}
    wait_for(
        lambda: steady.status()["services"]["dc2"]["app"]["votes"] == every_up,
        10.0,
        "every observer site votes",
    )
    table = run(steady, "status")
    assert table.exit_code == 0, table.output
    assert "leader " in table.output and "members: a (dc1), b (dc2), w (witness)" in table.output
    web = next(line for line in table.output.splitlines() if line.startswith("web ")).split()
    epoch = web[2]
    assert web[:2] + web[3:5] == ["web", "dc1", "steady", "no"]
    assert web[6:] == ["dc1", "primary", "primary", epoch, "yes", "healthy"]
    assert web[5].endswith("/30")
    assert "BY dc1" in table.output and "BY witness" in table.output

    doc = json.loads(run(steady, "status", "--json").output)
    group = doc["groups"]["web"]
    assert group["active"] == "dc1" and group["frozen"] is False
    assert group["sites"]["dc1"]["desired"] == "primary"
    assert group["sites"]["dc1"]["applied"] == "primary" and group["sites"]["dc1"]["verified"]
    assert group["sites"]["dc2"]["applied"] == "backup"
    assert group["budget_left"] <= group["budget"] == 30
    assert doc["leader"]["instance"] in ("a", "b", "w")
    assert doc["services"]["dc1"]["app"]["votes"] == every_up
    assert doc["pending"] == []


def test_switchover_refused_when_the_target_is_down(steady: Cluster) -> None:
    steady.http["dc2"].set_health(503)
    wait_for(lambda: steady.situation("dc2") == "site_down", 10.0, "dc2 seen down")
    refused = run(steady, "switchover", "--to", "dc2", "--reason", "should not happen")
    assert refused.exit_code == 1, refused.output
    assert "FAIL  target_healthy" in refused.output
    assert "pass  target " in refused.output
    assert "switchover refused: web: target_healthy: dc2 is site_down" in refused.output
    assert "submitted" not in refused.output
    # Two observer sites make the quorum; the third may publish a moment later.
    wait_for(
        lambda: all(f"{i} down (HTTP 503 from" in run(steady, "status").output for i in "abw"),
        10.0,
        "every observer's verdict in the status table",
    )
    queued = [e for e in steady.operator_audit() if "should not happen" in str(e.payload)]
    assert queued == []  # refused locally: nothing was queued
    steady.http["dc2"].set_health(200)
    wait_for(lambda: steady.healthy("dc2"), 10.0, "dc2 healthy again")


def test_switchover_waits_until_applied_and_verified_then_explain(steady: Cluster) -> None:
    moved = run(steady, "switchover", "--to", "dc2", "--reason", "maintenance of dc1", "--wait")
    assert moved.exit_code == 0, moved.output
    for check in ("target", "target_healthy", "not_frozen", "nothing_in_flight", "budget"):
        assert f"pass  {check} " in moved.output
    assert "accepted [accepted]" in moved.output
    assert "web: applied and verified on dc2 in " in moved.output
    assert steady.bind.answer("www") == [ADDRESSES["dc2"]]  # the name server says so
    command_id = next(word.rstrip(":") for word in moved.output.split() if ".cmd-" in word)

    history = json.loads(run(steady, "history", "--json").output)["entries"]
    mine = [e for e in history if e["command_id"] == command_id]
    assert {e["kind"] for e in mine} == {"desired", "command"}
    # the shared identity: who queued it, and beside it who the CLI says runs it
    assert all(e["by"].startswith("failover-operator (says ") for e in mine)
    assert all(e["by"].endswith("@" + socket.gethostname() + ")") for e in mine)

    explained = run(steady, "explain", command_id)
    assert explained.exit_code == 0, explained.output
    text = explained.output
    assert "rule        accepted" in text and "rule        switchover" in text
    assert "why         maintenance of dc1" in text
    assert "pass  target_healthy" in text
    assert "app: dc1=up dc2=up witness=up" in text
    assert "leader      " in text and ", term " in text
    seq = str(mine[0]["seq"])
    assert run(steady, "explain", seq).output.startswith(f"audit entry {seq} ")

    back = run(steady, "switchover", "--to", "dc1", "--group", "web", "--wait")
    assert back.exit_code == 0, back.output
    steady.wait_steady("dc1")


def test_switchover_to_the_active_site_is_refused(steady: Cluster) -> None:
    explicit = run(steady, "switchover", "--to", "dc1", "--group", "web")
    assert explicit.exit_code == 1
    assert "FAIL  target " in explicit.output and "dc1 is already active" in explicit.output
    every = run(steady, "switchover", "--to", "dc1")
    assert every.exit_code == 1
    assert "web: already on dc1; left as it is" in every.output
    assert "every group is already on dc1" in every.output


def test_freeze_blocks_switchover_until_unfrozen(steady: Cluster) -> None:
    frozen = run(steady, "freeze", "--reason", "change window")
    assert frozen.exit_code == 0, frozen.output
    assert "accepted [accepted]" in frozen.output and "automation frozen by" in frozen.output
    doc = json.loads(run(steady, "status", "--json").output)
    assert doc["groups"]["web"]["frozen"] is True
    assert doc["groups"]["web"]["frozen_reason"] == "change window"
    assert "yes (" in run(steady, "status").output
    blocked = run(steady, "switchover", "--to", "dc2")
    assert blocked.exit_code == 1
    assert "FAIL  not_frozen" in blocked.output and "change window" in blocked.output
    alice = ["--identity", "alice", "--totp"]
    forced = run(steady, "switchover", "--to", "dc2", "--force", "--wait", *alice, alice_code())
    assert forced.exit_code == 0, forced.output
    assert "FAIL  not_frozen" in forced.output and "(overridden by --force)" in forced.output
    assert "switchover to dc2 started (forced past not_frozen)" in forced.output
    back = run(steady, "switchover", "--to", "dc1", "--force", "--wait", *alice, alice_code())
    assert back.exit_code == 0, back.output
    thawed = run(steady, "unfreeze", "--reason", "window over")
    assert thawed.exit_code == 0, thawed.output
    assert json.loads(run(steady, "status", "--json").output)["groups"]["web"]["frozen"] is False
    entries = json.loads(run(steady, "history", "--json", "--limit", "12").output)["entries"]
    assert [e["sentence"] for e in entries if e["sentence"].startswith("automation")] == [
        f"automation frozen by {entries[-1]['by']}: change window",
        f"automation unfrozen by {entries[-1]['by']}: window over",
    ]


def test_scheduled_switchover_runs_at_its_time(steady: Cluster) -> None:
    scheduled = run(
        steady, "switchover", "--to", "dc2", "--at", "+1s", "--expires", "30m", "--wait"
    )
    assert scheduled.exit_code == 0, scheduled.output
    assert "(checked again at the scheduled time)" in scheduled.output
    assert "[scheduled]" in scheduled.output and "scheduled in " in scheduled.output
    assert "web: applied and verified on dc2 in " in scheduled.output
    took = float(scheduled.output.split("applied and verified on dc2 in ")[1].split()[0])
    assert took >= 0.5  # not before its time (an immediate switch takes ~0.05 s)
    override = json.loads(run(steady, "status", "--json").output)["groups"]["web"]["override"]
    assert override["site"] == "dc2" and override["until"] is not None
    back = run(steady, "switchover", "--to", "dc1", "--group", "web", "--wait")
    assert back.exit_code == 0, back.output


def test_history_verify_detects_a_changed_entry(steady: Cluster) -> None:
    verified = run(steady, "history", "--verify")
    assert verified.exit_code == 0, verified.output
    assert "audit chain verified" in verified.output
    client = steady.daemon_client()
    try:
        zk = client._zk
        base = client.layout.audit
        name = sorted(zk.get_children(base))[0]
        original, _ = zk.get(f"{base}/{name}")
        entry = json.loads(original)
        entry["payload"]["decision"]["sentence"] = "nothing happened here"
        zk.set(f"{base}/{name}", json.dumps(entry).encode())
        try:
            broken = run(steady, "history", "--verify")
            assert broken.exit_code == 1
            assert f"first bad: entry {entry['seq']}" in broken.output
            assert f"entry {entry['seq']}: content does not match its hash" in broken.output
            as_json = json.loads(run(steady, "history", "--verify", "--json").stdout)
            assert as_json["chain"]["verified"] is False
        finally:
            zk.set(f"{base}/{name}", original)
    finally:
        client.close()
    assert run(steady, "history", "--verify").exit_code == 0


def test_explain_unknown_and_malformed_ids(cluster: Cluster) -> None:
    missing = run(cluster, "explain", "999999")
    assert missing.exit_code == 1 and "no audit entry for 999999" in missing.output
    assert run(cluster, "explain", "cmd-9999999999").exit_code == 1
    malformed = run(cluster, "explain", "yesterday")
    assert malformed.exit_code == 2 and "neither an audit entry number" in malformed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["switchover", "--to", "dc9"], "--to: 'dc9' is not a serving site (dc1, dc2)"),
        (["switchover", "--to", "dc2", "--group", "nope"], "--group: unknown group 'nope'"),
        (["switchover", "--to", "dc2", "--at", "tomorrow"], "--at: 'tomorrow' is not a time"),
        (["switchover", "--to", "dc2", "--expires", "soon"], "--expires: 'soon' is not a duration"),
        (["freeze", "--group", "nope"], "--group: unknown group 'nope'"),
        (["history", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_exit_2(cluster: Cluster, args: list[str], message: str) -> None:
    result = run(cluster, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_config_from_the_environment_and_missing(cluster: Cluster, tmp_path: Path) -> None:
    bare = {
        "PATH": "/usr/bin:/bin",
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }  # the code under test
    env_run = subprocess.run(
        [FAILOVER, "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"FAILOVER_CONFIG": str(cluster.config_path), **bare},
    )
    assert env_run.returncode == 0, env_run.stderr
    assert json.loads(env_run.stdout)["cluster"] == "ops"
    missing = subprocess.run(
        [FAILOVER, "status"], capture_output=True, text=True, timeout=30, env=bare
    )
    assert missing.returncode == 2 and "Missing option '--config'" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("cluster: {name: x}\n")
    bad = subprocess.run(
        [FAILOVER, "history", "--config", str(broken)], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "cluster.zookeeper" in bad.stderr


def test_zookeeper_unreachable_is_a_clear_failure(cluster: Cluster, tmp_path: Path) -> None:
    text = cluster.config_path.read_text()
    for host in cluster.zk.hosts:
        text = text.replace(host, "127.0.0.1:1")
    config = tmp_path / "nozk.yaml"
    config.write_text(text)
    for secret in ("daemon.digest", "operator.digest", "api.keys", "tsig.key"):
        (tmp_path / secret).write_text((cluster.config_path.parent / secret).read_text())
    for args in (["status"], ["switchover", "--to", "dc2"], ["history", "--verify"]):
        done = subprocess.run(
            [FAILOVER, *args, "--config", str(config)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 1, done.stderr
        assert "ZooKeeper unreachable (127.0.0.1:1)" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


def test_wrong_or_missing_operator_credentials(cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(cluster.config_path.read_text())
    for secret in ("daemon.digest", "api.keys", "tsig.key"):
        (tmp_path / secret).write_text((cluster.config_path.parent / secret).read_text())
    (tmp_path / "operator.digest").write_text("failover-operator:guessed\n")
    wrong = subprocess.run(
        [FAILOVER, "status", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert wrong.returncode == 1, wrong.stderr
    assert "ZooKeeper refused the operator identity" in wrong.stderr
    (tmp_path / "operator.digest").unlink()
    missing = subprocess.run(
        [FAILOVER, "status", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert missing.returncode == 2, missing.stderr
    assert "operator credentials" in missing.stderr and "cannot read" in missing.stderr
    assert "Traceback" not in wrong.stderr + missing.stderr


def test_a_cluster_no_daemon_has_run(cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text(cluster.config_path.read_text().replace("name: ops", "name: empty"))
    for secret in ("daemon.digest", "operator.digest", "api.keys", "tsig.key"):
        (tmp_path / secret).write_text((cluster.config_path.parent / secret).read_text())
    shown = CliRunner().invoke(cli, ["status", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "leader NONE" in shown.output and "no desired state written yet" in shown.output
    frozen = CliRunner().invoke(cli, ["freeze", "--config", str(config)])
    assert frozen.exit_code == 1
    assert (
        "/failover/empty/requests/failover-operator does not exist: no daemon has run "
        "against this ensemble yet"
    ) in frozen.output
    assert "Traceback" not in shown.output + frozen.output
