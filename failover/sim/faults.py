"""Faults and operator actions, as written in playbooks and drawn by campaigns.

A fault names things the way an operator would (a site, a service, an instance, a link
between two locations); `active`/`standby` name a group's current sites and `leader` the
current leader, resolved when the fault starts. Nothing here is specific to the simulator:
the live lab injects the same faults with its own means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from failover.core.model import Command
from failover.sim.topology import CLIENTS, ISP, router_name
from failover.sim.world import FaultRecord, World


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceFault(Strict):
    kind: Literal["service_down", "service_flap", "service_slow", "service_partial"]
    site: str
    service: str
    group: str | None = None  # whose active/standby site `site` may name
    latency_s: float | None = Field(default=None, gt=0, description="service_slow")
    period_s: float | None = Field(default=None, gt=0, description="service_flap")
    up_s: float | None = Field(default=None, gt=0, description="service_flap: time up per flap")
    down_s: float | None = Field(default=None, gt=0, description="service_flap: time down per flap")
    fraction: float = Field(default=0.5, gt=0, le=1, description="service_partial")


class PowerLoss(Strict):
    kind: Literal["site_power_loss"]
    site: str
    group: str | None = None


class LinkFault(Strict):
    kind: Literal["link_cut", "link_latency", "probe_loss"]
    between: tuple[str, str] = Field(
        description="two locations: sites, `clients`, `active`/`standby`; a `link_cut` may also "
        "name a daemon (its instance), a ZooKeeper server (`zk-SITE-N`) or a serving site's edge "
        "router (`router-SITE`: cut from `isp`, its BGP session and the clients' way in through "
        "it fail, the isp drops its routes after `bgp_hold_s`; cut from a daemon, that daemon's "
        "agent and stop hook cannot change its routes); a `probe_loss` between "
        "a site and itself: loss on that site's own checks"
    )
    one_way: bool = Field(default=False, description="only from the first to the second")
    latency_s: float = Field(default=0.5, gt=0, description="link_latency")
    loss: float = Field(default=0.3, gt=0, le=1, description="probe_loss")
    group: str | None = None


class ZooKeeperFault(Strict):
    kind: Literal["zookeeper_server_down"]
    site: str
    count: int = Field(default=1, ge=1)
    group: str | None = None


class ClockSkew(Strict):
    """A site's wall clock runs off (its NTP failed): `offset_s` at once, then `drift_ppm`."""

    kind: Literal["clock_skew"]
    site: str
    offset_s: float = Field(default=30.0, allow_inf_nan=False, ge=-86400, le=86400)
    drift_ppm: float = Field(default=0.0, allow_inf_nan=False, ge=-1e5, le=1e5)
    group: str | None = None


class DaemonFault(Strict):
    """`daemon_pause` freezes the process; `stale_writer` freezes a leader at its next commit,
    between its read and the commit: once resumed, that commit reaches the coordinator."""

    kind: Literal["daemon_crash", "daemon_pause", "stale_writer"]
    instance: str = Field(
        description="an instance name, `leader` (whoever leads then), or "
        "`agent:SITE` (the daemon holding that site's agent)"
    )


class Switchover(Strict):
    kind: Literal["switchover"]
    site: str
    group: str | None = None
    force: bool = False
    expires_s: float | None = Field(default=None, gt=0)
    in_s: float | None = Field(
        default=None, gt=0, description="scheduled: runs this much later (the operator's --at +N s)"
    )
    graceful: bool | None = Field(
        default=None,
        description="a planned switchover that loses nothing (the operator's --graceful); "
        "default: policy.graceful_switchover",
    )
    by: str = "operator"
    reason: str = "game day"


class Freeze(Strict):
    kind: Literal["freeze", "unfreeze"]
    group: str | None = None
    by: str = "operator"
    reason: str = "maintenance"


