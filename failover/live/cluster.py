"""One file describes the cluster for both the simulator and the lab.

The lab's config is generated from a topology's `config` section (simulations/*.yaml): the same
sites, services, checks and their timers, instances, groups, policy and ZooKeeper hosts, plus
only what the lab needs to reach its own parts (BIRD sockets and namespaces, credential files,
the ZooKeeper chroot). `differences` then compares the generated lab config with the
topology's, field by field, so that a change to either side that makes them drift apart is an
error naming the field (`sites.dc1.services.db.check.fall: topology 3, lab 2`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import yaml

from failover.config import BgpSteering, Config, DnsSteering, parse_config
from failover.config.model import split_host_port
from failover.lab.lab import EXAMPLE_CONFIG
from failover.lab.topology import UPLINKS, netns
from failover.sim.topology import Topology

SECRETS = Path(EXAMPLE_CONFIG).resolve().parent / "secrets"
# Fields only the lab has (how to reach its own parts); never compared.
LAB_ONLY = {
    "bird_socket",
    "netns",
    "protocol",
    "secret_file",
    "credentials_file",
    "keys_file",
    "chroot",
    "daemon_auth",
    "operator_auth",
    "api",
}


def topology_mapping(topology: Topology) -> dict[str, Any]:
    """The topology's `config` section as a mapping (a referenced config file is read)."""
    raw = yaml.safe_load(Path(topology.source).read_text())["config"]
    if isinstance(raw, str):
        path = Path(raw)
        if not path.is_absolute():
            path = Path(topology.source).resolve().parent / path
        raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict)
    return raw


def lab_mapping(topology: Topology, run_dir: str) -> dict[str, Any]:
    """The lab's config for `topology`: its cluster plus the lab's own means of reaching it."""
    data = topology_mapping(topology)
    cluster = data.setdefault("cluster", {})
    zookeeper = cluster.setdefault("zookeeper", {})
    zookeeper["chroot"] = "/failover"
    zookeeper["daemon_auth"] = {"credentials_file": str(SECRETS / "daemon.digest")}
    zookeeper["operator_auth"] = {"credentials_file": str(SECRETS / "operator.digest")}
    cluster["api"] = {"keys_file": str(SECRETS / "api.keys")}
    for group in data.get("groups", {}).values():
        steering = group.get("steering", {})
        if steering.get("method") == "bgp":
            for site, entry in steering.get("sites", {}).items():
                entry["bird_socket"] = f"{run_dir}/{site}/bird.ctl"
                entry["netns"] = netns(site)
                entry["protocol"] = "isp"
        elif steering.get("method") == "dns" and "tsig" in steering:
            steering["tsig"]["secret_file"] = str(SECRETS / "tsig.key")
    return data


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _diff(path: str, left: Any, right: Any, found: list[str]) -> None:
    left, right = _plain(left), _plain(right)
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            if key in LAB_ONLY:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in left or key not in right:
                found.append(
                    f"{where}: topology {left.get(key, '(absent)')}, "
                    f"lab {right.get(key, '(absent)')}"
                )
            else:
                _diff(where, left[key], right[key], found)
    elif left != right:
        found.append(f"{path}: topology {left}, lab {right}")


def differences(topology: Topology, lab: Config) -> list[str]:
    """Every field in which the lab's config differs from the topology's (lab-only fields
    aside), and every ZooKeeper server the lab would place elsewhere than the world model."""
    found: list[str] = []
    _diff("", topology.config.model_dump(), lab.model_dump(), found)
    placed: dict[str, int] = {}
    for entry in lab.cluster.zookeeper.hosts:
        host = split_host_port(entry)[0]
        site = next(
            (
                name
                for name, uplink in UPLINKS.items()
                if uplink.lan and ipaddress.ip_address(host) in ipaddress.ip_network(uplink.lan)
            ),
            "(no site)",
        )
        placed[site] = placed.get(site, 0) + 1
    wanted = {site: n for site, n in topology.world.zookeeper.servers.items() if n}
    if placed != wanted:
        found.append(
            f"world.zookeeper.servers: topology {wanted}, lab (cluster.zookeeper.hosts) {placed}"
        )
    return found


def lab_config(topology: Topology, run_dir: str) -> tuple[dict[str, Any], Config]:
    """The lab's config mapping and its parsed form; ValueError naming every differing field."""
    data = lab_mapping(topology, run_dir)
    config = parse_config(yaml.safe_dump(data, sort_keys=False), source=f"{topology.source} (lab)")
    problems = differences(topology, config)
    if problems:
        raise ValueError(
            f"{topology.source}: the lab's config and the topology differ: " + "; ".join(problems)
        )
    for group in config.groups.values():
        if not isinstance(group.steering, BgpSteering | DnsSteering):
            raise ValueError(f"{topology.source}: unknown steering in the lab")
    return data, config
