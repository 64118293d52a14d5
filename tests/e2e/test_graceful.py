"""A graceful switchover in the lab: the DNS group's TTL at both name servers goes down one old
TTL before the switch and back one old TTL after it; the BGP group's old site passes through
held (one prepend at the isp) while the new one is primary, then becomes a plain backup."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest

from failover.lab.stack import DNS_ERRORS, Stack
from failover.lab.topology import NAME_SERVERS, UPLINKS, netns
from failover.steer.bird import as_path_announcement
from failover.steer.netns import netns_socket
from failover.testing.lab import unavailable
from tests.e2e.conftest import running

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TTL_S, SHORT_S, DRAIN_S = 4, 1, 2
OVERRIDES: dict[str, Any] = {
    "policy": {
        "cooldown_s": 0,
        "max_switches_per_hour": 100,
        "graceful_ttl_s": SHORT_S,
        "drain_s": DRAIN_S,
    },
    "groups": {"mail": {"steering": {"ttl": TTL_S}}},
}
ASN_SITE = {u.asn: site for site, u in UPLINKS.items() if u.asn is not None}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    yield from running(Stack(OVERRIDES))


def answers(stack: Stack) -> tuple[tuple[str, ...], int | None]:
    """(addresses, TTL) as both name servers answer the DNS group's name (None: they differ)."""
    seen = set()
    for address in NAME_SERVERS.values():
        query = dns.message.make_query(f"mail.{stack.config.groups['mail'].steering.zone}", "A")  # type: ignore[union-attr]
        with netns_socket(netns("dns"), socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = dns.query.udp(query, address, timeout=0.5, sock=sock)
        rrsets = [r for r in reply.answer if r.rdtype == dns.rdatatype.A]
        seen.add(
            (
                tuple(sorted(item.address for r in rrsets for item in r)),
                min((r.ttl for r in rrsets), default=None),
            )
        )
    return seen.pop() if len(seen) == 1 else ((), None)


def isp_view(stack: Stack) -> dict[str, str]:
    """What the isp holds per site for the prefix: primary, held or backup."""
    return {
        ASN_SITE.get(route.as_path[0], "?"): as_path_announcement(route.as_path[1:])
        for route in stack.lab.routes(stack.prefix)
        if route.as_path
    }


def compact(items: list[Any]) -> list[Any]:
    return [item for i, item in enumerate(items) if i == 0 or item != items[i - 1]]


def test_graceful_switchover_lowers_the_ttl_and_holds_the_old_site(stack: Stack) -> None:
    stack.wait_steady("dc1", 60.0)
    dns_seen: list[tuple[tuple[str, ...], int | None]] = []
    bgp_seen: list[dict[str, str]] = []
    bgp_at: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(*DNS_ERRORS):
                dns_seen.append(answers(stack))
            bgp_seen.append(isp_view(stack))
            bgp_at.append(time.monotonic())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        done = stack.cli(
            "switchover", "--to", "dc2", "--graceful", "--at", f"+{TTL_S + 2}s", "--wait"
        )
    finally:
        stop.set()
        sampler.join(5)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr + stack.describe()
    assert took >= TTL_S + 2 + TTL_S - 1  # the switch at its time, the TTL back one TTL later

    dc1, dc2 = ("10.1.0.13",), ("10.2.0.13",)
    assert compact([s for s in dns_seen if s[1] is not None]) == [
        (dc1, TTL_S),
        (dc1, SHORT_S),
        (dc2, SHORT_S),
        (dc2, TTL_S),
    ], compact(dns_seen)

    views = compact(bgp_seen)
    assert views[0] == {"dc1": "primary", "dc2": "backup"}, views
    assert views[-1] == {"dc1": "backup", "dc2": "primary"}, views
    assert {"dc1": "held", "dc2": "primary"} in views, views  # the drain
    never = [v for v in views if list(v.values()).count("primary") > 1]
    assert never == [], views
    drain = {"dc1": "held", "dc2": "primary"}
    draining = [t for t, v in zip(bgp_at, bgp_seen, strict=True) if v == drain]
    assert draining[-1] - draining[0] >= DRAIN_S * 0.75, views

    codes = [e.payload.get("decision", {}).get("code") for e in stack.operator(lambda c: c.audit())]
    for code in ("graceful_preparing", "graceful_draining", "graceful_restoring", "graceful_done"):
        assert code in codes
    back = stack.cli("switchover", "--to", "dc1", "--abrupt", "--wait")
    assert back.returncode == 0, back.stdout + back.stderr