FaultSpec = Annotated[
    ServiceFault
    | PowerLoss
    | LinkFault
    | ZooKeeperFault
    | ClockSkew
    | DaemonFault
    | Switchover
    | Freeze,
    Field(discriminator="kind"),
]
OPERATOR_KINDS = ("switchover", "freeze", "unfreeze")


def resolve_site(world: World, name: str, group: str | None) -> str:
    if name not in ("active", "standby"):
        return name
    state = world.control.desired[group or next(iter(world.config.groups))]
    return state.active if name == "active" else world.engine.layout.other(state.active)


def problems(
    spec: FaultSpec,
    sites: list[str],
    serving: list[str],
    services: list[str],
    instances: list[str],
    groups: list[str],
    servers: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(field, message) for every name that the topology does not know (`servers`: the
    ZooKeeper servers' locations)."""
    found: list[tuple[str, str]] = []
    any_site = sites + ["active", "standby"]
    group = getattr(spec, "group", None)
    if group is not None and group not in groups:
        found.append(("group", f"unknown group {group!r} (groups: {', '.join(groups)})"))
    if isinstance(spec, ServiceFault):
        if spec.site not in serving + ["active", "standby"]:
            found.append(("site", f"{spec.site!r} is not a serving site"))
        if spec.service not in services:
            found.append(("service", f"unknown service {spec.service!r}"))
    elif isinstance(spec, PowerLoss | ZooKeeperFault | ClockSkew) and spec.site not in any_site:
        found.append(("site", f"unknown site {spec.site!r}"))
    elif isinstance(spec, LinkFault):
        routers = [router_name(site) for site in serving]
        fine = [*instances, *servers, *routers, ISP]
        for end in spec.between:
            if end in fine and (spec.kind != "link_cut" or spec.one_way):
                found.append(
                    (
                        "between",
                        f"{end!r}: only a two-way link_cut reaches a daemon, server or router",
                    )
                )
            elif end not in any_site + [CLIENTS] + fine:
                found.append(("between", f"unknown location {end!r}"))
        if ISP in spec.between and not set(spec.between) & set(routers):
            found.append(
                ("between", f"'isp' pairs only with a site's router ({', '.join(routers)})")
            )
        same = spec.between[0] == spec.between[1]
        if same and (spec.kind != "probe_loss" or spec.between[0] not in sites):
            found.append(
                ("between", "a link joins two different locations (one site twice: probe_loss)")
            )
    elif isinstance(spec, DaemonFault) and spec.instance not in instances + ["leader"] + [
        f"agent:{site}" for site in serving
    ]:
        found.append(("instance", f"unknown instance {spec.instance!r}"))
    elif isinstance(spec, Switchover) and spec.site not in serving + ["active", "standby"]:
        found.append(("site", f"{spec.site!r} is not a serving site"))
    return found


def inject(world: World, spec: FaultSpec, label: str = "") -> Callable[[], None]:
    """Start a fault now; returns what ends it (a no-op for instantaneous actions)."""
    if isinstance(spec, Switchover | Freeze):
        _operator(world, spec)
        return lambda: None
    if isinstance(spec, ServiceFault):
        return _service(world, spec, label)
    if isinstance(spec, PowerLoss):
        site = resolve_site(world, spec.site, spec.group)
        record = world.open_fault(
            spec.kind, label or f"{site} loses power", (site,), places=(site,)
        )
        world.set_power(site, False)
        return _ender(world, record, lambda: world.set_power(site, True))
    if isinstance(spec, LinkFault):
        return _link(world, spec, label)
    if isinstance(spec, ClockSkew):
        return _clock(world, spec, label)
    if isinstance(spec, ZooKeeperFault):
        return _zookeeper(world, spec, label)
    return _daemon(world, spec, label)


def _ender(world: World, record: FaultRecord, undo: Callable[[], None]) -> Callable[[], None]:
    def end() -> None:
        if record.end is None:
            world.close_fault(record)
            undo()

    return end


def _service(world: World, spec: ServiceFault, label: str) -> Callable[[], None]:
    site = resolve_site(world, spec.site, spec.group)
    service = world.services[(site, spec.service)]
    words = {
        "service_down": "stops",
        "service_flap": "flaps",
        "service_slow": "slows down",
        "service_partial": f"fails {spec.fraction:.0%} of requests",
    }
    record = world.open_fault(
        spec.kind,
        label or f"{site} {spec.service} {words[spec.kind]}",
        (site,),
        places=(site,),
        service=spec.service,
    )
    fid = record.id
    if spec.kind == "service_down":
        service.down += 1
    elif spec.kind == "service_slow":
        service.slow_s[fid] = spec.latency_s or world.model.services.slow_latency_s
    elif spec.kind == "service_partial":
        service.partial[fid] = spec.fraction
    else:
        service.flapping[fid] = False
        period = spec.period_s or world.model.services.flap_period_s
        up_s, down_s = spec.up_s or period / 2, spec.down_s or period / 2

        def toggle(_: object) -> None:
            if fid in service.flapping:
                up = service.flapping[fid] = not service.flapping[fid]
                world.log("flap", f"{site} {spec.service} {'up' if up else 'down'}")
                world.world_changed((site,))
                world.after(up_s if up else down_s, toggle)

        world.after(down_s, toggle)
    world.world_changed((site,))

    def undo() -> None:
        if spec.kind == "service_down":
            service.down -= 1
        service.slow_s.pop(fid, None)
        service.partial.pop(fid, None)
        service.flapping.pop(fid, None)
        world.world_changed((site,))

    return _ender(world, record, undo)


def _link(world: World, spec: LinkFault, label: str) -> Callable[[], None]:
    a, b = (resolve_site(world, end, spec.group) if end != CLIENTS else end for end in spec.between)
    if a not in world.links_of or b not in world.links_of:
        return _fine_cut(world, a, b, label)
    directions = [(a, b)] if spec.one_way or a == b else [(a, b), (b, a)]
    serving = world.serving
    inter = spec.kind == "link_cut" and {a, b} == set(serving)
    arrow = "->" if spec.one_way else "<->"
    what = {
        "link_cut": "cut",
        "link_latency": f"+{spec.latency_s:g} s latency",
        "probe_loss": f"{spec.loss:.0%} loss",
    }[spec.kind]
    # only a fault between the clients and a site hurts that site's serving
    touched = tuple(s for s in (a, b) if s in serving) if CLIENTS in (a, b) else ()
    record = world.open_fault(
        spec.kind,
        label or f"link {a}{arrow}{b} {what}",
        touched,
        inter,
        places=tuple(end for end in (a, b) if end != CLIENTS),
    )
    for key in directions:
        link = world.links[key]
        if spec.kind == "link_cut":
            link.cut += 1
        elif spec.kind == "link_latency":
            link.extra_s[record.id] = spec.latency_s
        else:
            link.loss[record.id] = spec.loss
    world.world_changed((a, b))

    def undo() -> None:
        for key in directions:
            link = world.links[key]
            if spec.kind == "link_cut":
                link.cut -= 1
            link.extra_s.pop(record.id, None)
            link.loss.pop(record.id, None)
        world.world_changed((a, b))

    return _ender(world, record, undo)


def _fine_cut(world: World, a: str, b: str, label: str) -> Callable[[], None]:
    """A cut between two locations of which one is a daemon, a ZooKeeper server, a router or
    the isp."""
    pair = frozenset((a, b))
    sites = tuple(dict.fromkeys(world.place[end] for end in (a, b) if world.place[end] != CLIENTS))
    # a router cut from the isp: the clients' way into its site
    touched = tuple(world.place[end] for end in (a, b) if end in world.routers.values())
    record = world.open_fault(
        "link_cut",
        label or f"link {a}<->{b} cut",
        touched if ISP in pair else (),
        places=sites,
    )
    world.cuts[pair] = world.cuts.get(pair, 0) + 1
    world.world_changed(sites)

    def undo() -> None:
        world.cuts[pair] -= 1
        if not world.cuts[pair]:
            del world.cuts[pair]
        world.world_changed(sites)

    return _ender(world, record, undo)


def _clock(world: World, spec: ClockSkew, label: str) -> Callable[[], None]:
    site = resolve_site(world, spec.site, spec.group)
    record = world.open_fault(
        spec.kind,
        label
        or f"{site}'s clock {spec.offset_s:+g} s"
        + (f", {spec.drift_ppm:+g} ppm" if spec.drift_ppm else ""),
        places=(site,),
    )
    world.clock_skew[site] = (spec.offset_s, spec.drift_ppm * 1e-6, world.now)

    def undo() -> None:
        world.clock_skew.pop(site, None)

    return _ender(world, record, undo)


def _zookeeper(world: World, spec: ZooKeeperFault, label: str) -> Callable[[], None]:
    site = resolve_site(world, spec.site, spec.group)
    stopped: list[int] = []
    for index, (where, up) in enumerate(world.zk_servers):
        if where == site and up and len(stopped) < spec.count:
            world.zk_servers[index] = (where, False)
            stopped.append(index)
    record = world.open_fault(
        spec.kind, label or f"{len(stopped)} ZooKeeper server(s) in {site} stop", places=(site,)
    )
    world.refresh_coordination()

    def undo() -> None:
        for index in stopped:
            world.zk_servers[index] = (world.zk_servers[index][0], True)
        world.refresh_coordination()

    return _ender(world, record, undo)


def _daemon(world: World, spec: DaemonFault, label: str) -> Callable[[], None]:
    name = (
        world.leader
        if spec.instance == "leader"
        else world.control.agent_owner(spec.instance.removeprefix("agent:"))
        if spec.instance.startswith("agent:")
        else spec.instance
    )
    if name is None:
        world.log("fault", f"{spec.kind}: no leader to hit")
        return lambda: None
    daemon = world.daemons[name]
    # A site's agent is what may hold its primary announcement: losing it is a fault of the site.
    touched = (daemon.site,) if world.control.agent_owner(daemon.site) == name else ()
    if spec.kind == "daemon_crash":
        record = world.open_fault(
            spec.kind, label or f"{name} crashes", touched, places=(daemon.site,)
        )
        daemon.held_down += 1
        world.crash(name, "crashed", restart=False)

        def restart() -> None:
            daemon.held_down -= 1
            if not daemon.alive and not daemon.held_down and world.power[daemon.site]:
                world.start(name, launched=True)

        return _ender(world, record, restart)
    if spec.kind == "stale_writer":
        record = world.open_fault(
            spec.kind,
            label or f"{name} freezes between its read and its commit",
            touched,
            places=(daemon.site,),
        )
        world.control.stall(name)
        return _ender(world, record, lambda: world.resume(name))
    record = world.open_fault(spec.kind, label or f"{name} freezes", touched, places=(daemon.site,))
    world.pause(name)
    return _ender(world, record, lambda: world.resume(name))


def _operator(world: World, spec: Switchover | Freeze) -> None:
    world._fault_ids += 1
    ident = f"cmd-{world._fault_ids}"
    if isinstance(spec, Switchover):
        site = resolve_site(world, spec.site, spec.group)
        record = world.open_fault("operator", f"operator: switchover to {site}")
        at = None if spec.in_s is None else world.now + spec.in_s
        command = Command(
            ident,
            "switchover",
            spec.by,
            spec.reason,
            spec.group,
            site,
            spec.force,
            at,
            spec.expires_s,
            world.now,
            graceful=spec.graceful,
        )
    else:
        record = world.open_fault("operator", f"operator: {spec.kind}")
        command = Command(
            ident, spec.kind, spec.by, spec.reason, spec.group, requested_at=world.now
        )
    world.close_fault(record)
    world.control.submit(command)
