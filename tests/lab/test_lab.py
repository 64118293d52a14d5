"""The lab itself: built once, reachable end to end, links cut and healed, things added."""

from __future__ import annotations

import pytest

from failover.lab import Lab, LabError
from failover.testing.lab import fetch, serve_text
from failover.testing.servers.process import wait_until

pytestmark = pytest.mark.lab

LANS = {"dc1": "10.1.0.2", "dc2": "10.2.0.2", "witness": "10.3.0.2", "dns": "10.53.0.1"}


def reaches(lab: Lab, location: str, address: str) -> bool:
    done = lab.exec(location, ["ping", "-n", "-q", "-c", "1", "-W", "0.5", address], timeout_s=5)
    return done.returncode == 0


def session_drops(lab: Lab, site: str) -> None:
    """The isp drops `site`'s BGP session (hold time 3 s) and keeps the other's."""
    wait_until(
        lambda: lab.status().sessions[site] != "Established",
        6.0,
        f"the isp dropping {site}'s session (hold time 3 s)",
        retry_on=(OSError, KeyError),
    )
    other = next(s for s in ("dc1", "dc2") if s != site)
    assert lab.status().sessions[other] == "Established"


def test_up_again_changes_nothing(lab: Lab) -> None:
    before = lab.status()
    assert before.up
    status = lab.up()
    assert status.processes == before.processes
    assert status.sessions == {"dc1": "Established", "dc2": "Established"}
    lines = status.lines()
    assert lines[0] == "lab: up"
    assert "isp best route 203.0.113.0/24: none" in lines
    assert "namespace fo-witness: present" in lines


def test_every_location_reaches_every_site_lan(lab: Lab) -> None:
    unreachable = [
        (source, target)
        for source in ("dc1", "dc2", "witness", "client")
        for target, address in LANS.items()
        if target != source and not reaches(lab, source, address)
    ]
    assert unreachable == []


def test_a_cut_between_two_sites_leaves_the_others(lab: Lab) -> None:
    lab.cut("dc2", "dc1")
    assert lab.status().cuts == [("dc1", "dc2")]
    assert not reaches(lab, "dc1", "10.2.0.2")
    assert not reaches(lab, "dc2", "10.1.0.2")
    assert reaches(lab, "dc1", "10.3.0.2") and reaches(lab, "dc2", "10.3.0.2")
    lab.heal("dc1", "dc2")
    assert lab.status().cuts == []
    assert reaches(lab, "dc1", "10.2.0.2")


def test_an_isolated_site_loses_everything_and_its_bgp_session(lab: Lab) -> None:
    lab.isolate("dc2")
    assert lab.status().cuts == [("dc2", "isp")]
    assert not reaches(lab, "dc2", "10.3.0.2") and not reaches(lab, "witness", "10.2.0.2")
    session_drops(lab, "dc2")
    lab.heal_all()
    lab.wait_ready()
    assert reaches(lab, "witness", "10.2.0.2")


def test_a_router_cut_from_the_isp_loses_its_session_and_the_clients_way_in(lab: Lab) -> None:
    lab.cut("router-dc1", "isp")
    assert lab.status().cuts == [("router-dc1", "isp")]
    assert not reaches(lab, "client", "10.1.0.2")
    assert reaches(lab, "dc2", "10.1.0.2") and reaches(lab, "witness", "10.1.0.2")
    assert reaches(lab, "dc1", "10.53.0.1") and reaches(lab, "client", "10.2.0.2")
    session_drops(lab, "dc1")
    lab.heal("isp", "router-dc1")
    assert lab.status().cuts == []
    lab.wait_ready()
    assert reaches(lab, "client", "10.1.0.2")
    # only the clients' way to what the site serves: the operator keeps the rest
    lab.cut("router-dc1", "isp", served=["10.1.0.2", "203.0.113.0/24"])
    assert not reaches(lab, "client", "10.1.0.2") and reaches(lab, "client", "10.1.0.1")
    lab.heal_all()
    lab.wait_ready()


def test_a_service_address_and_a_process_in_a_site(lab: Lab) -> None:
    lab.add_address("dc1", "10.1.0.10")
    server = serve_text(lab, "dc1", "10.1.0.10", 8080, "app in dc1")
    try:
        assert server.netns == "fo-dc1"
        assert fetch("dc2", "10.1.0.10", 8080) == "app in dc1"
        assert fetch("client", "10.1.0.10", 8080) == "app in dc1"
    finally:
        server.stop()
        lab.remove_address("dc1", "10.1.0.10")
    assert not reaches(lab, "dc2", "10.1.0.10")


def test_the_config_service_addresses_can_be_added(lab: Lab) -> None:
    added = lab.add_service_addresses()
    try:
        assert set(added) == {
            f"10.{site}.0.{host}" for site in (1, 2) for host in (1, 10, 11, 12, 13, 14)
        }
        assert reaches(lab, "dc2", "10.1.0.13") and reaches(lab, "witness", "10.2.0.12")
    finally:
        for address in added:
            if not address.endswith(".1"):
                lab.remove_address("dc1" if address.startswith("10.1.") else "dc2", address)


def test_mistakes_are_named(lab: Lab) -> None:
    with pytest.raises(LabError, match="unknown lab location 'dc9'"):
        lab.cut("dc1", "dc9")
    with pytest.raises(LabError, match="from itself"):
        lab.cut("dc1", "dc1")
    with pytest.raises(LabError, match="router-dc1 can only be cut from the isp, not from dc2"):
        lab.cut("dc2", "router-dc1")
    with pytest.raises(LabError, match="neither in witness's LAN"):
        lab.add_address("witness", "10.1.0.99")
    with pytest.raises(LabError, match="unknown component"):
        lab.start("dc3-bird")
