"""The Steerer contract, run against both implementations in the lab."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from failover.config import BgpSteering, DnsSteering
from failover.core.model import GroupState
from failover.lab import Lab
from failover.steer import BirdSteerer, Rfc2136Steerer, Steerer
from failover.testing.lab import reset_dns

pytestmark = pytest.mark.lab


@dataclass
class Subject:
    steerer: Steerer
    first: GroupState  # -> (site, announcement) expected in effect: `first_effect`
    first_effect: tuple[str, str]
    second: GroupState
    second_effect: tuple[str, str]
    break_peer: Callable[[], None]  # makes the steerer's peer unreachable
    bad_outcome: str


@pytest.fixture(params=["bird", "rfc2136"])
def subject(request: pytest.FixtureRequest, lab: Lab) -> Subject:
    if request.param == "bird":
        steering = lab.config.groups["web"].steering
        assert isinstance(steering, BgpSteering)
        return Subject(
            BirdSteerer("web", "dc1", steering, upstream_socket=lab.bird_socket("isp")),
            GroupState("web", active="dc1", epoch=1),
            ("dc1", "primary"),
            GroupState("web", active="dc2", epoch=2),
            ("dc1", "backup"),
            lambda: lab.stop("dc1-bird"),
            "unverified",
        )
    dns_steering = lab.config.groups["mail"].steering
    assert isinstance(dns_steering, DnsSteering)
    reset_dns(lab)
    return Subject(
        Rfc2136Steerer("mail", dns_steering, netns="fo-client"),
        GroupState("mail", active="dc2", epoch=1),
        ("dc2", "primary"),
        GroupState("mail", active="dc1", epoch=2),
        ("dc1", "primary"),
        lambda: lab.stop("dns-primary"),
        "failed",
    )


def effect(subject: Subject, state: GroupState) -> tuple[str, str, str, bool]:
    result = subject.steerer.apply(state)
    return result.site, result.announcement, result.outcome, result.changed


def test_apply_is_idempotent_and_read_agrees(subject: Subject) -> None:
    site, announcement = subject.first_effect
    assert effect(subject, subject.first) == (site, announcement, "verified", True)
    assert effect(subject, subject.first) == (site, announcement, "verified", False)
    now = subject.steerer.read()
    assert (now.site, now.announcement, now.verified) == (site, announcement, True)


def test_a_change_is_verified_and_maps_onto_applied(subject: Subject) -> None:
    subject.steerer.apply(subject.first)
    result = subject.steerer.apply(subject.second)
    assert (result.site, result.announcement, result.outcome, result.epoch) == (
        *subject.second_effect,
        "verified",
        subject.second.epoch,
    )
    applied = result.applied(at=3.0)
    assert (applied.group, applied.site, applied.announcement, applied.epoch, applied.verified) == (
        subject.second.group,
        *subject.second_effect,
        subject.second.epoch,
        True,
    )


def test_an_unreachable_peer_is_reported_within_the_deadline(subject: Subject) -> None:
    subject.break_peer()
    started = time.monotonic()
    result = subject.steerer.apply(subject.first, deadline_s=0.5)
    elapsed_s = time.monotonic() - started
    assert result.outcome == subject.bad_outcome and result.detail
    assert elapsed_s < 3.0  # bounded by the deadline, not by the peer (generous slack)
