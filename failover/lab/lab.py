"""The lab: a small internet on one host, in network namespaces, for tests and the demo.

    isp (BIRD, AS 64500) ── dc1 (BIRD, AS 64501; LAN 10.1.0.0/24)
                        ├── dc2 (BIRD, AS 64502; LAN 10.2.0.0/24)
                        ├── witness (LAN 10.3.0.0/24)
                        ├── dns (BIND primary 10.53.0.1, secondary 10.53.0.2)
                        └── client (198.51.100.10)

`up` is idempotent; `down` removes every namespace, link and process the lab made, also after
a crash, by their fixed `fo-` names and by the PIDs living in those namespaces.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from failover.config import BgpSteering, Config, DnsSteering, load_config
from failover.lab import bind, firewall
from failover.lab import bird as birds
from failover.lab import netns as nets
from failover.lab.netns import LabError
from failover.lab.topology import (
    LOCATIONS,
    NAME_SERVERS,
    NAMESPACES,
    ROUTER_SITES,
    RUN_DIR,
    UPLINKS,
    netns,
)
from failover.steer.birdctl import BirdError, BirdRoute, protocol_state, show_routes
from failover.steer.netns import netns_socket
from failover.testing.servers.process import Process, wait_until

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"
TOOLS = ("ip", "nft", "bird", "birdc", "named")
COMPONENTS = ("isp-bird", "dc1-bird", "dc2-bird", "dns-primary", "dns-secondary")


@dataclass(frozen=True, slots=True)
class LabStatus:
    namespaces: dict[str, bool]
    processes: dict[str, int | None]  # component -> PID if running
    sessions: dict[str, str]  # isp's BGP protocol per site -> state
    best_routes: dict[str, BirdRoute | None]  # prefix -> the isp's best route
    cuts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return all(self.namespaces.values()) and all(self.processes.values())

    def lines(self) -> list[str]:
        overall = "up" if self.up else "down" if not any(self.namespaces.values()) else "partial"
        out = [f"lab: {overall}"]
        out += [
            f"namespace {ns}: {'present' if ok else 'missing'}"
            for ns, ok in self.namespaces.items()
        ]
        out += [
            f"{name}: {'running, pid ' + str(pid) if pid else 'not running'}"
            for name, pid in self.processes.items()
        ]
        out += [f"bgp isp-{site}: {state}" for site, state in self.sessions.items()]
        for prefix, route in self.best_routes.items():
            out.append(f"isp best route {prefix}: {route.describe() if route else 'none'}")
        out += [f"cut: {a} <-> {b}" for a, b in self.cuts]
        return out


class Lab:
    """Build, inspect and tear down the lab; run things inside its locations."""

    def __init__(self, config: Config | None = None, run_dir: str | Path = RUN_DIR) -> None:
        self.config = config if config is not None else load_config(EXAMPLE_CONFIG)
        self.run_dir = Path(run_dir)

    # --- paths and derived settings --------------------------------------------------------

    def location_dir(self, location: str) -> Path:
        return self.run_dir / location

    def bird_socket(self, location: str) -> str:
        for group in self._bgp_groups():
            site = group.sites.get(location)
            if site is not None:
                return site.bird_socket
        return str(self.location_dir(location) / "bird.ctl")

    def _bgp_groups(self) -> list[BgpSteering]:
        return [
            g.steering for g in self.config.groups.values() if isinstance(g.steering, BgpSteering)
        ]

    def _dns_groups(self) -> list[tuple[str, DnsSteering]]:
        return [
            (name, g.steering)
            for name, g in self.config.groups.items()
            if isinstance(g.steering, DnsSteering)
        ]

    def prefixes(self) -> list[str]:
        return sorted({steering.prefix for steering in self._bgp_groups()})

    def service_addresses(self) -> list[str]:
        """Per BGP prefix, the address both router sites serve (the prefix's 10th address)."""
        return [str(ipaddress.ip_network(prefix)[10]) for prefix in self.prefixes()]

    # --- up --------------------------------------------------------------------------------

    def up(self, timeout_s: float = 20.0) -> LabStatus:
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise LabError(f"missing programs: {', '.join(missing)} (run `make system` as root)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for ns in NAMESPACES:
            nets.add_namespace(ns)
        self._links()
        name_servers = ("dns-primary", "dns-secondary")
        if any(self.pid(component) is None for component in name_servers):
            for component in name_servers:  # a fresh primary needs a fresh secondary
                self.stop(component)
        for component in COMPONENTS:
            if self.pid(component) is None:
                self.start(component, fresh=True)
        self.wait_ready(timeout_s)
        return self.status()

    def _links(self) -> None:
        isp = netns("isp")
        nets.sysctl(isp, "net.ipv4.ip_forward", "1")
        for location, uplink in UPLINKS.items():
            ns = netns(location)
            nets.add_veth(isp, location, ns, "isp")
            isp_cmds = [
                f"addr replace {uplink.isp_address} dev {location}",
                f"link set {location} up",
            ]
            if uplink.lan:
                isp_cmds.append(f"route replace {uplink.lan} via {uplink.ip}")
            nets.batch(isp, isp_cmds)
            cmds = [
                f"addr replace {uplink.address} dev isp",
                "link set isp up",
                f"route replace default via {uplink.isp_ip}",
            ]
            if uplink.lan_addresses:
                if not nets.link_exists(ns, "lan"):
                    cmds.insert(0, "link add lan type bridge")
                cmds += [f"addr replace {a} dev lan" for a in uplink.lan_addresses]
                cmds.append("link set lan up")
            nets.batch(ns, cmds)
        for site in ROUTER_SITES:
            ns = netns(site)
            cmds = [] if nets.link_exists(ns, "svc") else ["link add svc type bridge"]
            cmds += [f"addr replace {a}/32 dev svc" for a in self.service_addresses()]
            nets.batch(ns, [*cmds, "link set svc up"])

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Until every BGP session is established and every name server answers (bounded)."""
        isp_socket = self.bird_socket("isp")
        for site in ROUTER_SITES:
            wait_until(
                functools.partial(_established, isp_socket, site),
                timeout_s,
                f"BGP session isp-{site}",
                retry_on=(OSError, BirdError),
            )
        for role in NAME_SERVERS:
            if self._dns_groups():
                wait_until(
                    functools.partial(self._zone_loaded, role),
                    timeout_s,
                    f"{role} name server",
                    retry_on=(OSError, dns.exception.DNSException),
                )

    def _zone_loaded(self, role: str) -> bool:
        zone = self._dns_groups()[0][1].zone
        query = dns.message.make_query(zone, "SOA")
        with netns_socket(netns("dns"), socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = dns.query.udp(query, NAME_SERVERS[role], timeout=0.5, sock=sock)
        return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)

    # --- components ------------------------------------------------------------------------

    def _pid_file(self, component: str) -> Path:
        location, _, what = component.partition("-")
        if what == "bird":
            return self.location_dir(location) / "bird.pid"
        return self.location_dir("dns") / what / "named.pid"

    def pid(self, component: str) -> int | None:
        pid = nets.read_pid(self._pid_file(component))
        return pid if pid is not None and nets.pid_alive(pid) else None

    def start(self, component: str, fresh: bool = False) -> int:
        """Start one of COMPONENTS (no-op if it runs); `fresh` wipes a name server's files."""
        if component not in COMPONENTS:
            raise LabError(f"unknown component {component!r} (one of {', '.join(COMPONENTS)})")
        running = self.pid(component)
        if running is not None:
            return running
        location, _, what = component.partition("-")
        config_path = (
            self.location_dir(location) / "bird.conf"
            if what == "bird"
            else self.location_dir("dns") / what / "named.conf"
        )
        orphans = nets.pids_running(netns(location), str(config_path))
        if orphans:  # left by a run whose PID files are gone
            nets.kill_pids(orphans, grace_s=0.0)
        if what == "bird":
            directory = self.location_dir(location)
            directory.mkdir(parents=True, exist_ok=True)
            text = (
                birds.isp_config(directory, list(ROUTER_SITES))
                if location == "isp"
                else birds.site_config(
                    directory, location, self._exports(location), self._protocol(location)
                )
            )
            return birds.start_bird(
                netns(location), directory, text, Path(self.bird_socket(location))
            )
        zones, keys = self._zones()
        return bind.start_named(
            netns("dns"),
            what,
            self.location_dir("dns") / what,
            zones,
            keys,
            fresh=fresh or what == "secondary",
        )

    def stop(self, component: str) -> None:
        """Kill one component by its PID (a crash, as far as its peers can tell)."""
        pid = self.pid(component)
        if pid is not None:
            nets.kill_pids([pid], grace_s=0.0)

    def _exports(self, site: str) -> list[birds.Export]:
        return [
            birds.Export(g.prefix, g.sites[site].table, g.metric_held, g.metric_backup)
            for g in self._bgp_groups()
            if site in g.sites
        ]

    def _protocol(self, site: str) -> str:
        names = {g.sites[site].protocol or "isp" for g in self._bgp_groups() if site in g.sites}
        if len(names) > 1:
            raise LabError(f"the BGP groups name different protocols for {site}: {sorted(names)}")
        return names.pop() if names else "isp"

    def _zones(self) -> tuple[list[bind.Zone], list[bind.TsigKey]]:
        keys: dict[str, bind.TsigKey] = {}
        records: dict[str, list[tuple[str, str]]] = {}
        ttls: dict[str, int] = {}
        allowed: dict[str, set[str]] = {}
        for group, steering in self._dns_groups():
            secret = _read_secret(steering.tsig.secret_file)
            keys[steering.tsig.name] = bind.TsigKey(
                steering.tsig.name, steering.tsig.algorithm, secret
            )
            site = self.config.preferred_site(group)
            ttls[steering.zone] = steering.ttl
            allowed.setdefault(steering.zone, set()).add(steering.tsig.name)
            for name, per_site in steering.names.items():
                owner = _owner(name, steering.zone)
                for address in per_site.get(site, []):
                    records.setdefault(steering.zone, []).append((owner, address))
        zones = [
            bind.Zone(zone, ttls[zone], tuple(records.get(zone, [])), tuple(sorted(allowed[zone])))
            for zone in sorted(ttls)
        ]
        return zones, list(keys.values())

    # --- down ------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything the lab made; returns what was removed (empty if nothing)."""
        removed = []
        present = set(nets.namespaces())
        pids: list[int] = []
        for component in COMPONENTS:
            pid = self.pid(component)
            if pid is not None:
                pids.append(pid)
        for ns in NAMESPACES:
            if ns in present:
                pids += nets.netns_pids(ns)
        pids = sorted(set(pids))
        if pids:
            nets.kill_pids(pids, grace_s=0.5)
            removed.append(f"processes {', '.join(map(str, pids))}")
        for ns in NAMESPACES:
            if ns in present:
                nets.delete_namespace(ns)
                removed.append(f"namespace {ns}")
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
            removed.append(f"directory {self.run_dir}")
        return removed

    # --- status ----------------------------------------------------------------------------

    def status(self) -> LabStatus:
        present = set(nets.namespaces())
        namespaces = {ns: ns in present for ns in NAMESPACES}
        processes = {c: self.pid(c) for c in COMPONENTS}
        sessions: dict[str, str] = {}
        best: dict[str, BirdRoute | None] = {}
        if processes["isp-bird"]:
            for site in ROUTER_SITES:
                try:
                    sessions[site] = protocol_state(self.bird_socket("isp"), site)
                except BirdError as exc:
                    sessions[site] = f"unknown ({exc})"
            for prefix in self.prefixes():
                best[prefix] = self.best_route(prefix)
        return LabStatus(
            namespaces,
            processes,
            sessions,
            best,
            firewall.cuts() if all(namespaces.values()) else [],
        )

    def routes(self, prefix: str) -> list[BirdRoute]:
        """The isp's routes for `prefix`, best first."""
        try:
            return show_routes(self.bird_socket("isp"), prefix)
        except BirdError:
            return []

    def best_route(self, prefix: str) -> BirdRoute | None:
        return next((route for route in self.routes(prefix) if route.best), None)

    # --- using the lab ---------------------------------------------------------------------

    def exec(
        self, location: str, argv: Sequence[str], timeout_s: float = 10.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside a location's namespace."""
        return nets.run(nets.in_netns(self._ns(location), argv), timeout_s=timeout_s, check=check)

    def process(
        self,
        location: str,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Process:
        """A (not yet started) server process inside a location, logging under the run dir."""
        return Process(
            name,
            argv,
            log_path=self.location_dir(location) / f"{name}.log",
            netns=self._ns(location),
            env=env,
            cwd=cwd,
        )

    def add_address(self, location: str, address: str) -> None:
        """Add an address to a location: on its LAN bridge if inside its LAN, else as a /32."""
        self._address("replace", location, address)

    def add_service_addresses(self) -> list[str]:
        """Add every endpoint address the config gives a site's services inside its LAN."""
        added = []
        for site_name, site in self.config.sites.items():
            uplink = UPLINKS.get(site_name)
            if uplink is None or uplink.lan is None:
                continue
            for service in site.services.values():
                for endpoint in service.endpoints:
                    host = endpoint.rpartition(":")[0] if ":" in endpoint else endpoint
                    try:
                        inside = ipaddress.ip_address(host) in ipaddress.ip_network(uplink.lan)
                    except ValueError:
                        continue
                    if inside and host not in added:
                        self.add_address(site_name, host)
                        added.append(host)
        return added

    def remove_address(self, location: str, address: str) -> None:
        self._address("del", location, address)

    def _address(self, verb: str, location: str, address: str) -> None:
        ip = ipaddress.ip_address(address)
        uplink = UPLINKS.get(location)
        if uplink is not None and uplink.lan and ip in ipaddress.ip_network(uplink.lan):
            spec = f"{address}/{ipaddress.ip_network(uplink.lan).prefixlen} dev lan"
        elif location in ROUTER_SITES:
            spec = f"{address}/32 dev svc"
        else:
            raise LabError(f"{address} is neither in {location}'s LAN nor a service address")
        nets.run(["ip", "-n", self._ns(location), "addr", verb, *spec.split()])

    def cut(self, a: str, b: str, served: Sequence[str] = ()) -> None:
        """Drop traffic between two locations (`isp` as one of them isolates the other;
        `router-SITE` and `isp`: the router's BGP session and the clients' way into SITE, to
        the `served` addresses if given)."""
        firewall.cut(a, b, served)

    def heal(self, a: str, b: str) -> None:
        firewall.heal(a, b)

    def isolate(self, location: str) -> None:
        firewall.cut(location, "isp")

    def heal_all(self) -> None:
        firewall.heal_all()

    def _ns(self, location: str) -> str:
        if location not in LOCATIONS:
            raise LabError(f"unknown lab location {location!r} (one of {', '.join(LOCATIONS)})")
        return netns(location)


def _read_secret(path: str) -> str:
    try:
        secret = Path(path).read_text().strip()
    except OSError as exc:
        raise LabError(f"cannot read the TSIG secret {path}: {exc.strerror}") from None
    try:
        base64.b64decode(secret, validate=True)
    except ValueError:
        raise LabError(f"the TSIG secret in {path} is not base64") from None
    return secret


def _owner(name: str, zone: str) -> str:
    """A config record name as an owner relative to its zone (`@` for the apex)."""
    if not name.endswith("."):
        return name
    return "@" if name == zone else name.removesuffix("." + zone)


def _established(socket_path: str, site: str) -> bool:
    return protocol_state(socket_path, site) == "Established"
