"""Ports for servers started later: never one an outgoing connection can take, never one twice."""

from __future__ import annotations

from pathlib import Path

from failover.testing.servers.process import free_port


def test_ports_are_below_the_ephemeral_range_and_never_handed_out_twice() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(10000 <= port < low for port in ports)
