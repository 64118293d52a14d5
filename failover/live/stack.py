"""The lab's `Stack` built for a topology: its config generated from the topology's, its
ZooKeeper layout (the reference: 2+2+1, each server on its own address in its site's LAN)."""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from failover.config.model import split_host_port
from failover.lab.netns import LabError
from failover.lab.stack import Stack
from failover.lab.topology import RUN_DIR, UPLINKS, netns
from failover.live.cluster import differences, lab_config
from failover.sim.topology import Topology
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
        return ZooKeeperEnsemble(
            self.dir / "zookeeper",
            len(hosts),
            tick_ms=self.tick_ms,
            hosts=hosts,
            netns=list(spaces),
            client_port=ports.pop(),
            jvm_heap_mb=192,
        )
