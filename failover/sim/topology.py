"""A simulation topology: a normal cluster config plus the world it runs in.

The world model says what the config cannot: where the ZooKeeper servers stand, how fast the
network and the steering are, how the daemons are supervised and how clients reach the sites.
Everything is validated with pydantic; every problem is reported by its dotted path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from failover.config import Config, ConfigError, Problem
from failover.config.load import load_mapping, pydantic_problems, read_text, resolve_files
from failover.config.rules import cross_field_problems

CLIENTS = "clients"  # the location the client traffic comes from
ISP = "isp"  # the upstream router the sites' edge routers peer with (on the clients' side)


def router_name(site: str) -> str:
    """A serving site's edge router, a location of its own: `router-SITE`."""
    return f"router-{site}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZooKeeperWorld(Strict):
    """The ensemble: how many servers stand in each site, and its timers (as the lab's
    `LiveStack` writes them into every server's zoo.cfg)."""

    servers: dict[str, int] = Field(min_length=1)
    election_s: float = Field(
        default=0.4,
        ge=0,
        description="a new quorum serves this long after its servers start electing "
        "(measured in the lab after a kill -9 of the leader: clients back in 0.40-0.70 s)",
    )
    tick_ms: int = Field(default=200, gt=0, description="tickTime")
    sync_limit: int = Field(
        default=5,
        gt=0,
        description="syncLimit: a follower that hears nothing from its leader for this many "
        "ticks leaves the quorum and drops its clients (so does a leader without a majority)",
    )
    init_limit: int = Field(default=10, gt=0, description="initLimit (zoo.cfg only)")

    @property
    def silent_s(self) -> float:
        """How long servers take to notice a silently lost peer (a cut, a power loss):
        tickTime x syncLimit. A killed peer's connection resets at once."""
        return self.tick_ms * self.sync_limit / 1000.0

    @model_validator(mode="after")
    def _positive(self) -> ZooKeeperWorld:
        for site, count in self.servers.items():
            if count < 0:
                raise ValueError(f"servers.{site}: a count cannot be negative ({count})")
        if sum(self.servers.values()) < 1:
            raise ValueError("servers: the ensemble needs at least one server")
        return self


def zookeeper_names(zookeeper: ZooKeeperWorld) -> list[tuple[str, str]]:
    """(location, site) of every ZooKeeper server: `zk-SITE-N`, N from 1 in each site."""
    return [
        (f"zk-{site}-{n}", site)
        for site, count in zookeeper.servers.items()
        for n in range(1, count + 1)
    ]


class DaemonWorld(Strict):
    """How the daemons behave and are supervised."""

    react_s: float = Field(default=0.05, gt=0, description="watch to action")
    restart_s: float = Field(default=5.0, gt=0, description="the supervisor restarts after")
    startup_s: float = Field(
        default=0.7,
        ge=0,
        description="a started process (restarted, power back, a crash over) starts its "
        "ZooKeeper client after this, and runs its roles once that has a session (or the "
        "connect gave up after the session timeout), as the runner does; the lab measured "
        "the interpreter's start-up and a quick first connect together (0.54-0.88 s, "
        "median 0.71 s, from the supervisor's start to the daemon's `started`)",
    )
    launch_s: float = Field(
        default=0.3,
        ge=0,
        description="a daemon whose supervisor is started anew (a crash held down is over, "
        "the power is back) waits for that supervisor's own start first; the lab measured "
        "0.18-0.44 s from the fault's end to the supervisor's `started`",
    )


class SteeringWorld(Strict):
    apply_s: float = Field(
        default=0.2,
        gt=0,
        description="a leader's DNS update lands after this (an agent's route: within its cycle)",
    )
    bgp_propagation_s: tuple[float, float] = (1.0, 3.0)
    bgp_hold_s: float = Field(default=9.0, gt=0, description="dead routers' routes vanish after")
    dns_ignore_ttl_fraction: float = Field(default=0.02, ge=0, le=1)
    dns_ignore_ttl_s: float = Field(default=900.0, ge=0)

    @model_validator(mode="after")
    def _range(self) -> SteeringWorld:
        low, high = self.bgp_propagation_s
        if not 0 <= low <= high:
            raise ValueError(f"bgp_propagation_s: need 0 <= min <= max (got {low}, {high})")
        return self


