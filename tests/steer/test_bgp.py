"""BirdSteerer against real BIRD in the lab: the isp's best route follows the desired state."""

from __future__ import annotations

import pytest

from failover.config import BgpSteering
from failover.core.model import GroupState
from failover.lab import SERVICE_ADDRESS, Lab
from failover.steer import BirdSteerer, Transcript
from failover.testing.lab import fetch, serve_text
from failover.testing.servers.process import wait_until
from tests.steer.expect import assert_transcript

pytestmark = pytest.mark.lab

PREFIX = "203.0.113.0/24"
DC1_AS, DC2_AS = 64501, 64502


def steerers(
    lab: Lab, steering: BgpSteering | None = None, transcript: Transcript | None = None
) -> dict[str, BirdSteerer]:
    group = lab.config.groups["web"].steering
    assert isinstance(group, BgpSteering)
    return {
        site: BirdSteerer(
            "web",
            site,
            steering or group,
            upstream_socket=lab.bird_socket("isp"),
            deadline_s=5.0,
            transcript=transcript,
        )
        for site in ("dc1", "dc2")
    }


def apply_all(
    sites: dict[str, BirdSteerer], state: GroupState, order: tuple[str, ...], force: bool = False
) -> dict[str, str]:
    """Apply in `order` (the demoted site first, as the agents do); each site's outcome."""
    return {site: sites[site].apply(state, force=force).outcome for site in order}


def paths(lab: Lab) -> dict[str, tuple[tuple[int, ...], bool]]:
    return {route.protocol: (route.as_path, route.best) for route in lab.routes(PREFIX)}


def test_primary_and_backup_then_switch(lab: Lab) -> None:
    transcript = Transcript()
    sites = steerers(lab, transcript=transcript)
    state = GroupState("web", active="dc1", epoch=1)
    assert apply_all(sites, state, ("dc2", "dc1")) == {"dc2": "verified", "dc1": "verified"}
    assert paths(lab) == {"dc1": ((DC1_AS,), True), "dc2": ((DC2_AS,) * 4, False)}
    best = lab.best_route(PREFIX)
    assert best is not None and best.next_hop == "192.0.2.2"

    switched = GroupState("web", active="dc2", epoch=2)
    results = [sites["dc1"].apply(switched), sites["dc2"].apply(switched)]
    assert [(r.site, r.announcement, r.outcome, r.epoch) for r in results] == [
        ("dc1", "backup", "verified", 2),
        ("dc2", "primary", "verified", 2),
    ]
    assert paths(lab) == {"dc2": ((DC2_AS,), True), "dc1": ((DC1_AS,) * 4, False)}
    assert_transcript(transcript.take(), "bgp_primary_backup_switch.txt")

    again = [sites["dc1"].apply(switched), sites["dc2"].apply(switched)]
    assert [r.changed for r in again] == [False, False]
    assert transcript.take() == []
    assert sites["dc2"].read().announcement == "primary"
    assert sites["dc2"].read().verified
    applied = results[1].applied(at=12.5)
    assert (applied.site, applied.announcement, applied.epoch, applied.verified) == (
        "dc2",
        "primary",
        2,
        True,
    )


def test_withdraw_of_every_site_is_refused_unless_forced(lab: Lab) -> None:
    sites = steerers(lab)
    apply_all(sites, GroupState("web", active="dc1", epoch=1), ("dc2", "dc1"))
    nobody = {"dc1": "withdrawn", "dc2": "withdrawn"}
    results = {
        site: sites[site].announce("withdrawn", 2, plan=nobody)  # type: ignore[arg-type]
        for site in ("dc2", "dc1")
    }
    assert {site: (r.outcome, r.announcement) for site, r in results.items()} == {
        "dc1": ("refused", "primary"),
        "dc2": ("refused", "backup"),
    }
    assert "fail-open guard" in results["dc1"].detail
    assert sites["dc1"].announce("withdrawn", 2).outcome == "refused"  # no plan: the last one
    assert paths(lab) == {"dc1": ((DC1_AS,), True), "dc2": ((DC2_AS,) * 4, False)}

    forced = {
        site: sites[site].announce(
            "withdrawn",
            2,
            plan=nobody,  # type: ignore[arg-type]
            force=True,
        )
        for site in ("dc2", "dc1")
    }
    assert {site: (r.outcome, r.announcement) for site, r in forced.items()} == {
        "dc1": ("verified", "withdrawn"),
        "dc2": ("verified", "withdrawn"),
    }
    assert lab.routes(PREFIX) == []


