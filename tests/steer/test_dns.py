"""Rfc2136Steerer against real BIND in the lab: TSIG, the epoch prerequisite, every server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest

from failover.config import DnsSteering
from failover.core.model import GroupState
from failover.lab import NAME_SERVERS, Lab
from failover.steer import Rfc2136Steerer, Transcript
from failover.steer.netns import netns_socket
from failover.testing.lab import reset_dns
from tests.steer.expect import assert_transcript

pytestmark = pytest.mark.lab

WRONG_SECRET = "d3JvbmctbGFiLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"


@pytest.fixture
def zone(lab: Lab) -> Iterator[Lab]:
    """Both name servers restarted from fresh files: the zone as the lab first serves it."""
    reset_dns(lab)
    yield lab


def steerer(lab: Lab, transcript: Transcript | None = None, **options: object) -> Rfc2136Steerer:
    steering = lab.config.groups["mail"].steering
    assert isinstance(steering, DnsSteering)
    return Rfc2136Steerer("mail", steering, netns="fo-client", transcript=transcript, **options)  # type: ignore[arg-type]


def answers(role: str, name: str = "mail.example.test.", kind: str = "A") -> list[str]:
    """What one name server answers, asked from the client's namespace."""
    query = dns.message.make_query(name, kind)
    with netns_socket("fo-client", socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        reply = dns.query.udp(query, NAME_SERVERS[role], timeout=1.0, sock=sock)
    return sorted(item.to_text() for rrset in reply.answer for item in rrset)


def everywhere(name: str = "mail.example.test.", kind: str = "A") -> dict[str, list[str]]:
    return {role: answers(role, name, kind) for role in NAME_SERVERS}


EPOCH = "_epoch.mail._failover.example.test."


def test_update_is_applied_and_visible_on_primary_and_secondary(zone: Lab) -> None:
    transcript = Transcript()
    steer = steerer(zone, transcript)
    assert everywhere() == {"primary": ["10.1.0.13"], "secondary": ["10.1.0.13"]}
    result = steer.apply(GroupState("mail", active="dc2", epoch=1))
    assert (result.site, result.epoch, result.outcome, result.changed) == (
        "dc2",
        1,
        "verified",
        True,
    )
    assert everywhere() == {"primary": ["10.2.0.13"], "secondary": ["10.2.0.13"]}
    assert everywhere(EPOCH, "TXT") == {"primary": ['"1"'], "secondary": ['"1"']}

    back = steer.apply(GroupState("mail", active="dc1", epoch=2))
    assert (back.site, back.outcome) == ("dc1", "verified")
    assert everywhere() == {"primary": ["10.1.0.13"], "secondary": ["10.1.0.13"]}
    assert_transcript(transcript.take(), "dns_two_updates.txt")

    again = steer.apply(GroupState("mail", active="dc1", epoch=2))
    assert (again.outcome, again.changed) == ("verified", False)
    assert transcript.take() == []
    now = steer.read()
    assert (now.site, now.epoch, now.announcement, now.verified) == ("dc1", 2, "primary", True)


def test_a_wrong_tsig_key_is_refused_and_reported(zone: Lab) -> None:
    result = steerer(zone, secret=WRONG_SECRET).apply(GroupState("mail", active="dc2", epoch=1))
    assert result.outcome == "refused"
    assert "TSIG" in result.detail and "10.53.0.1:53" in result.detail
    assert (result.site, result.epoch) == ("dc1", 0)  # what is still in effect
    assert everywhere() == {"primary": ["10.1.0.13"], "secondary": ["10.1.0.13"]}


def test_an_unsigned_update_is_refused(zone: Lab) -> None:
    update = dns.update.UpdateMessage("example.test.")
    update.replace("mail", 30, "A", "10.2.0.13")
    with netns_socket("fo-client", socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        sock.connect((NAME_SERVERS["primary"], 53))
        sock.setblocking(False)
        reply = dns.query.tcp(update, NAME_SERVERS["primary"], timeout=2.0, sock=sock)
    assert reply.rcode() == dns.rcode.REFUSED
    assert everywhere() == {"primary": ["10.1.0.13"], "secondary": ["10.1.0.13"]}


def test_a_stale_epoch_is_refused_by_the_prerequisite(zone: Lab) -> None:
    leader = steerer(zone)
    assert leader.apply(GroupState("mail", active="dc2", epoch=5)).verified
    transcript = Transcript()
    stale = steerer(zone, transcript)
    # the deposed leader still believes the zone holds epoch 3: the server refuses
    refused = stale.apply(GroupState("mail", active="dc1", epoch=4), previous_epoch=3)
    assert refused.outcome == "refused"
    assert "prerequisite failed (NXRRSET)" in refused.detail
    assert_transcript(transcript.take(), "dns_stale_update.txt")
    assert everywhere() == {"primary": ["10.2.0.13"], "secondary": ["10.2.0.13"]}
    # reading first, it sees the newer epoch and sends nothing
    local = stale.apply(GroupState("mail", active="dc1", epoch=4))
    assert (local.outcome, local.site, local.epoch) == ("refused", "dc2", 5)
    assert "stale epoch 4" in local.detail
    assert transcript.take() == []


def test_a_name_server_down_is_reported_then_retried_within_the_deadline(zone: Lab) -> None:
    steer = steerer(zone)
    zone.stop("dns-secondary")
    result = steer.apply(GroupState("mail", active="dc2", epoch=1), deadline_s=1.0)
    assert (result.outcome, result.site, result.changed) == ("unverified", "dc2", True)
    assert "10.53.0.2:53" in result.detail and "10.53.0.1:53" not in result.detail
    assert answers("primary") == ["10.2.0.13"]

    restart = threading.Timer(1.0, zone.start, ("dns-secondary",))
    restart.start()
    try:
        later = steer.apply(GroupState("mail", active="dc1", epoch=2), deadline_s=10.0)
    finally:
        restart.join()
    assert (later.outcome, later.site) == ("verified", "dc1")
    assert everywhere() == {"primary": ["10.1.0.13"], "secondary": ["10.1.0.13"]}


def test_the_primary_down_fails_within_the_deadline(zone: Lab) -> None:
    steer = steerer(zone)
    zone.stop("dns-primary")
    try:
        result = steer.apply(GroupState("mail", active="dc2", epoch=1), deadline_s=1.0)
    finally:
        zone.start("dns-primary")
    assert result.outcome == "failed"
    assert "not delivered" in result.detail and "10.53.0.1:53" in result.detail
