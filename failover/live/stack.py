"""The lab's `Stack` built for a topology: its config generated from the topology's, its
ZooKeeper layout (the reference: 2+2+1, each server on its own address in its site's LAN)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import ipaddress
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from failover.config import BgpSteering
from failover.config.model import split_host_port
from failover.lab import netns as nets
from failover.lab.netns import LabError
from failover.lab.sites import SERVICES
from failover.lab.stack import Stack
from failover.lab.topology import RUN_DIR, UPLINKS, netns
from failover.live.cluster import differences, lab_config
from failover.sim.topology import Topology
from failover.testing.servers.process import wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble


def site_of(host: str) -> str | None:
    """The lab site whose LAN holds `host`, None if none does."""
    for name, uplink in UPLINKS.items():
        if uplink.lan and ipaddress.ip_address(host) in ipaddress.ip_network(uplink.lan):
            return name
    return None


class LiveStack(Stack):
    """A `Stack` whose config is the topology's cluster (checked field by field)."""

    def __init__(self, topology: Topology, run_dir: str = RUN_DIR, leader_first: bool = True):
        data, _ = lab_config(topology, run_dir)
        self.topology = topology
        self._config_dir = Path(tempfile.mkdtemp(prefix="failover-live-"))
        base = self._config_dir / "cluster.yaml"
        base.write_text(yaml.safe_dump(data, sort_keys=False))
        # The Stack makes the mail group depend on the database; the topology decides here.
        overrides: dict[str, Any] = {
            "groups": {
                name: {"services": group["services"]} for name, group in data["groups"].items()
            }
        }
        try:
            super().__init__(
                overrides, run_dir=run_dir, base_config=base, agents_first=leader_first
            )
        finally:  # the Stack has read it: it writes its own copy for the daemons
            shutil.rmtree(self._config_dir, ignore_errors=True)
        # as the world model (and production's systemd) has it: a daemon that dies starts again
        self.restart_s = topology.world.daemons.restart_s
        problems = differences(topology, self.config)
        if problems:
            raise LabError(
                f"{topology.source}: the lab's config and the topology differ: "
                + "; ".join(problems)
            )

    def zookeeper_sites(self) -> list[str]:
        """The site of each ZooKeeper server, by index."""
        return [
            site_of(split_host_port(entry)[0]) or "?"
            for entry in self.config.cluster.zookeeper.hosts
        ]

    def _ensemble(self) -> ZooKeeperEnsemble:
        hosts, spaces, ports = [], [], set()
        for entry in self.config.cluster.zookeeper.hosts:
            host, port = split_host_port(entry)
            site = site_of(host)
            if site is None:
                raise LabError(f"cluster.zookeeper.hosts: {entry} is in no site's LAN")
            lan = UPLINKS[site].lan_addresses
            if not any(item.split("/")[0] == host for item in lan):
                self.lab.add_address(site, host)  # its own address in the site's LAN
            hosts.append(host)
            spaces.append(netns(site))
            ports.add(port)
        if len(hosts) % 2 == 0 or len(ports) != 1:
            raise LabError(
                "cluster.zookeeper.hosts: the lab runs an odd number of nodes on one port"
            )
        timers = self.topology.world.zookeeper  # the simulator's ZooKeeper runs on these too
        return ZooKeeperEnsemble(
            self.dir / "zookeeper",
            len(hosts),
            tick_ms=timers.tick_ms,
            sync_limit=timers.sync_limit,
            init_limit=timers.init_limit,
            hosts=hosts,
            netns=list(spaces),
            client_port=ports.pop(),
            jvm_heap_mb=192,
        )

    def flush_steering(self, site: str) -> None:
        """Empty the site's kernel steering tables, as a reboot leaves them."""
        for group in self.config.groups.values():
            steering = group.steering
            if isinstance(steering, BgpSteering) and site in steering.sites:
                table = str(steering.sites[site].table)
                nets.run(["ip", "-n", netns(site), "route", "flush", "table", table], check=False)

    def start_site(self, site: str) -> None:
        """Start whatever of a site's servers is not running (after `stop_all` or
        `kill_all`): the five services, the firewall's backend and the front door."""
        services = self.sites[site]
        for name in SERVICES:
            services.start(name)
        for server in (services.firewall_backend, services.front):
            if server is not None and not server.process.alive:
                server.start()

    def fresh(self, timeout_s: float = 90.0, say: Callable[[str], None] = lambda _: None) -> float:
        """Back to what `up` leaves, without rebuilding namespaces, routers and services:
        daemons killed, cuts healed, every service running, the kernel's steering tables
        empty, fresh name servers and a wiped ZooKeeper (no desired state, no switch budget
        spent, no audit), then the daemons started as `up` starts them and every group steady
        on the preferred site. The seconds it took.

        No stop hook runs: whatever a daemon announced is flushed from the kernel's tables
        here, and the ZooKeeper it would report to is wiped. The ensemble restarts while the
        name servers and the sites' servers come back; the daemons start one after the other
        as `up` starts them (the preferred site's first: it leads; the election queue in the
        order the simulator has it)."""
        started = time.monotonic()
        marks: list[str] = []

        def mark(what: str) -> None:
            marks.append(f"{what} {time.monotonic() - started:.1f} s")

        for daemon in self.daemons.values():
            daemon.process.signal(signal.SIGKILL)  # the supervisor's group: daemon, hook
        for daemon in self.daemons.values():
            daemon.process.wait(5.0)
        self.close_operator()
        self.lab.heal_all()
        assert self.zookeeper is not None
        ensemble = self.zookeeper
        for index in range(ensemble.size):
            ensemble.kill(index)  # wiped by `start`: nothing to shut down cleanly
        mark("stopped")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            zk_ready = pool.submit(ensemble.start, 60.0)
            for site in self.sites:
                self.flush_steering(site)
                self.lab.start(f"{site}-bird")
                self.start_site(site)
            for component in ("dns-primary", "dns-secondary"):
                self.lab.stop(component)
            for component in ("dns-primary", "dns-secondary"):
                self.lab.start(component, fresh=True)
            self.lab.wait_ready()
            mark("routers, name servers, services")
            zk_ready.result(timeout=90.0)
        mark("zookeeper")
        preferred = self.config.preferred_site(self.bgp_group)
        order = sorted(
            self.daemons,
            key=lambda i: (
                self.config.instances[i].site == "witness",
                self.config.instances[i].site != preferred,
            ),
        )
        for instance in order:  # as `up` with agents_first: the preferred site's daemon leads,
            # and the others join the election in the order the model has them
            self.daemons[instance].start()
            with contextlib.suppress(TimeoutError):
                wait_until(
                    functools.partial(self._registered, instance),
                    10.0,
                    f"{instance} registered and a leader",
                    0.05,
                )
        mark("daemons")
        left = max(10.0, timeout_s - (time.monotonic() - started))
        self.wait_steady(preferred, left)
        mark("steady")
        self.wait_healthy(timeout_s=max(10.0, timeout_s - (time.monotonic() - started)))
        mark("healthy")
        say("fresh: " + ", ".join(marks))
        return time.monotonic() - started
