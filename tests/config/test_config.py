from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.config import ConfigError, DnsSteering, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"


def example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data), base=EXAMPLE.parent)
    return [str(p) for p in caught.value.problems]


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


def test_the_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.serving_sites == ["dc1", "dc2"]
    assert config.observer_sites == ["dc1", "dc2", "witness"]
    assert config.observer_quorum == 2
    assert config.preferred_site("web") == "dc1"
    assert config.lease_s("web") == 6 and config.lease_s("mail") == 0
    secret = config.cluster.zookeeper.daemon_auth
    assert secret is not None and Path(secret.credentials_file).is_file()


def test_validate_prints_ok(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert (result.exit_code, result.stdout) == (0, "ok\n")  # stderr: mode warnings, if any


def test_every_error_is_reported_with_its_path_and_value() -> None:
    data = example_data()
    data["sites"]["dc1"]["services"]["app"]["check"]["fall"] = 0
    data["sites"]["dc1"]["services"]["db"]["check"]["timeout_s"] = 5
    data["sites"]["dc2"]["services"]["mail"]["colour"] = "red"
    data["policy"]["hold_down_s"] = -1
    found = problems(data)
    assert (
        "sites.dc1.services.app.check.fall: Input should be greater than or equal to 1 "
        "(got 0)" in found
    )
    assert any(
        p.startswith(
            "sites.dc1.services.db.check: timeout_s (5.0) must be less than interval_s (1.0)"
        )
        for p in found
    )
    assert "sites.dc2.services.mail.colour: unknown key" in found
    assert any(p.startswith("policy.hold_down_s: ") and "(got -1)" in p for p in found)
    assert len(found) == 4


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda d: d["groups"]["web"]["services"].append("cache"),
            "groups.web.services: 'cache' is not a service of site dc1",
        ),
        (
            lambda d: d["sites"]["witness"].update(
                services={"app": d["sites"]["dc1"]["services"]["app"]}
            ),
            "sites.witness: a witness site observes and votes only; it cannot have services",
        ),
        (
            lambda d: d["sites"]["dc2"]["services"]["app"].update(endpoints=["10.1.0.10:8080"]),
            "sites.dc2.services.app.endpoints: '10.1.0.10:8080' is already probed by "
            "sites.dc1.services.app",
        ),
        (
            lambda d: d["groups"]["mail"]["steering"]["names"]["mail"].update(dc2=["10.1.0.13"]),
            "groups.mail.steering.names.mail: address 10.1.0.13 is given twice",
        ),
        (
            lambda d: d["instances"]["dc2-a"].update(site="dc3"),
            "instances.dc2-a.site: unknown site 'dc3'",
        ),
        (
            lambda d: d["policy"].update(preferred_site="witness"),
            "policy.preferred_site: 'witness' is not a serving site",
        ),
        (
            lambda d: d["policy"].update(observer_quorum=4),
            "policy.observer_quorum: 4 exceeds the 3 observer sites",
        ),
        (
            lambda d: d["groups"]["web"]["steering"]["sites"].pop("dc2"),
            "groups.web.steering.sites: serving site 'dc2' is missing",
        ),
        (
            lambda d: d["instances"]["dc2-a"].update(api="10.1.0.2:8700"),
            "instances: api address '10.1.0.2:8700' is used by more than one instance",
        ),
        (
            lambda d: d["sites"]["dc1"].update(role="witness", services={}),
            "sites: exactly two serving sites are required, found 1 (['dc2'])",
        ),
    ],
)
def test_cross_field_rules(change: Callable[[dict[str, Any]], object], expected: str) -> None:
    data = example_data()
    change(data)
    assert expected in problems(data)


@pytest.mark.parametrize(
    "path, value, fragment",
    [
        ("groups.web.steering.prefix", "203.0.113.7/24", "not a network prefix"),
        ("groups.web.steering.metric_primary", 30, "metric_primary < metric_held < metric_backup"),
        ("groups.web.steering.metric_held", 5, "metric_primary < metric_held < metric_backup"),
        (
            "groups.mail.steering.names",
            {"mail.other.test.": {"dc1": ["10.1.0.13"], "dc2": ["10.2.0.13"]}},
            "outside zone example.test.",
        ),
        ("cluster.zookeeper.hosts", ["zk1"], "'zk1' is not host:port"),
        ("cluster.zookeeper.chroot", "failover", "must be an absolute path"),
        ("sites.dc1.services.app.endpoints", [], "at least one endpoint is required"),
        ("sites.dc1.services.app.check.type", "gopher", "does not match any of the expected tags"),
        ("sites.dc1.services.app.kind", "cache", "Input should be 'app', 'mail'"),
    ],
)
def test_field_rules(path: str, value: object, fragment: str) -> None:
    data = example_data()
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    found = problems(data)
    assert any(fragment in p for p in found), found


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    code, output = validate(tmp_path, "cluster: [unclosed\n")
    assert code == 2 and "invalid YAML: line 2" in output and "Traceback" not in output


def test_unreadable_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "cannot read the file: No such file or directory" in result.output


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    code, output = validate(tmp_path, "- a\n- b\n")
    assert code == 2 and "the top level must be a mapping" in output


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "cannot read the file" in result.output


def test_cli_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    data = example_data()
    data["sites"]["dc1"]["services"]["app"]["check"]["rise"] = 0
    data["groups"]["web"]["services"].append("cache")
    code, output = validate(tmp_path, yaml.safe_dump(data))
    assert code == 2
    assert "sites.dc1.services.app.check.rise: Input should be greater than" in output
    assert "1 error(s)" in output  # field errors stop before the cross-field pass


def test_relative_file_references_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    steering = config.groups["mail"].steering
    assert isinstance(steering, DnsSteering)
    tsig = steering.tsig
    assert Path(tsig.secret_file).parent == EXAMPLE.parent / "secrets"


def test_explain_describes_the_cluster() -> None:
    result = CliRunner().invoke(cli, ["validate", "--explain", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "group web: app, lb, db, firewall moved by BGP 203.0.113.0/24" in result.output
    assert "a site is down when 2 of 3 observer sites agree" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["validate", "--bogus", str(EXAMPLE)]).exit_code == 2


def test_daemon_timers_must_fit_the_lease_and_staleness() -> None:
    data = example_data()
    data["cluster"]["daemon"] = {"heartbeat_s": 6, "watchdog_s": 1.5, "cycle_s": 3}
    found = problems(data)
    assert "cluster.daemon.heartbeat_s: 6 must be less than policy.stale_after_s (6)" in found
    assert any(
        p.startswith(
            "cluster.daemon.watchdog_s: 1.5 must be more than twice cluster.daemon.cycle_s (3)"
        )
        for p in found
    )
    assert any(
        p.startswith(
            "groups.web.steering.lease_s: 6 must be more than twice cluster.daemon.cycle_s (3)"
        )
        for p in found
    )


def test_cross_field_rules_are_structured_problems() -> None:
    data = example_data()
    data["cluster"]["daemon"] = {"watchdog_s": 1.5, "cycle_s": 3, "heartbeat_s": 1}
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data), base=EXAMPLE.parent)
    found = {p.path: p for p in caught.value.problems}
    assert found["cluster.daemon.watchdog_s"].value == 1.5
    assert found["cluster.daemon.watchdog_s"].message.startswith("1.5 must be more than twice")
