"""`failover probe FILE` against local servers: table, JSON, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.testing.servers.http import HttpServer
from failover.testing.servers.postgres import PostgresServer
from failover.testing.servers.smtp import SmtpServer

Servers = tuple[HttpServer, SmtpServer, PostgresServer, PostgresServer]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"


def config(
    http: HttpServer,
    smtp: SmtpServer,
    primary: PostgresServer,
    standby: PostgresServer,
    standby_role: str = "standby",
) -> dict[str, object]:
    fast = {"interval_s": 2, "timeout_s": 1.5}
    return {
        "cluster": {
            "name": "shop",
            "zookeeper": {"hosts": ["127.0.0.1:2181"], "insecure_open_acl": True},
        },
        "sites": {
            "dc1": {
                "services": {
                    "app": {
                        "kind": "app",
                        "endpoints": [http.endpoint],
                        "check": {"type": "http", "path": "/health", **fast},
                    },
                    "db": {
                        "kind": "db",
                        "endpoints": [primary.endpoint],
                        "check": {"type": "postgres", "expect_role": "primary", **fast},
                    },
                    "mail": {
                        "kind": "mail",
                        "endpoints": [smtp.endpoint],
                        "check": {"type": "smtp", **fast},
                    },
                }
            },
            "dc2": {
                "services": {
                    "app": {
                        "kind": "app",
                        "endpoints": [http.endpoint],
                        "check": {"type": "tcp", **fast},
                    },
                    "db": {
                        "kind": "db",
                        "endpoints": [standby.endpoint],
                        "check": {"type": "postgres", "expect_role": standby_role, **fast},
                    },
                    "mail": {"kind": "mail", "check": {"type": "command", "command": ["true"]}},
                }
            },
            "witness": {"role": "witness"},
        },
        "instances": {"dc1-a": {"site": "dc1"}},
        "groups": {
            "web": {
                "services": ["app", "db"],
                "steering": {
                    "method": "bgp",
                    "prefix": "203.0.113.0/24",
                    "sites": {"dc1": {}, "dc2": {}},
                },
            },
            "mail": {
                "services": ["mail"],
                "steering": {
                    "method": "bgp",
                    "prefix": "198.51.100.0/24",
                    "sites": {"dc1": {}, "dc2": {}},
                },
            },
        },
    }


@pytest.fixture
def servers(
    healthy_http: HttpServer,
    smtp_server: SmtpServer,
    pg_primary: PostgresServer,
    pg_standby: PostgresServer,
) -> Servers:
    return healthy_http, smtp_server, pg_primary, pg_standby


def write(tmp_path: Path, data: dict[str, object]) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_all_pass_prints_a_table_and_exits_0(tmp_path: Path, servers: Servers) -> None:
    result = CliRunner().invoke(cli, ["probe", write(tmp_path, config(*servers))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "site",
        "service",
        "kind",
        "check",
        "target",
        "verdict",
        "latency",
        "reason",
    ]
    assert len(lines) == 1 + 6 + 1
    assert all(" pass " in line for line in lines[1:7])
    assert lines[-1] == "6 checks: 6 pass, 0 fail"


def test_a_failure_exits_1_and_json_names_it(tmp_path: Path, servers: Servers) -> None:
    path = write(tmp_path, config(*servers, standby_role="primary"))
    result = CliRunner().invoke(cli, ["probe", "--json", path])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert (report["passed"], report["failed"]) == (5, 1)
    failed = [row for row in report["results"] if not row["ok"]]
    assert failed[0]["key"] == f"dc2/db/{servers[3].endpoint}"
    assert failed[0]["verdict"] == "fail"
    assert failed[0]["reason"].startswith("pg_is_in_recovery()=true, expected primary")
    assert {"site", "service", "kind", "target", "latency_s", "reason"} <= set(failed[0])


def test_site_filter(tmp_path: Path, servers: Servers) -> None:
    path = write(tmp_path, config(*servers, standby_role="primary"))
    result = CliRunner().invoke(cli, ["probe", "--json", "--site", "dc1", path])
    assert result.exit_code == 0, result.output
    assert {row["site"] for row in json.loads(result.output)["results"]} == {"dc1"}
    result = CliRunner().invoke(cli, ["probe", "--site", "dc9", path])
    assert result.exit_code == 2
    assert "unknown site(s): dc9" in result.output


def test_config_error_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cluster: {name: shop}\nsites: {}\n")
    result = CliRunner().invoke(cli, ["probe", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(cli, ["probe", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2


@pytest.mark.lab
def test_example_without_the_lab_fails_clearly_per_check(tmp_path: Path) -> None:
    """In a namespace with only loopback, nothing of the example is reachable: every check
    fails at once with its own reason, and no packet leaves the machine."""
    netns = "fo-t-example"
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10, check=False)
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    try:
        subprocess.run(
            ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True, timeout=10
        )
        done = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-c",
                "from failover.cli import main; main()",
                "probe",
                "--json",
                str(EXAMPLE),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10, check=False)
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout)["results"]
    assert len(rows) == 12
    for row in rows:
        assert not row["ok"]
        assert row["target"] in row["reason"]
        expected = "no echo reply" if row["check"] == "icmp" else "network unreachable"
        assert expected in row["reason"]
