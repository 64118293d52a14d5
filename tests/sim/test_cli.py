from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from failover.cli import cli
from tests.sim.conftest import CHAOS, ROOT

REFERENCE = (ROOT / "simulations" / "reference.yaml").as_posix()


def _playbook(tmp_path: Path, body: str) -> str:
    path = tmp_path / "game.yaml"
    path.write_text(f"topology: {REFERENCE}\n" + body, encoding="utf-8")
    return str(path)


def test_gameday_json_has_the_documented_fields() -> None:
    result = CliRunner().invoke(
        cli, ["gameday", str(ROOT / "playbooks" / "db-down.yaml"), "--json", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] is True
    assert data["switches"] == 1
    assert 0 < data["rto_s"] < 12
    assert data["violations"] == []
    for item in data["expectations"]:
        assert set(item) == {"name", "passed", "observed"}


def test_gameday_prints_a_timeline_and_verdicts() -> None:
    result = CliRunner().invoke(cli, ["gameday", str(ROOT / "playbooks" / "inter-site-cut.yaml")])
    assert result.exit_code == 0, result.output
    assert "link dc1<->dc2 cut" in result.output or "cut dc1-dc2" in result.output
    assert "[ok] switches == 0: 0" in result.output
    assert result.output.rstrip().endswith("PASSED")


def test_gameday_exits_1_when_an_expectation_fails(tmp_path: Path) -> None:
    path = _playbook(
        tmp_path,
        """title: impossible
duration_s: 60
method:
  - {at_s: 5, fault: {kind: service_down, site: dc1, service: db}, duration_s: 30}
expectations:
  - active == dc2 within 1 s
  - switches == 1
""",
    )
    result = CliRunner().invoke(cli, ["gameday", path, "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["passed"] is False
    assert [e["passed"] for e in data["expectations"]] == [False, True]


def test_gameday_exits_2_with_every_error_by_its_path(tmp_path: Path) -> None:
    path = _playbook(
        tmp_path,
        """title: broken
duration_s: 60
method:
  - {at_s: 5, fault: {kind: service_down, site: dc9, service: dbx}}
  - {fault: {kind: daemon_crash, instance: leader}}
  - {at_s: 5, fault: {kind: melt, site: dc1}}
expectations:
  - active === dc2
  - {expect: switches <= 1, from: nowhere}
  - frobs > 3
abort: [violations > x]
""",
    )
    result = CliRunner().invoke(cli, ["gameday", path])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    for where in (
        "method.0.fault.site",
        "method.0.fault.service",
        "method.1: ",
        "method.2.fault",
        "expectations.0",
        "expectations.1.from",
        "expectations.2",
        "abort.0",
    ):
        assert where in result.output, (where, result.output)


def test_gameday_bad_topology_and_missing_file(tmp_path: Path) -> None:
    topo = tmp_path / "topo.yaml"
    topo.write_text("name: t\nconfig: {}\nworld: {zookeeper: {servers: {dc7: 1}}}\n")
    book = tmp_path / "b.yaml"
    book.write_text(
        f"title: t\ntopology: {topo}\nduration_s: 5\n"
        "method: [{at_s: 1, fault: {kind: freeze}}]\nexpectations: [no_violations]\n"
    )
    result = CliRunner().invoke(cli, ["gameday", str(book)])
    assert result.exit_code == 2
    assert "topology" in result.output and "config.cluster" in result.output
    missing = CliRunner().invoke(cli, ["gameday", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_gameday_report_writes_html_and_png(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["gameday", str(ROOT / "playbooks" / "site-power-loss.yaml"), "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert 'src="timeline.png"' in page and "Expectations" in page
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chaos_json_summary() -> None:
    result = CliRunner().invoke(
        cli, ["chaos", str(CHAOS), "--runs", "20", "--seed", "5", "--jobs", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == 20 and data["violations"] == 0
    assert set(data["rto_s"]) >= {"p50", "p95", "p99"}
    assert set(data["coverage"]) == set(json.loads(json.dumps(data["coverage"])))
    assert "false_failovers" in data


def test_chaos_readable_output_and_bad_campaign(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["chaos", str(CHAOS), "--runs", "3", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "invariant violations: 0" in result.output and "coverage" in result.output
    bad = tmp_path / "c.yaml"
    bad.write_text(
        f"title: c\ntopology: {REFERENCE}\nfaults_per_hour: -1\nclasses:\n"
        "  x: {weight: 1, fault: {kind: service_down, site: [dc1, dc8], service: db}}\n"
    )
    result = CliRunner().invoke(cli, ["chaos", str(bad)])
    assert result.exit_code == 2
    assert "faults_per_hour" in result.output
    bad.write_text(
        f"title: c\ntopology: {REFERENCE}\nfaults_per_hour: 1\nclasses:\n"
        "  x: {weight: 1, fault: {kind: service_down, site: [dc1, dc8], service: db}}\n"
    )
    result = CliRunner().invoke(cli, ["chaos", str(bad)])
    assert result.exit_code == 2
    assert "classes.x.fault.site" in result.output and "Traceback" not in result.output
