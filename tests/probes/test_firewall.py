"""The `firewall` case: a TCP service behind nftables inside a network namespace.

A drop rule makes the check fail by its timeout; a reject rule makes it fail at once. ICMP
echo is checked the same way, with raw sockets (root) and with unprivileged datagram sockets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from failover.config.model import HttpCheck, IcmpCheck, TcpCheck
from tests.probes.conftest import Firewalled, probe

pytestmark = pytest.mark.lab


@pytest.fixture
def fw(firewalled: Firewalled) -> Iterator[Firewalled]:
    firewalled.rule(None)
    yield firewalled
    firewalled.rule(None)


def tcp(**fields: object) -> TcpCheck:
    return TcpCheck.model_validate({"type": "tcp", "timeout_s": 0.5, **fields})


def test_open_path_passes(fw: Firewalled) -> None:
    result = probe(tcp(), fw.endpoint)
    assert result.ok
    check = HttpCheck.model_validate({"type": "http", "path": "/health", "timeout_s": 0.5})
    assert probe(check, fw.endpoint).ok


def test_drop_rule_fails_by_timeout(fw: Firewalled) -> None:
    fw.rule("drop")
    result = probe(tcp(), fw.endpoint)
    assert not result.ok
    assert result.reason == f"no answer from {fw.endpoint} within 0.5 s"
    assert result.latency_s >= 0.49


def test_reject_rule_fails_at_once(fw: Firewalled) -> None:
    fw.rule("reject")
    result = probe(tcp(), fw.endpoint)
    assert not result.ok
    assert result.reason == f"connection refused by {fw.endpoint}"
    assert result.latency_s < 0.25
    fw.rule("reject with tcp reset")
    result = probe(tcp(), fw.endpoint)
    assert result.reason == f"connection refused by {fw.endpoint}"


def icmp(**fields: object) -> IcmpCheck:
    return IcmpCheck.model_validate({"type": "icmp", "timeout_s": 0.5, **fields})


def test_icmp_echo_and_a_dropped_echo(fw: Firewalled) -> None:
    result = probe(icmp(), fw.address)
    assert result.ok
    assert result.reason.startswith(f"echo reply from {fw.address} in ")
    fw.rule("drop", "icmp type echo-request")
    result = probe(icmp(), fw.address)
    assert not result.ok
    assert fw.address in result.reason


UNPRIVILEGED = """
import asyncio, json, sys
from failover.config.model import IcmpCheck
from failover.probes import ProbeContext, run_check
from failover.probes.icmp import IcmpProbe
check = IcmpCheck(type="icmp", timeout_s=0.5)
result = asyncio.run(run_check(IcmpProbe(check, ProbeContext(), privileged=False), check,
                               sys.argv[1]))
print(json.dumps([result.ok, result.reason]))
"""


def unprivileged_ping(netns: str, address: str) -> tuple[bool, str]:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", UNPRIVILEGED, address],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    ok, reason = json.loads(done.stdout.strip().splitlines()[-1])
    return bool(ok), str(reason)


def test_icmp_with_unprivileged_datagram_sockets(fw: Firewalled) -> None:
    """Inside the namespace, ICMP datagram sockets follow its own net.ipv4.ping_group_range."""
    sysctl = ["ip", "netns", "exec", fw.netns, "sysctl", "-q", "-w"]
    subprocess.run([*sysctl, "net.ipv4.ping_group_range=1 0"], check=True, timeout=10)
    ok, reason = unprivileged_ping(fw.netns, "127.0.0.1")
    assert not ok
    assert reason.startswith("no permission for ICMP sockets")
    subprocess.run([*sysctl, "net.ipv4.ping_group_range=0 2147483647"], check=True, timeout=10)
    ok, reason = unprivileged_ping(fw.netns, "127.0.0.1")
    assert ok, reason
    assert reason.startswith("echo reply from 127.0.0.1")
