"""A live timeline of the lab, recorded in the simulator's terms, and its metrics.

A sampling thread reads what is observable from outside the controller, as Jepsen's checkers
do: the isp's routes for the BGP prefix (its best route and every site's announcement), each
name server's answer, desired and applied state and the leader from ZooKeeper (as an
operator), and a real client's requests (HTTP through the front door, SMTP to the address DNS
gives). After the run the audit trail adds the leader's decisions with their own times, and
the daemons' logs their warnings, role changes and supervisor records (`daemonlog`).

`LiveMetrics` answers the playbook expressions over that history with the simulator's own
evaluator (`failover.sim.run.Metrics`: `holds`, `timed` and the expectation loop are the
simulator's; only where values come from differs).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from failover.config import BgpSteering, DnsSteering, split_host_port
from failover.coord import Coordinator
from failover.core.model import GroupState
from failover.lab.netns import LabError
from failover.lab.sites import FRONT_PORT
from failover.lab.topology import NAME_SERVERS, UPLINKS
from failover.lab.view import DNS_ERRORS, OPERATOR_ERRORS
from failover.live import daemonlog
from failover.live.faults import LiveFault
from failover.live.stack import LiveStack
from failover.steer.bird import as_path_announcement
from failover.steer.netns import netns_socket
from failover.testing.lab import fetch

Series = list[tuple[float, Any]]


@dataclass
class History:
    """What the lab showed, as (seconds since the start, value) series that record changes."""

    wall_start: float
    lines: list[str] = field(default_factory=list)
    leader: Series = field(default_factory=list)
    desired: dict[str, list[tuple[float, GroupState]]] = field(default_factory=dict)
    best: Series = field(default_factory=list)  # (site, announcement) | None
    announced: dict[tuple[str, str], Series] = field(default_factory=dict)  # (group, site)
    dns: dict[tuple[str, str | None], Series] = field(default_factory=dict)  # (group, server)
    traffic: dict[str, Series] = field(default_factory=dict)
    requests: list[tuple[float, dict[str, bool]]] = field(default_factory=list)
    primaries: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    audit: list[Any] = field(default_factory=list)
    faults: list[LiveFault] = field(default_factory=list)
    # the operator CLI's own refusals, before anything reaches the leader: (t, kind, site,
    # the failed pre-checks); the leader's refusals are in `audit`
    refusals: list[tuple[float, str, str, list[str]]] = field(default_factory=list)
    zookeeper_down: Series = field(default_factory=list)  # (t, how many servers down)
    end: float = 0.0

    def log(self, now: float, kind: str, text: str) -> None:
        self.lines.append(f"{now:11.3f} {kind:<9} {text}")

    def change(self, series: Series, now: float, value: Any) -> bool:
        if not series or series[-1][1] != value:
            series.append((now, value))
            return True
        return False


def _site_of_address(address: str, per_site: dict[str, list[str]]) -> str:
    return next((s for s, addresses in per_site.items() if address in addresses), "none")


class Recorder:
    """Samples the lab every `interval_s` in a thread until `stop()`."""

    def __init__(self, stack: LiveStack, interval_s: float = 0.2) -> None:
        self.stack = stack
        self.interval_s = interval_s
        self.started = time.monotonic()
        self.history = History(time.time())
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self.errors = 0
        self.logs = {name: d.log_path for name, d in stack.daemons.items()}
        self.log_offsets = daemonlog.offsets(self.logs)
        config = stack.config
        self.bgp = {
            g: grp.steering
            for g, grp in config.groups.items()
            if isinstance(grp.steering, BgpSteering)
        }
        self.dns_groups = {
            g: grp.steering
            for g, grp in config.groups.items()
            if isinstance(grp.steering, DnsSteering)
        }

    def now(self) -> float:
        return time.monotonic() - self.started

    def log(self, kind: str, text: str) -> None:
        with self.lock:
            self.history.log(self.now(), kind, text)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> History:
        self._stop.set()
        self._thread.join(30.0)
        history = self.history
        history.end = self.now()
        self.read_audit()
        for entry in history.audit:
            decision = entry.payload.get("decision", {})
            if decision.get("kind") in ("info", "alert", "command", "desired"):
                history.log(
                    entry.at - history.wall_start,
                    str(decision.get("kind")),
                    f"{decision.get('group') or 'all'}: [{decision.get('code')}] "
                    f"{decision.get('sentence', '')}",
                )
        for at, text in daemonlog.daemon_lines(self.logs, self.log_offsets, history.wall_start):
            history.log(at, "daemon", text)
        history.lines.sort(key=lambda line: float(line.split()[0]))
        return history

    def read_audit(self) -> None:
        """The audit trail since the start (the leader's decisions with their own times)."""
        entries = attempt_list(lambda: self.stack.operator(lambda c: c.audit(), 10.0))
        found = [e for e in entries if e.at >= self.history.wall_start - 1.0]
        with self.lock:
            self.history.audit = found

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    # --- one sample ------------------------------------------------------------------------

    def sample(self) -> None:
        stack = self.stack
        read = True
        try:
            leader, desired = stack.operator(self._coordination, 5.0)
        except OPERATOR_ERRORS:  # the operator cannot read: unknown, unless the daemons say
            desired = {}
            read, leader = self._leader_from_daemons()
            self.errors += 1
        routes = self._routes()
        answers = self._dns()
        requests = self._requests(routes, answers)
        with self.lock:
            self._store(self.now(), leader, desired, routes, answers, requests, read)

    def _coordination(self, c: Coordinator) -> tuple[str | None, dict[str, GroupState | None]]:
        found = c.leader()
        groups = {group: c.desired(group)[0] for group in self.stack.config.groups}
        return (found.instance if found else None), groups

    def _leader_from_daemons(self) -> tuple[bool, str | None]:
        """Without a ZooKeeper quorum no operator reads the leader, yet each daemon says
        whether it leads (its /health, asked from its own site). Known only if every daemon
        answers or runs no process (its site without power, crashed): then the one that
        leads, or none. A daemon that does not answer (paused, cut off) leaves it unknown."""
        leader = None
        for name, daemon in self.stack.daemons.items():
            if daemon.child_pid() is None:
                continue
            host, port = split_host_port(self.stack.config.instances[name].api)
            try:
                health = json.loads(fetch(daemon.site, host, port, "/health", 0.5))
            except (OSError, ValueError):
                return False, None
            if health.get("leader"):
                leader = name
        return True, leader

    def _routes(self) -> dict[str, dict[str, str]] | None:
        """Per BGP group: site -> announcement in the isp's table, and `best` -> site."""
        out: dict[str, dict[str, str]] = {}
        for group, steering in self.bgp.items():
            try:
                routes = self.stack.lab.routes(steering.prefix)
            except (LabError, OSError):
                return None
            seen: dict[str, str] = {}
            for route in routes:
                if not route.as_path:
                    continue
                site = next((s for s, u in UPLINKS.items() if u.asn == route.as_path[0]), "?")
                announcement = as_path_announcement(route.as_path[1:])
                seen.setdefault(site, announcement)
                if route.best:
                    seen["best"] = site
                    seen["best_announcement"] = announcement
            out[group] = seen
        return out

    def _dns(self) -> dict[str, dict[str, str]]:
        """Per DNS group: name server address -> the site it answers (`none`)."""
        out: dict[str, dict[str, str]] = {}
        for group, steering in self.dns_groups.items():
            name = next(iter(steering.names))
            per_site = {s: sorted(a) for s, a in steering.names[name].items()}
            fqdn = name if name.endswith(".") else f"{name}.{steering.zone}"
            answers = {}
            for address in NAME_SERVERS.values():
                found = _ask(fqdn, address)
                answers[address] = (
                    "none"
                    if found is None
                    else next((s for s, a in per_site.items() if a == sorted(found)), "none")
                )
            out[group] = answers
        return out

    def _requests(
        self, routes: dict[str, dict[str, str]] | None, answers: dict[str, dict[str, str]]
    ) -> dict[str, tuple[bool, str]]:
        """Per group: did a real client request succeed, and which site served it."""
        out: dict[str, tuple[bool, str]] = {}
        for group in self.bgp:
            try:
                text = fetch("client", self.stack.front, FRONT_PORT, "/", 0.5).strip()
            except OSError:
                out[group] = (False, "none")
                continue
            site = next((s for s in UPLINKS if text.endswith(f" {s}")), "none")
            out[group] = (text.startswith("ok"), site if text.startswith("ok") else "none")
        for group, steering in self.dns_groups.items():
            site = answers.get(group, {}).get(NAME_SERVERS["primary"], "none")
            name = next(iter(steering.names))
            addresses = steering.names[name].get(site, [])
            ok = bool(addresses) and _smtp(addresses[0])
            out[group] = (ok, site if ok else "none")
        return out

    def _store(
        self,
        now: float,
        leader: str | None,
        desired: dict[str, GroupState | None],
        routes: dict[str, dict[str, str]] | None,
        answers: dict[str, dict[str, str]],
        requests: dict[str, tuple[bool, str]],
        read: bool = True,
    ) -> None:
        h = self.history
        if read and h.change(h.leader, now, leader):
            h.log(now, "leader", f"{leader} leads" if leader else "no leader")
        for group, state in desired.items():
            if state is None:
                continue
            series = h.desired.setdefault(group, [])
            last = series[-1][1] if series else None
            if last is None or _shown(state) != _shown(last):
                series.append((now, state))
                plan = f", graceful {state.graceful.stage}" if state.graceful else ""
                h.log(
                    now,
                    "desired",
                    f"{group}: {state.active} {state.phase} epoch {state.epoch} by {state.by} "
                    f"({state.code}{plan}) [leader {leader}]",
                )
        if routes is not None:
            primaries: set[str] = set()
            for group, seen in routes.items():
                best = (seen["best"], seen["best_announcement"]) if "best" in seen else None
                if h.change(h.best, now, best):
                    text = f"{best[0]} {best[1]}" if best else "no route"
                    h.log(now, "bgp", f"{group} routers see {text}")
                for site in self.bgp[group].sites:
                    value = seen.get(site, "withdrawn")
                    h.change(h.announced.setdefault((group, site), []), now, value)
                    if value == "primary":
                        primaries.add(site)
            if h.change(h.primaries, now, tuple(sorted(primaries))) and len(primaries) > 1:
                h.log(now, "overlap", f"{' and '.join(sorted(primaries))} both primary")
        for group, per_server in answers.items():
            for address, site in per_server.items():
                if h.change(h.dns.setdefault((group, address), []), now, site):
                    h.log(now, "dns", f"{group} name server {address} answers {site}")
            sites = set(per_server.values())
            overall = sites.pop() if len(sites) == 1 else "none"
            h.change(h.dns.setdefault((group, None), []), now, overall)
        for group, (_, site) in requests.items():
            h.change(h.traffic.setdefault(group, []), now, site)
        if not h.requests or {g: ok for g, (ok, _) in requests.items()} != h.requests[-1][1]:
            h.requests.append((now, {g: ok for g, (ok, _) in requests.items()}))
            weights = self.stack.topology.world.clients.weights
            total = sum(weights.get(g, 0.0) for g in requests) or 1.0
            rate = sum(weights.get(g, 0.0) for g, (ok, _) in requests.items() if ok) / total
            h.log(now, "clients", f"success {rate * 100:.2f} %")


def _shown(state: GroupState) -> tuple[int, str, str]:
    """What a change of the desired state is recorded for: epoch, phase, graceful stage."""
    return state.epoch, state.phase, state.graceful.stage if state.graceful else "none"


def attempt_list(call: Any) -> list[Any]:
    try:
        return list(call())
    except OPERATOR_ERRORS:
        return []


def _ask(fqdn: str, address: str) -> list[str] | None:
    import dns.message
    import dns.query
    import dns.rdatatype

    from failover.lab.topology import netns

    query = dns.message.make_query(fqdn, "A")
    try:
        with netns_socket(netns("dns"), socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = dns.query.udp(query, address, timeout=0.4, sock=sock)
    except DNS_ERRORS:
        return None
    return [
        item.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for item in rrset
    ]


def _smtp(address: str, port: int = 25) -> bool:
    """A client's SMTP greeting from `address` (from inside the client namespace)."""
    from failover.lab.topology import netns

    with (
        contextlib.suppress(OSError),
        netns_socket(netns("client"), socket.AF_INET, socket.SOCK_STREAM) as sock,
    ):
        sock.settimeout(0.5)
        sock.connect((address, port))
        return sock.recv(64).startswith(b"220")
    return False
