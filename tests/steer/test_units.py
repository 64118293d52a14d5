"""The steering pieces that need no lab: the fail-open guard, results, parsing, rendering."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from failover.config import BgpSteering, DnsSteering
from failover.core.model import GroupState
from failover.steer import (
    BirdSteerer,
    Rfc2136Steerer,
    SteerError,
    SteerResult,
    Transcript,
    bgp_plan,
    fail_open_problem,
)
from failover.steer.birdctl import parse_routes
from failover.steer.transcript import dns_message_lines

BGP = BgpSteering.model_validate(
    {
        "method": "bgp",
        "prefix": "203.0.113.0/24",
        "sites": {"dc1": {"netns": "fo-dc1"}, "dc2": {"netns": "fo-dc2"}},
    }
)


def dns_steering(secret_file: str) -> DnsSteering:
    return DnsSteering.model_validate(
        {
            "method": "dns",
            "zone": "example.test",
            "servers": ["10.53.0.1:53"],
            "tsig": {"name": "failover", "secret_file": secret_file},
            "names": {"mail": {"dc1": ["10.1.0.13"], "dc2": ["10.2.0.13", "2001:db8::13"]}},
        }
    )


def test_the_guard_refuses_only_a_plan_where_nobody_announces() -> None:
    assert fail_open_problem("web", {"dc1": "primary", "dc2": "withdrawn"}) is None
    assert fail_open_problem("web", {"dc1": "backup", "dc2": "withdrawn"}) is None
    problem = fail_open_problem("web", {"dc1": "withdrawn", "dc2": "withdrawn"})
    assert problem is not None and "dc1, dc2" in problem and "web" in problem
    assert fail_open_problem("web", {}) is not None


def test_a_plan_from_desired_state() -> None:
    steady = GroupState("web", active="dc2", epoch=3)
    assert bgp_plan(steady, ["dc1", "dc2"], backup=True) == {"dc1": "backup", "dc2": "primary"}
    assert bgp_plan(steady, ["dc1", "dc2"], backup=False) == {"dc1": "withdrawn", "dc2": "primary"}


def test_a_result_maps_onto_applied() -> None:
    result = SteerResult("web", "dc1", 4, "backup", "unverified", "upstream: no route", True)
    applied = result.applied(at=9.0)
    assert (
        applied.group,
        applied.site,
        applied.epoch,
        applied.announcement,
        applied.at,
        applied.verified,
        applied.detail,
    ) == ("web", "dc1", 4, "backup", 9.0, False, "upstream: no route")
    assert SteerResult("web", "dc1", 4, "primary", "verified").applied(1.0).detail == "verified"


def test_steerers_refuse_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(SteerError, match="site 'dc3'"):
        BirdSteerer("web", "dc3", BGP)
    with pytest.raises(SteerError, match="cannot read the TSIG secret"):
        Rfc2136Steerer("mail", dns_steering(str(tmp_path / "missing.key")))
    bad = tmp_path / "bad.key"
    bad.write_text("not base64 !")
    with pytest.raises(SteerError, match="not base64"):
        Rfc2136Steerer("mail", dns_steering(str(bad)))


ISP_REPLY = [
    (1007, "Table master4:"),
    (1007, "203.0.113.0/24       unicast [dc2 04:10:09.602] * (100) [AS64502i]"),
    (1007, "\tvia 192.0.2.6 on dc2"),
    (1008, "\tType: BGP univ"),
    (1012, "\tBGP.as_path: 64502"),
    (1012, "\tBGP.next_hop: 192.0.2.6"),
    (1007, "                     unicast [dc1 04:10:09.393] (100) [AS64501i]"),
    (1007, "\tvia 192.0.2.2 on dc1"),
    (1012, "\tBGP.as_path: 64501 64501 64501 64501"),
    (1012, "\tBGP.next_hop: 192.0.2.2"),
    (1007, "203.0.113.128/25     blackhole [steer100 04:10:05.085] * (10)"),
    (1012, "\tKernel.metric: 20"),
    (0, ""),
]


def test_parse_routes_of_a_bird_reply() -> None:
    routes = parse_routes(ISP_REPLY, "203.0.113.0/24")
    assert [(r.protocol, r.best, r.as_path, r.next_hop) for r in routes] == [
        ("dc2", True, (64502,), "192.0.2.6"),
        ("dc1", False, (64501, 64501, 64501, 64501), "192.0.2.2"),
    ]
    [kernel] = parse_routes(ISP_REPLY, "203.0.113.128/25")
    assert (kernel.protocol, kernel.metric) == ("steer100", 20)
    assert routes[0].describe() == "203.0.113.0/24 from dc2 path [64502] best"


def test_a_dns_message_renders_without_what_changes_between_runs() -> None:
    keyring = dns.tsigkeyring.from_text({"failover": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="})
    update = dns.update.UpdateMessage(
        "example.test.",
        keyring=keyring,
        keyname=dns.name.from_text("failover"),
        keyalgorithm=dns.tsig.HMAC_SHA256,
    )
    update.absent("_epoch.mail._failover", "TXT")
    update.replace("mail", 30, "A", "10.2.0.13")
    lines = dns_message_lines(update)
    assert lines == [
        "opcode UPDATE",
        "rcode NOERROR",
        "flags",
        ";ZONE",
        "example.test. IN SOA",
        ";PREREQ",
        "_epoch.mail._failover NONE TXT",
        ";UPDATE",
        "mail ANY A",
        "mail 30 IN A 10.2.0.13",
        ";TSIG failover. hmac-sha256.",
    ]


def test_a_transcript_hands_out_its_lines_once() -> None:
    transcript = Transcript()
    transcript.record("a", "b")
    assert transcript.text() == "a\nb\n"
    assert transcript.take() == ["a", "b"]
    assert transcript.lines == []
