"""`down` removes what the lab made, and only that, also when the run files are gone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from failover.cli import cli
from failover.lab import NAMESPACES, Lab
from failover.lab import netns as nets
from failover.testing.lab import unavailable

pytestmark = pytest.mark.lab

DECOY = "fo-dc1x"  # shares the prefix, is not the lab's: must survive `down`


@pytest.fixture
def fresh() -> Iterator[Lab]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    lab.down()
    nets.add_namespace(DECOY)
    try:
        yield lab
    finally:
        lab.down()
        nets.delete_namespace(DECOY)


def leftovers(pids: list[int]) -> list[str]:
    found = [f"namespace {ns}" for ns in nets.namespaces() if ns in NAMESPACES]
    found += [f"pid {pid}" for pid in pids if nets.pid_alive(pid)]
    host_links = nets.run(["ip", "-o", "link", "show"]).stdout
    found += [
        f"host link {name}"
        for name in ("isp", "dc1", "dc2", "witness", "dns", "client")
        if f": {name}@" in host_links or f": {name}:" in host_links
    ]
    return found


def lab_pids() -> list[int]:
    return sorted({pid for ns in NAMESPACES for pid in nets.netns_pids(ns)})


def test_down_leaves_nothing_behind(fresh: Lab) -> None:
    fresh.up()
    pids = lab_pids()
    assert len(pids) >= 5  # three BIRDs, two named
    removed = fresh.down()
    assert f"namespace {NAMESPACES[0]}" in removed
    assert leftovers(pids) == []
    assert not fresh.run_dir.exists()
    assert DECOY in nets.namespaces()
    assert fresh.down() == []


def test_down_after_a_crash_finds_the_processes_by_namespace(fresh: Lab) -> None:
    fresh.up()
    pids = lab_pids()
    shutil.rmtree(fresh.run_dir)  # the PID files are gone, as after a crash
    again = fresh.up()  # replaces what it cannot account for, rather than doubling it
    assert again.up and len(lab_pids()) == len(pids)
    assert not any(nets.pid_alive(pid) for pid in pids)
    pids = lab_pids()
    shutil.rmtree(fresh.run_dir)
    removed = fresh.down()
    assert any(line.startswith("processes ") for line in removed)
    assert leftovers(pids) == []


def test_the_command_line(fresh: Lab) -> None:
    runner = CliRunner()
    up = runner.invoke(cli, ["lab", "up"])
    assert up.exit_code == 0, up.output
    assert "lab: up" in up.output and "bgp isp-dc2: Established" in up.output
    status = runner.invoke(cli, ["lab", "status"])
    assert status.exit_code == 0 and "dns-secondary: running" in status.output
    down = runner.invoke(cli, ["lab", "down"])
    assert down.exit_code == 0 and "removed namespace fo-dns" in down.output
    after = runner.invoke(cli, ["lab", "status"])
    assert after.output.splitlines()[0] == "lab: down"
    bad = runner.invoke(cli, ["lab", "up", "--config", "/nonexistent/cluster.yaml"])
    assert bad.exit_code == 2 and "cannot read the file" in bad.output
