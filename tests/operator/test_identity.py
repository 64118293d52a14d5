"""Per-operator ZooKeeper identities and the CLI's second factor (issue 14, findings 9 and 10),
against the real cluster: who an audit entry names is the identity that queued the command,
and a write that needs a TOTP code is checked by the leader, once across the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from failover.cli import cli
from failover.coord.zklayout import Identity
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.core.model import Command
from tests.operator.cluster import BOB_PASSWORD, Cluster, alice_code, wait_for

pytestmark = pytest.mark.zookeeper


def run(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, [*args, "--config", str(cluster.config_path)], env=env)
    assert "Traceback" not in result.output, result.output
    return result


def entries_of(cluster: Cluster, command_id: str) -> list[dict[str, object]]:
    history = json.loads(run(cluster, "history", "--json", "--limit", "60").output)["entries"]
    return [e for e in history if e["command_id"] == command_id]


def command_id(output: str) -> str:
    return next(word.rstrip(":") for word in output.split() if ".cmd-" in word)


def test_the_audit_names_the_identity_that_queued_the_command(
    steady: Cluster, tmp_path: Path
) -> None:
    """Before, `who` was $LOGNAME and all operators shared one ZooKeeper identity."""
    frozen = run(steady, "freeze", "--identity", "alice", "--reason", "alice's window")
    assert frozen.exit_code == 0, frozen.output
    cid = command_id(frozen.output)
    assert cid.startswith("alice.cmd-")
    assert {e["by"] for e in entries_of(steady, cid)} == {"alice"}
    bob_file = steady.workdir / "bob.digest"  # bob's own copy: the config has his digest only
    thawed = run(
        steady, "unfreeze", "--reason", "bob's turn", env={"FAILOVER_IDENTITY": str(bob_file)}
    )
    assert thawed.exit_code == 0, thawed.output
    assert {e["by"] for e in entries_of(steady, command_id(thawed.output))} == {"bob"}
    # bob claims to be alice: the folder he can write to says who he is
    bob = ZooKeeperCoordinator.from_config(
        steady.config,  # type: ignore[arg-type]
        "bob-tool",
        role="operator",
        identity=Identity("bob", BOB_PASSWORD),
    ).connect(timeout_s=10.0)
    try:
        spoofed = bob.submit(Command("", "note", "alice", "a note that claims to be alice's"))
    finally:
        bob.close()
    wait_for(lambda: entries_of(steady, spoofed), 10.0, "the note recorded")
    assert {e["by"] for e in entries_of(steady, spoofed)} == {"bob (says alice)"}
    # an identity that is no operator of the cluster, a file that is not one
    stranger = tmp_path / "mallory.digest"
    stranger.write_text("mallory:Vx3kQ9rT2mW8zL5pN7bYq1\n")
    refused = run(steady, "freeze", "--identity", str(stranger))
    assert refused.exit_code == 1
    assert "ZooKeeper refused the operator identity" in refused.output
    missing = run(steady, "freeze", "--identity", str(tmp_path / "nobody"))
    assert missing.exit_code == 2 and "--identity credentials" in missing.output
    digest_only = run(steady, "freeze", "--identity", "bob")
    assert digest_only.exit_code == 2 and "only the digest of 'bob'" in digest_only.output


def test_a_forced_switchover_from_the_cli_needs_a_second_factor_checked_by_the_leader(
    steady: Cluster,
) -> None:
    alice = ["--identity", "alice"]
    asked = run(steady, "switchover", "--to", "dc2", "--force", *alice)
    assert asked.exit_code == 2 and "needs a second factor: --totp CODE" in asked.output
    wrong = run(steady, "switchover", "--to", "dc2", "--force", *alice, "--totp", "000000")
    assert wrong.exit_code == 1, wrong.output
    assert "REFUSED" in wrong.output and "wrong or expired second factor" in wrong.output
    code = alice_code()
    moved = run(steady, "switchover", "--to", "dc2", "--force", "--wait", *alice, "--totp", code)
    assert moved.exit_code == 0, moved.output
    again = run(steady, "switchover", "--to", "dc1", "--force", *alice, "--totp", code)
    assert again.exit_code == 1 and "this second factor code was already used" in again.output
    back = run(
        steady, "switchover", "--to", "dc1", "--force", "--wait", *alice, "--totp", alice_code()
    )
    assert back.exit_code == 0, back.output
    # a tool that writes the command itself, past the CLI: the leader still asks
    tool = ZooKeeperCoordinator.from_config(
        steady.config,  # type: ignore[arg-type]
        "alice-tool",
        role="operator",
        identity=Identity(
            "alice", (steady.workdir / "alice.digest").read_text().split(":")[1].strip()
        ),
    ).connect(timeout_s=10.0)
    try:
        queued = tool.submit(Command("", "switchover", "alice", "no factor", "web", "dc2", True))
        wait_for(lambda: tool.command_result(queued), 10.0, "the leader's answer")
        result = tool.command_result(queued)
    finally:
        tool.close()
    assert result is not None and not result.ok
    assert "second factor required for switchover --force" in result.sentence
    # the shared identity has no second factor: it cannot force a switchover at all
    shared = run(steady, "switchover", "--to", "dc2", "--force", "--totp", alice_code())
    assert shared.exit_code == 1 and "wrong or expired second factor" in shared.output
    steady.wait_steady("dc1")