def test_a_plan_from_desired_state_always_keeps_an_announcement(lab: Lab) -> None:
    group = lab.config.groups["web"].steering
    assert isinstance(group, BgpSteering)
    sites = steerers(lab, group.model_copy(update={"backup": False}))
    steady = GroupState("web", active="dc1", epoch=1)
    assert apply_all(sites, steady, ("dc2", "dc1")) == {"dc2": "verified", "dc1": "verified"}
    assert paths(lab) == {"dc1": ((DC1_AS,), True)}  # without backup, dc2 withdraws
    switching = GroupState("web", active="dc2", epoch=2, phase="switching", switch_from="dc1")
    results = [sites[site].apply(switching) for site in ("dc1", "dc2")]
    assert [(r.announcement, r.outcome) for r in results] == [
        ("backup", "verified"),
        ("backup", "verified"),
    ]
    assert paths(lab) == {"dc1": ((DC1_AS,) * 4, True), "dc2": ((DC2_AS,) * 4, False)}


def test_deprefer_before_withdraw(lab: Lab) -> None:
    transcript = Transcript()
    sites = steerers(lab, transcript=transcript)
    apply_all(sites, GroupState("web", active="dc1", epoch=1), ("dc2", "dc1"))
    transcript.take()
    result = sites["dc1"].announce("withdrawn", 2, plan={"dc1": "withdrawn", "dc2": "primary"})
    assert (result.outcome, result.announcement, result.changed) == ("verified", "withdrawn", True)
    assert_transcript(transcript.take(), "bgp_deprefer_before_withdraw.txt")
    assert paths(lab) == {"dc2": ((DC2_AS,) * 4, True)}


def test_traffic_follows_the_route_when_the_primary_route_goes(lab: Lab) -> None:
    servers = [serve_text(lab, site, SERVICE_ADDRESS, 8080, site) for site in ("dc1", "dc2")]
    try:
        sites = steerers(lab)
        apply_all(sites, GroupState("web", active="dc1", epoch=1), ("dc2", "dc1"))
        assert fetch("client", SERVICE_ADDRESS, 8080) == "dc1"
        # the primary's route disappears (its agent is gone), the backup remains
        lab.exec("dc1", ["ip", "route", "flush", "table", "100"], check=True)
        wait_until(
            lambda: fetch("client", SERVICE_ADDRESS, 8080) == "dc2", 5.0, "the client reaching dc2"
        )
        assert paths(lab) == {"dc2": ((DC2_AS,) * 4, True)}
        assert sites["dc1"].read().announcement == "withdrawn"
    finally:
        for server in servers:
            server.stop()


def test_unreachable_bird_is_reported_unverified(lab: Lab) -> None:
    sites = steerers(lab)
    lab.stop("dc1-bird")
    result = sites["dc1"].apply(GroupState("web", active="dc1", epoch=1), deadline_s=0.3)
    assert (result.outcome, result.announcement) == ("unverified", "primary")
    assert "bird.ctl" in result.detail
    lab.start("dc1-bird")
    lab.wait_ready()
    wait_until(lambda: sites["dc1"].read().verified, 10.0, "dc1 verified after BIRD restarts")
    assert paths(lab) == {"dc1": ((DC1_AS,), True)}


ANNOUNCEMENTS = ("primary", "held", "backup", "withdrawn")


def test_the_isp_picks_what_the_simulator_predicts_for_every_pair_of_announcements(
    lab: Lab,
) -> None:
    """The simulator's best path (shortest AS path, then the lowest router id) against the
    lab's real BIRD, for all sixteen pairs: held is preferred over backup, never over primary,
    and two equal announcements never split the traffic."""
    from failover.sim.traffic import best_path

    sites = steerers(lab)
    mismatches = []
    for dc1 in ANNOUNCEMENTS:
        for dc2 in ANNOUNCEMENTS:
            for site, said in (("dc1", dc1), ("dc2", dc2)):
                sites[site].announce(said, 1, force=True)  # type: ignore[arg-type]
            predicted = best_path({"dc1": dc1, "dc2": dc2}, ["dc1", "dc2"])  # type: ignore[dict-item]
            expected_hop = {"dc1": "192.0.2.2", "dc2": "192.0.2.6", None: None}[predicted]

            def settled(hop: str | None = expected_hop) -> bool:
                best = lab.best_route(PREFIX)
                return (best.next_hop if best else None) == hop

            try:
                wait_until(settled, 10.0, f"isp best route for dc1 {dc1}, dc2 {dc2}")
            except TimeoutError:
                best = lab.best_route(PREFIX)
                mismatches.append((dc1, dc2, predicted, best.next_hop if best else None))
    for site in ("dc1", "dc2"):
        sites[site].announce("backup", 1)
    assert mismatches == []
