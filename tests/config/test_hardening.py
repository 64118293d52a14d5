"""Untrusted config, playbook and campaign files: bounded before they are parsed, and every
problem a clean exit 2 naming the file and the path, never a traceback or a hang (issue 14)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from failover.api.commands import BadRequest, command_from_body, parse_at, parse_duration
from failover.cli import cli
from failover.config import ConfigError, load_config
from failover.config.load import MAX_FILE_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIMULATIONS = Path(__file__).resolve().parents[2] / "simulations"


def example(tmp_path: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    shutil.copytree(EXAMPLES / "secrets", tmp_path / "secrets", dirs_exist_ok=True)
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o600)
    path = tmp_path / "config.yaml"
    return path, yaml.safe_load((EXAMPLES / "two-dc.yaml").read_text())


def run(*args: str) -> Result:
    started = time.monotonic()
    result = CliRunner().invoke(cli, list(args))
    assert time.monotonic() - started < 10
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def validate(path: Path) -> Result:
    return run("validate", str(path))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cluster: {name: c}\n1: x\n", "the key 1 is not a string"),
        ("cluster: {name: c, ? [a, b] : x}\n", "invalid YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
                for i in range(9)
            ),
            "more than 64 aliases",
        ),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 40 levels"),
        ("a: " + "{b: " * 100 + "1" + "}" * 100 + "\n", "nested deeper than 40 levels"),
        ("cluster: {zookeeper: {session_timeout_s: .inf}}\n", "inf is not a finite number"),
        ("policy: {hold_down_s: .nan}\n", "nan is not a finite number"),
        ("a: " + "9" * 5000 + "\n", "invalid YAML"),
    ],
)
def test_hostile_yaml_is_refused_cleanly(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert problem in result.output and str(path) in result.output


def test_huge_files_fifos_devices_and_folders_are_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, problem in (
        (huge, "larger than"),
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "a directory"),
    ):
        result = validate(path)
        assert result.exit_code == 2 and problem in result.output, (path, result.output)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["cluster"]["api"].update(clock_skew_s=float("inf")), "finite"),
        (lambda d: d["instances"]["dc1-a"].update(api="[]:8700"), "is not an IP address"),
        (lambda d: d["instances"]["dc1-a"].update(api="api.example:8700"), "not an IP address"),
        (lambda d: d["instances"]["dc1-a"].update(api="::1:8700"), "goes in brackets"),
        (
            lambda d: d["instances"]["dc1-a"].update(api="10.1.0.2:\uff18\uff17\uff10\uff10"),
            "is not host:port",
        ),  # full-width digits
        (
            lambda d: d["groups"]["mail"]["steering"].update(servers=["ns1.example:53"]),
            "is not an IP address",
        ),
    ],
)
def test_values_that_would_crash_or_weaken_the_daemon(tmp_path: Path, change, problem) -> None:  # type: ignore[no-untyped-def]
    path, document = example(tmp_path)
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    result = validate(path)
    assert result.exit_code == 2 and problem in result.output, result.output


def test_validate_reads_secret_files_without_printing_them(tmp_path: Path) -> None:
    path, document = example(tmp_path)
    path.write_text(yaml.safe_dump(document))
    assert validate(path).output == "ok\n"
    tsig = tmp_path / "secrets" / "tsig.key"
    secret = tsig.read_text().strip()
    tsig.chmod(0o644)
    result = validate(path)
    assert result.exit_code == 0 and "tsig.key: readable by others (mode 644)" in result.output
    tsig.write_text("not base64 at all!\n")
    tsig.chmod(0o600)
    result = validate(path)
    assert result.exit_code == 2 and "secret_file" in result.output
    assert "not base64" in result.output
    tsig.unlink()
    result = validate(path)
    assert result.exit_code == 2 and "tsig.key: cannot read" in result.output
    digest = tmp_path / "secrets" / "daemon.digest"
    password = digest.read_text().strip()
    digest.write_text(password.replace(":", "") + "\n")
    result = validate(path)
    assert "expected one line user:password" in result.output
    for value in (secret, password, password.partition(":")[2]):
        assert value not in result.output
    digest.write_text("failover-daemon:short\n")
    assert "the password is too weak" in validate(path).output


def test_a_config_without_daemon_auth_is_refused_unless_open_acls_are_asked_for(
    tmp_path: Path,
) -> None:
    """Finding 9: without daemon_auth every node was silently world-writable."""
    path, document = example(tmp_path)
    del document["cluster"]["zookeeper"]["daemon_auth"]
    path.write_text(yaml.safe_dump(document))
    for result in (validate(path), run("run", "--config", str(path), "--instance", "dc1-a")):
        assert result.exit_code == 2, result.output
        assert "cluster.zookeeper.daemon_auth: not set: every ZooKeeper node" in result.output
        assert "insecure_open_acl: true" in result.output
    document["cluster"]["zookeeper"]["insecure_open_acl"] = True
    path.write_text(yaml.safe_dump(document))
    result = validate(path)
    assert result.exit_code == 0, result.output
    assert "warning: cluster.zookeeper.insecure_open_acl: INSECURE" in result.output


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        ("lab-daemon-secret", True),  # the old example: 17 characters, about 100 bits
        ("Aa1" * 10, True),  # long, but a pattern of three characters
        ("x" * 40, True),
        ("3ZYXT8YJvkaZ1YsUJ80Vegq", False),  # 23 random base64 characters
        ("4txAiH6yr9oklRnIH/8iiLGDXrJisnJCb/jj40/7", False),  # openssl rand -base64 30
    ],
)
def test_zookeeper_passwords_must_resist_an_offline_search(
    tmp_path: Path, password: str, refused: bool
) -> None:
    """Finding 9: the digest (unsalted SHA-1 of user:password) is readable with getACL."""
    path, document = example(tmp_path)
    path.write_text(yaml.safe_dump(document))
    for name in ("daemon", "operator"):
        digest = tmp_path / "secrets" / f"{name}.digest"
        original = digest.read_text()
        digest.write_text(f"failover-{name}:{password}\n")
        result = validate(path)
        assert (result.exit_code == 2) == refused, result.output
        if refused:
            assert f"cluster.zookeeper.{name}_auth.credentials_file" in result.output
            assert "the password is too weak" in result.output
        assert password not in result.output
        digest.write_text(original)


def test_campaigns_and_playbooks_refuse_infinities(tmp_path: Path) -> None:
    shutil.copy(SIMULATIONS / "reference.yaml", tmp_path / "reference.yaml")
    campaign = yaml.safe_load((SIMULATIONS / "chaos.yaml").read_text())
    campaign["faults_per_hour"] = float("inf")
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump(campaign))
    result = run("chaos", str(path), "--runs", "1", "--jobs", "1")
    assert result.exit_code == 2 and "faults_per_hour: inf is not a finite number" in result.output


def test_times_durations_and_bodies_are_bounded() -> None:
    now = 1_800_000_000.0
    for bad in ("9" * 400, "1e999", "99999999999d", "nan", "inf", " " * 100 + "5m"):
        with pytest.raises(BadRequest):
            parse_duration(bad)
    for bad in ("+" + "9" * 400 + "d", "+400d", "9999-12-31T00:00:00Z", "x" * 10_000):
        with pytest.raises(BadRequest):
            parse_at(bad, now)
    config = load_config(EXAMPLES / "two-dc.yaml")
    for body in (
        '{"site": "dc2", "expires": NaN}',
        '{"site": "dc2", "at": Infinity}',
        '{"site": "dc2", "expires": 1e999}',
        '{"site": "dc2", "at": 1e308}',
        '{"site": "dc2", "at": ' + "9" * 400 + "}",
        "[" * 100_000,
    ):
        with pytest.raises(BadRequest):
            command_from_body("switchover", body, "ops", config, now)


def test_load_config_raises_only_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_a_playbook_condition_naming_an_unknown_site_is_refused(tmp_path: Path) -> None:
    """It could never be true: the step never ran, yet the playbook passed."""
    playbooks = Path(__file__).resolve().parents[2] / "playbooks"
    document = yaml.safe_load((playbooks / "leader-crash-mid-switch.yaml").read_text())
    document["topology"] = str(SIMULATIONS / "reference.yaml")
    for step in document["method"]:
        if "when" in step:
            step["when"] = "active == dc9"
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(document))
    result = run("gameday", str(path))
    assert result.exit_code == 2, result.output
    assert "when: active is never 'dc9' here" in result.output


def test_a_daemon_does_not_start_with_a_missing_secret_file(tmp_path: Path) -> None:
    """Finding 13: a missing TSIG secret was found only when the leader first steered."""
    path, document = example(tmp_path)
    path.write_text(yaml.safe_dump(document))
    (tmp_path / "secrets" / "tsig.key").unlink()
    result = run("run", "--config", str(path), "--instance", "dc1-a")
    assert result.exit_code == 2, result.output
    assert "groups.mail.steering.tsig.secret_file" in result.output
    assert "tsig.key: cannot read" in result.output


def test_operator_identities_are_checked(tmp_path: Path) -> None:
    """Finding 10: each operator's own identity, by name; its file must name that operator."""
    from kazoo.security import make_digest_acl_credential

    path, document = example(tmp_path)
    zk = document["cluster"]["zookeeper"]
    (tmp_path / "secrets" / "alice.digest").write_text("bob:Vx3kQ9rT2mW8zL5pN7bYq1\n")
    (tmp_path / "secrets" / "alice.digest").chmod(0o600)
    zk["operators"] = {
        "alice": {"credentials_file": "secrets/alice.digest"},
        "bob": {"digest": make_digest_acl_credential("bob", "Vx3kQ9rT2mW8zL5pN7bYq1")},
    }
    path.write_text(yaml.safe_dump(document))
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert "cluster.zookeeper.operators.alice.credentials_file" in result.output
    assert "names user 'bob', not the operator 'alice'" in result.output
    (tmp_path / "secrets" / "alice.digest").write_text("alice:Vx3kQ9rT2mW8zL5pN7bYq1\n")
    result = validate(path)
    assert result.exit_code == 0, result.output
    assert "operator_auth: a shared operator identity beside operators" in result.output
    for bad, problem in (
        ({"digest": "alice:short"}, "expected user:BASE64"),
        ({"digest": zk["operators"]["bob"]["digest"]}, "names user 'bob', not 'alice'"),
        ({}, "give exactly one of credentials_file and digest"),
    ):
        zk["operators"]["alice"] = bad
        path.write_text(yaml.safe_dump(document))
        result = validate(path)
        assert result.exit_code == 2 and problem in result.output, result.output