class NetworkWorld(Strict):
    """One-way latency per pair of locations (`a-b`, both directions); sites and `clients`."""

    latency_s: dict[str, float] = {}
    default_latency_s: float = Field(default=0.005, ge=0)

    def pairs(self) -> dict[frozenset[str], float]:
        return {frozenset(key.split("-", 1)): value for key, value in self.latency_s.items()}


class ClientWorld(Strict):
    weights: dict[str, float] = Field(default={}, description="share of traffic per group")
    timeout_s: float = Field(default=2.0, gt=0)
    recovered_at: float = Field(
        default=0.99, gt=0, le=1, description="success rate that counts as recovered"
    )


class ServiceWorld(Strict):
    slow_latency_s: float = Field(default=1.5, gt=0, description="a slow service's extra latency")
    flap_period_s: float = Field(default=20.0, gt=0)


class WorldModel(Strict):
    zookeeper: ZooKeeperWorld
    daemons: DaemonWorld = DaemonWorld()
    steering: SteeringWorld = SteeringWorld()
    network: NetworkWorld = NetworkWorld()
    clients: ClientWorld = ClientWorld()
    services: ServiceWorld = ServiceWorld()


class TopologyFile(Strict):
    name: str
    description: str = ""
    config: dict[str, Any] | str
    world: WorldModel


class Topology:
    """A validated topology: `config` (the cluster) and `world` (what surrounds it)."""

    def __init__(
        self, name: str, description: str, config: Config, world: WorldModel, source: str
    ) -> None:
        self.name = name
        self.description = description
        self.config = config
        self.world = world
        self.source = source

    @property
    def locations(self) -> list[str]:
        return list(self.config.sites) + [CLIENTS]


def load_topology(path: str | Path) -> Topology:
    return parse_topology(read_text(path), str(path), Path(path).resolve().parent)


def parse_topology(text: str, source: str = "<topology>", base: Path | None = None) -> Topology:
    data = load_mapping(text, source)
    try:
        top = TopologyFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, pydantic_problems(exc)) from None
    config = _config(top.config, source, base)
    problems = _world_problems(config, top.world)
    if problems:
        raise ConfigError(source, problems)
    return Topology(top.name, top.description, config, top.world, source)


def _config(raw: dict[str, Any] | str, source: str, base: Path | None) -> Config:
    from failover.config import load_config

    if isinstance(raw, str):
        path = Path(raw) if base is None or Path(raw).is_absolute() else base / raw
        try:
            return load_config(path)
        except ConfigError as exc:
            raise ConfigError(
                source, [Problem(f"config ({raw})", str(p)) for p in exc.problems]
            ) from None
    data = resolve_files(raw, base) if base is not None else raw
    try:
        config = Config.model_validate(data, context={"defer_cross_field_rules": True})
    except ValidationError as exc:
        raise ConfigError(
            source, [Problem(_join("config", p.path), p.message) for p in pydantic_problems(exc)]
        ) from None
    problems = [
        Problem(_join("config", p.path), p.message, p.value) for p in cross_field_problems(config)
    ]
    if problems:
        raise ConfigError(source, problems)
    return config


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def _world_problems(config: Config, world: WorldModel) -> list[Problem]:
    problems = []
    sites = set(config.sites)
    for site in world.zookeeper.servers:
        if site not in sites:
            problems.append(Problem(f"world.zookeeper.servers.{site}", "not a site of the config"))
    locations = sites | {CLIENTS}
    for key in world.network.latency_s:
        parts = key.split("-", 1)
        if len(parts) != 2 or parts[0] == parts[1] or not set(parts) <= locations:
            problems.append(
                Problem(
                    f"world.network.latency_s.{key}",
                    "expected `a-b` with two different locations among "
                    f"{', '.join(sorted(locations))}",
                )
            )
        elif world.network.latency_s[key] < 0:
            problems.append(Problem(f"world.network.latency_s.{key}", "cannot be negative"))
    for group, weight in world.clients.weights.items():
        if group not in config.groups:
            problems.append(Problem(f"world.clients.weights.{group}", "not a group of the config"))
        elif weight < 0:
            problems.append(Problem(f"world.clients.weights.{group}", "cannot be negative"))
    for instance in config.instances.values():
        if "agent" in instance.roles and instance.site in config.serving_sites:
            break
    else:
        problems.append(Problem("config.instances", "no agent runs in a serving site"))
    return problems


def dump(topology: Topology) -> str:
    """The topology as YAML (for reports)."""
    return yaml.safe_dump(
        {"name": topology.name, "world": topology.world.model_dump()}, sort_keys=False
    )
