"""The lab's fixed layout: namespaces, links and addresses (examples/two-dc.yaml matches it).

Every name the lab creates on the host starts with `fo-` followed by one of the lab's own
location names, so `down` can find exactly what `up` made and nothing else. Addresses come
from private (10/8) and documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) and
exist only inside the namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "fo-"
RUN_DIR = "/run/failover-lab"
LOCATIONS = ("isp", "client", "dc1", "dc2", "witness", "dns")
NAMESPACES = tuple(PREFIX + location for location in LOCATIONS)
SITES = ("dc1", "dc2", "witness")
ROUTER_SITES = ("dc1", "dc2")  # the sites with an edge router (BIRD) peering with the isp
ISP_AS = 64500
SERVICE_ADDRESS = "203.0.113.10"  # present in both router sites; the isp picks one
NAME_SERVERS = {"primary": "10.53.0.1", "secondary": "10.53.0.2"}


def netns(location: str) -> str:
    return PREFIX + location


@dataclass(frozen=True, slots=True)
class Uplink:
    """A veth pair between the isp and one location: `isp` side named after the peer."""

    location: str
    isp_address: str  # with prefix length
    address: str  # the location's end, with prefix length
    lan: str | None  # the location's LAN behind it (routed by the isp), if any
    lan_addresses: tuple[str, ...]  # addresses on the location's LAN bridge
    asn: int | None  # BGP AS of the location's edge router

    @property
    def isp_ip(self) -> str:
        return self.isp_address.split("/")[0]

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


UPLINKS: dict[str, Uplink] = {
    "dc1": Uplink(
        "dc1", "192.0.2.1/30", "192.0.2.2/30", "10.1.0.0/24", ("10.1.0.1/24", "10.1.0.2/24"), 64501
    ),
    "dc2": Uplink(
        "dc2", "192.0.2.5/30", "192.0.2.6/30", "10.2.0.0/24", ("10.2.0.1/24", "10.2.0.2/24"), 64502
    ),
    "witness": Uplink(
        "witness",
        "192.0.2.9/30",
        "192.0.2.10/30",
        "10.3.0.0/24",
        ("10.3.0.1/24", "10.3.0.2/24"),
        None,
    ),
    "dns": Uplink(
        "dns",
        "192.0.2.13/30",
        "192.0.2.14/30",
        "10.53.0.0/24",
        ("10.53.0.1/24", "10.53.0.2/24"),
        None,
    ),
    "client": Uplink("client", "198.51.100.1/24", "198.51.100.10/24", None, (), None),
}
ISP_ROUTER_ID = "192.0.2.1"
CLIENT_ADDRESS = "198.51.100.10"
