"""The real services of one serving site of the lab, at the addresses the config gives them.

    app       nginx on .10:8080 (`/health` answers 200)
    lb        HAProxy on .11:80 in front of the app (its own health checks of `/health`)
    db        PostgreSQL 15 on .12:5432 (dc1 the primary, dc2 a streaming standby of it)
    mail      an SMTP server (aiosmtpd) on .13:25
    firewall  nftables on the site's edge: TCP .14:443 is forwarded to a server on .14:8443,
              which nothing reaches directly; stopping the firewall removes that forwarding
    front     HAProxy on the BGP prefix's service address, port 80, in front of the lb

Each service stops and starts on its own (`stop`, `start`), as a failure and a repair do.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from failover.config import Config
from failover.lab import netns as nets
from failover.lab.netns import LabError
from failover.lab.topology import UPLINKS, netns
from failover.testing.servers.haproxy import HaproxyServer
from failover.testing.servers.nginx import NginxServer
from failover.testing.servers.postgres import PostgresServer
from failover.testing.servers.smtp import SmtpServer

SERVICES = ("app", "lb", "db", "mail", "firewall")
OFFSETS = {"app": 10, "lb": 11, "db": 12, "mail": 13, "firewall": 14}
PORTS = {"app": 8080, "lb": 80, "db": 5432, "mail": 25, "firewall": 443}
FIREWALL_BACKEND_PORT = 8443
FIREWALL_TABLE = "fo_edge"
FRONT_PORT = 80


def service_address(site: str, service: str) -> str:
    lan = UPLINKS[site].lan
    if lan is None:
        raise LabError(f"{site} has no LAN for its services")
    return str(ipaddress.ip_network(lan)[OFFSETS[service]])


class EdgeFirewall:
    """nftables rules in a site's namespace: the edge forwards TCP 443 to the backend port."""

    def __init__(self, site: str, address: str) -> None:
        self.ns = netns(site)
        self.address = address

    def rules(self) -> str:
        to = f"{self.address}:{FIREWALL_BACKEND_PORT}"
        match = f"ip daddr {self.address} tcp dport"
        return f"""table ip {FIREWALL_TABLE} {{
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    {match} {PORTS["firewall"]} dnat to {to}; }}
  chain output {{ type nat hook output priority -100; policy accept;
    {match} {PORTS["firewall"]} dnat to {to}; }}
  chain input {{ type filter hook input priority 0; policy accept;
    {match} {FIREWALL_BACKEND_PORT} ct status dnat accept;
    {match} {FIREWALL_BACKEND_PORT} drop; }}
}}
"""

    @property
    def running(self) -> bool:
        done = nets.run(
            ["ip", "netns", "exec", self.ns, "nft", "list", "table", "ip", FIREWALL_TABLE],
            check=False,
        )
        return done.returncode == 0

    def start(self) -> None:
        if not self.running:
            nets.run(["ip", "netns", "exec", self.ns, "nft", "-f", "-"], input_text=self.rules())

    def stop(self) -> None:
        if self.running:
            nets.run(
                ["ip", "netns", "exec", self.ns, "nft", "delete", "table", "ip", FIREWALL_TABLE]
            )


class SiteServices:
    """Every service of one serving site; `primary_db` makes this site's database a standby.
    `front` (an address of the BGP prefix) adds the site's front door: HAProxy there in front
    of the site's lb, which is what a client reaches when the isp routes the prefix here."""

    def __init__(
        self,
        site: str,
        workdir: Path,
        primary_db: PostgresServer | None = None,
        front: str | None = None,
    ) -> None:
        self.site = site
        ns = netns(site)
        at = {name: service_address(site, name) for name in SERVICES}
        self.app = NginxServer(
            workdir / "app", at["app"], PORTS["app"], netns=ns, name=f"app {site}"
        )
        self.lb = HaproxyServer(
            workdir / "lb",
            [f"{at['app']}:{PORTS['app']}"],
            at["lb"],
            PORTS["lb"],
            netns=ns,
            name="lb",
        )
        self.db = PostgresServer(
            workdir / "db" / "data",
            at["db"],
            PORTS["db"],
            netns=ns,
            primary=primary_db,
            name=f"db {site}",
        )
        self.mail = SmtpServer(
            workdir / "mail", at["mail"], PORTS["mail"], netns=ns, name=f"mail-{site}"
        )
        self.firewall_backend = NginxServer(
            workdir / "firewall",
            at["firewall"],
            FIREWALL_BACKEND_PORT,
            netns=ns,
            name=f"behind the firewall of {site}",
        )
        self.firewall = EdgeFirewall(site, at["firewall"])
        self.front = (
            HaproxyServer(
                workdir / "front",
                [f"{at['lb']}:{PORTS['lb']}"],
                front,
                FRONT_PORT,
                netns=ns,
                name="front",
            )
            if front
            else None
        )

    def start_all(self) -> None:
        self.db.start()
        self.app.start()
        self.lb.start()
        self.mail.start()
        self.firewall_backend.start()
        self.firewall.start()
        if self.front is not None:
            self.front.start()

    def stop_all(self) -> None:
        self.firewall.stop()
        if self.front is not None:
            self.front.stop()
        for server in (self.firewall_backend, self.mail, self.lb, self.app):
            server.stop()
        self.db.stop()

    def kill_all(self) -> None:
        """Every server at once with kill -9, as a power loss: no graceful shutdown (a
        database's alone took seconds, and a power cut must not)."""
        self.firewall.stop()
        for server in (self.front, self.firewall_backend, self.mail, self.lb, self.app, self.db):
            if server is not None:
                server.process.kill()

    def stop(self, service: str) -> None:
        """Stop one service as a failure would (the firewall: its forwarding is removed)."""
        self._check(service)
        getattr(self, service).stop()

    def start(self, service: str) -> None:
        self._check(service)
        server = getattr(self, service)
        if service == "firewall" or not server.process.alive:
            server.start()

    def running(self, service: str) -> bool:
        self._check(service)
        if service == "firewall":
            return self.firewall.running
        return bool(getattr(self, service).process.alive)

    def _check(self, service: str) -> None:
        if service not in SERVICES:
            raise LabError(f"unknown service {service!r} (one of {', '.join(SERVICES)})")


def check_layout(config: Config) -> list[str]:
    """Where the config's services of a serving site differ from what the lab runs."""
    problems = []
    for site in config.serving_sites:
        services = config.sites[site].services
        for name in SERVICES:
            want = f"{service_address(site, name)}:{PORTS[name]}"
            service = services.get(name)
            if service is None or want not in service.endpoints:
                problems.append(f"sites.{site}.services.{name}: the lab serves it at {want}")
    return problems
