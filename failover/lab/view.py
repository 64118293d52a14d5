"""What the lab shows, read from outside the controller: the operator's view of ZooKeeper
(a session from inside the client namespace, in one thread that lives there), the operator
CLI, the isp's best route, the name servers' answers, the status document, and waiting for a
steady or healthy lab. `Stack` builds the lab and inherits these readers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from failover.config import BgpSteering, Config, DnsSteering
from failover.coord import Coordinator, CoordinatorError
from failover.core.model import GroupState
from failover.lab.daemons import FAILOVER
from failover.lab.lab import Lab
from failover.lab.netns import LabError
from failover.lab.sites import FRONT_PORT
from failover.lab.topology import NAME_SERVERS, UPLINKS, netns
from failover.steer.bird import as_path_announcement
from failover.steer.netns import enter_netns, netns_socket
from failover.testing.lab import fetch
from failover.testing.servers.process import attempt, wait_until

T = TypeVar("T")
OPERATOR_LOCATION = "client"
# What the operator's view may raise while the lab settles: the coordinator's errors, and the
# operator thread's TimeoutError (an OSError). Anything else is a bug and propagates.
OPERATOR_ERRORS = (CoordinatorError, OSError)
DNS_ERRORS = (OSError, dns.exception.DNSException)
# Reading the status document while daemons start: also a key not there yet.
STATUS_ERRORS = (*OPERATOR_ERRORS, KeyError)


class StackView:
    """The readers of a `Stack` (which sets `config`, `lab`, `config_path`)."""

    config: Config
    lab: Lab
    config_path: Path
    _operator: concurrent.futures.ThreadPoolExecutor | None = None
    _coordinator: Coordinator | None = None

    # --- names ---------------------------------------------------------------------------------

    @property
    def bgp_group(self) -> str:
        return next(
            g for g, group in self.config.groups.items() if isinstance(group.steering, BgpSteering)
        )

    @property
    def dns_group(self) -> str:
        return next(
            g for g, group in self.config.groups.items() if isinstance(group.steering, DnsSteering)
        )

    @property
    def prefix(self) -> str:
        steering = self.config.groups[self.bgp_group].steering
        assert isinstance(steering, BgpSteering)
        return steering.prefix

    @property
    def front(self) -> str:
        """The address both sites serve inside the BGP prefix (the client's way in)."""
        return self.lab.service_addresses()[0]

    def instance_of(self, site: str) -> str:
        return next(name for name, i in self.config.instances.items() if i.site == site)

    # --- the operator's view (a ZooKeeper session from inside the client namespace) ----------

    def operator(self, call: Callable[[Coordinator], T], timeout_s: float = 10.0) -> T:
        """Run `call(coordinator)` in the operator thread, as the operator identity."""
        if self._operator is None:
            self._operator = concurrent.futures.ThreadPoolExecutor(
                1,
                thread_name_prefix="operator",
                initializer=enter_netns,
                initargs=(netns(OPERATOR_LOCATION),),
            )
        return self._operator.submit(self._call, call).result(timeout_s)

    def _call(self, call: Callable[[Coordinator], T]) -> T:
        if self._coordinator is None:
            from failover.coord.zookeeper import ZooKeeperCoordinator

            coordinator = ZooKeeperCoordinator.from_config(
                self.config, "lab-operator", role="operator"
            )
            try:
                coordinator.connect(timeout_s=5.0)
            except BaseException:
                coordinator.close()  # idempotent, and it never raises
                raise
            self._coordinator = coordinator
        return call(self._coordinator)

    def close_operator(self) -> None:
        if self._operator is not None:
            if self._coordinator is not None:
                coordinator = self._coordinator
                with contextlib.suppress(*OPERATOR_ERRORS, concurrent.futures.BrokenExecutor):
                    self._operator.submit(coordinator.close).result(10.0)
            self._operator.shutdown(wait=False)
        self._operator = None
        self._coordinator = None

    def leader(self) -> str | None:
        """The leading daemon's instance, None without one (or without ZooKeeper)."""
        found = attempt(lambda: self.operator(lambda c: c.leader(), 5.0), OPERATOR_ERRORS, None)
        return found.instance if found else None

    def desired(self, group: str) -> GroupState | None:
        return self.operator(lambda c: c.desired(group)[0])

    def cli(self, *args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
        """`failover ARGS --config <the stack's>` as an operator types it, from the client."""
        argv = [
            "ip",
            "netns",
            "exec",
            netns(OPERATOR_LOCATION),
            FAILOVER,
            *args,
            "--config",
            str(self.config_path),
        ]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    # --- traffic: the isp's best route and the name servers' answers ------------------------

    def route(self) -> tuple[str, str] | None:
        """(site, primary|held|backup) of the isp's best route for the BGP prefix, or None."""
        best = self.lab.best_route(self.prefix)
        if best is None or not best.as_path:
            return None
        site = next((s for s, u in UPLINKS.items() if u.asn == best.as_path[0]), "?")
        return site, as_path_announcement(best.as_path[1:])

    def client_get(self, timeout_s: float = 1.0) -> str:
        """What the client gets for `GET http://<front>/`: the answering app's text, or why
        not (the request goes wherever the isp's best route leads)."""
        try:
            return fetch("client", self.front, FRONT_PORT, "/", timeout_s).strip()
        except OSError as exc:
            return f"no answer ({exc})"

    def dns_answers(self, timeout_s: float = 0.5) -> dict[str, list[str]]:
        """Per name server (primary, secondary): the addresses it answers for the DNS name."""
        steering = self.config.groups[self.dns_group].steering
        assert isinstance(steering, DnsSteering)
        name = next(iter(steering.names))
        fqdn = name if name.endswith(".") else f"{name}.{steering.zone}"
        answers: dict[str, list[str]] = {}
        for role, address in NAME_SERVERS.items():
            query = dns.message.make_query(fqdn, "A")

            def ask(query: dns.message.Message = query, address: str = address) -> Any:
                with netns_socket(netns("dns"), socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    return dns.query.udp(query, address, timeout=timeout_s, sock=sock)

            reply = attempt(ask, DNS_ERRORS, None)  # no answer: the server is down or cut off
            answers[role] = (
                []
                if reply is None
                else sorted(
                    item.address
                    for rrset in reply.answer
                    if rrset.rdtype == dns.rdatatype.A
                    for item in rrset
                )
            )
        return answers

    def dns_site(self, answers: Mapping[str, list[str]] | None = None) -> str | None:
        """The site every name server answers with, None while they disagree or fail."""
        steering = self.config.groups[self.dns_group].steering
        assert isinstance(steering, DnsSteering)
        per_site = next(iter(steering.names.values()))
        answers = self.dns_answers() if answers is None else answers
        sites = {
            next((s for s, a in per_site.items() if sorted(a) == found), None)
            for found in answers.values()
        }
        return sites.pop() if len(sites) == 1 else None

    def announcement(self, site: str) -> str:
        """What `site`'s kernel table announces for the BGP group (primary/backup/withdrawn)."""
        from failover.steer.bird import BirdSteerer

        steering = self.config.groups[self.bgp_group].steering
        assert isinstance(steering, BgpSteering)
        steerer = BirdSteerer(self.bgp_group, site, steering)
        try:
            return steerer.read().announcement
        finally:
            steerer.close()

    # --- waiting -------------------------------------------------------------------------------

    def steady_on(self, site: str) -> bool:
        """Every group steady on `site`, applied and verified at its epoch by every serving
        site, the isp's best route a primary via `site`, and every name server answering it."""

        def done(c: Coordinator) -> bool:
            for group in self.config.groups:
                state, _ = c.desired(group)
                if state is None or state.active != site or state.phase != "steady":
                    return False
                applied = c.applied(group)
                for serving in self.config.serving_sites:
                    item = applied.get(serving)
                    if item is None or item.epoch < state.epoch or not item.verified:
                        return False
            return True

        return self.route() == (site, "primary") and self.dns_site() == site and self.operator(done)

    def wait_steady(self, site: str, timeout_s: float = 30.0) -> float:
        """Until `steady_on(site)`; the seconds it took. TimeoutError says what was seen."""
        started = time.monotonic()
        try:
            wait_until(
                lambda: self.steady_on(site),
                timeout_s,
                f"steady on {site}",
                0.1,
                retry_on=(*STATUS_ERRORS, *DNS_ERRORS, LabError),
            )
        except TimeoutError:
            raise TimeoutError(
                f"not steady on {site} within {timeout_s:g} s: {self.describe()}"
            ) from None
        return time.monotonic() - started

    def status(self) -> dict[str, Any]:
        """The status document (`failover status --json`), read as the operator."""
        from failover.status import build_status

        return self.operator(lambda c: build_status(c, self.config))

    def healthy(self, site: str, every_vote: bool = False) -> bool:
        """Is `site` healthy for every group (and, with `every_vote`, has every observer site
        decided on every service of it)?"""
        doc = self.status()
        if not all(
            g["sites"][site]["health"]["situation"] == "healthy" for g in doc["groups"].values()
        ):
            return False
        return not every_vote or all(
            vote != "unknown"
            for service in doc["services"][site].values()
            for vote in service["votes"].values()
        )

    def wait_healthy(
        self, sites: list[str] | None = None, timeout_s: float = 30.0, every_vote: bool = False
    ) -> float:
        """Until every site in `sites` (default: the serving ones) is healthy; seconds taken."""
        started = time.monotonic()
        for site in sites or self.config.serving_sites:
            left = max(0.1, timeout_s - (time.monotonic() - started))
            wait_until(
                functools.partial(self.healthy, site, every_vote),
                left,
                f"{site} healthy",
                0.2,
                retry_on=STATUS_ERRORS,
            )
        return time.monotonic() - started

    def describe(self) -> str:
        """One line: the leader, each group's desired state, the route and the DNS answers."""
        parts = [f"leader {self.leader()}"]
        for group in self.config.groups:
            try:
                state = self.desired(group)
            except OPERATOR_ERRORS as exc:
                parts.append(f"{group}: unreadable ({exc})")
                continue
            parts.append(
                f"{group}: "
                + (
                    f"{state.active} {state.phase} epoch {state.epoch}"
                    if state
                    else "no desired state"
                )
            )
        parts.append(f"isp route {self.route()}")
        parts.append(f"DNS {self.dns_answers()}")
        return "; ".join(parts)
