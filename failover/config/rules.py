"""Rules that span several fields of a config, each reported with its dotted path."""

from __future__ import annotations

from failover.config.model import BgpSteering, Config, Group
from failover.config.problem import Problem


def cross_field_problems(config: Config) -> list[Problem]:
    """Rules that span several fields, each a `Problem` (dotted path, message, value)."""
    problems: list[Problem] = []
    serving = config.serving_sites
    if len(serving) != 2:
        problems.append(
            Problem(
                "sites",
                f"exactly two serving sites are required, found {len(serving)} ({serving})",
                serving,
            )
        )
    for name, instance in config.instances.items():
        if instance.site not in config.sites:
            problems.append(
                Problem(f"instances.{name}.site", f"unknown site {instance.site!r}", instance.site)
            )
    apis = [instance.api for instance in config.instances.values()]
    for api in sorted({a for a in apis if apis.count(a) > 1}):
        problems.append(
            Problem("instances", f"api address {api!r} is used by more than one instance", api)
        )
    problems += _duplicate_endpoints(config)
    quorum = config.policy.observer_quorum
    if quorum is not None and quorum > len(config.observer_sites):
        problems.append(
            Problem(
                "policy.observer_quorum",
                f"{quorum} exceeds the {len(config.observer_sites)} observer sites",
                quorum,
            )
        )
    for label, site in (("policy.preferred_site", config.policy.preferred_site),) + tuple(
        (f"groups.{g}.preferred_site", group.preferred_site) for g, group in config.groups.items()
    ):
        if site is not None and site not in serving:
            problems.append(Problem(label, f"{site!r} is not a serving site", site))
    for name, group in config.groups.items():
        problems += _group_problems(config, name, group)
    daemon = config.cluster.daemon
    if daemon.heartbeat_s >= config.policy.stale_after_s:
        problems.append(
            Problem(
                "cluster.daemon.heartbeat_s",
                f"{daemon.heartbeat_s:g} must be less than "
                f"policy.stale_after_s ({config.policy.stale_after_s:g})",
                daemon.heartbeat_s,
            )
        )
    if daemon.watchdog_s <= 2 * daemon.cycle_s:
        problems.append(
            Problem(
                "cluster.daemon.watchdog_s",
                f"{daemon.watchdog_s:g} must be more than twice "
                f"cluster.daemon.cycle_s ({daemon.cycle_s:g}): the watchdog is fed once a cycle",
                daemon.watchdog_s,
            )
        )
    for name in config.groups:
        lease = config.lease_s(name)
        if lease and lease <= 2 * daemon.cycle_s:
            problems.append(
                Problem(
                    f"groups.{name}.steering.lease_s",
                    f"{lease:g} must be more than twice "
                    f"cluster.daemon.cycle_s ({daemon.cycle_s:g}): an agent confirms its primary "
                    "once a cycle",
                    lease,
                )
            )
    return problems


def _duplicate_endpoints(config: Config) -> list[Problem]:
    seen: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for site_name, site in config.sites.items():
        for service_name, service in site.services.items():
            for endpoint in service.endpoints:
                key = (service.check.type, endpoint)
                here = f"sites.{site_name}.services.{service_name}"
                if key in seen:
                    problems.append(
                        Problem(
                            f"{here}.endpoints",
                            f"{endpoint!r} is already probed by {seen[key]}",
                            endpoint,
                        )
                    )
                seen.setdefault(key, here)
    return problems


def _group_problems(config: Config, name: str, group: Group) -> list[Problem]:
    problems: list[Problem] = []
    where = f"groups.{name}"
    for service in group.services:
        for site in config.serving_sites:
            if service not in config.sites[site].services:
                problems.append(
                    Problem(
                        f"{where}.services", f"{service!r} is not a service of site {site}", service
                    )
                )
    steering = group.steering
    if isinstance(steering, BgpSteering):
        for site in config.serving_sites:
            if site not in steering.sites:
                problems.append(
                    Problem(f"{where}.steering.sites", f"serving site {site!r} is missing", site)
                )
        for site in steering.sites:
            if site not in config.serving_sites:
                problems.append(
                    Problem(f"{where}.steering.sites", f"{site!r} is not a serving site", site)
                )
    else:
        for record, per_site in steering.names.items():
            for site in config.serving_sites:
                if site not in per_site:
                    problems.append(
                        Problem(
                            f"{where}.steering.names.{record}", f"no addresses for {site}", site
                        )
                    )
            for site in per_site:
                if site not in config.serving_sites:
                    problems.append(
                        Problem(
                            f"{where}.steering.names.{record}",
                            f"{site!r} is not a serving site",
                            site,
                        )
                    )
            flat = [a for addresses in per_site.values() for a in addresses]
            for address in sorted({a for a in flat if flat.count(a) > 1}):
                problems.append(
                    Problem(
                        f"{where}.steering.names.{record}",
                        f"address {address} is given twice",
                        address,
                    )
                )
    return problems


# --- warnings: valid, but a timer is risky ----------------------------------------------------

ZOOKEEPER_DEFAULT_TICK_S = 2.0  # tickTime 2000; a session is granted 2..20 ticks
BLIP_S = 1.0  # a target stalling this long (a GC pause, a checkpoint, a route flap) is ordinary
OVERLAP = 0.8  # a timeout above this share of the interval leaves no room for a late start


def timer_warnings(config: Config) -> list[str]:
    """Timers that pass validation but make a false failover or a late check likely, each as
    'dotted.path[, path...]: what is risky (the values)'; checks with the same risk share one
    line. `failover validate` prints them and still exits 0."""
    warnings: list[str] = []
    zk = config.cluster.zookeeper
    if zk.session_timeout_s < 2 * ZOOKEEPER_DEFAULT_TICK_S:
        warnings.append(
            f"cluster.zookeeper.session_timeout_s: {zk.session_timeout_s:g} s is below what "
            f"ZooKeeper grants with its default tickTime ({ZOOKEEPER_DEFAULT_TICK_S * 1000:.0f} "
            f"ms: at least 2 ticks, {2 * ZOOKEEPER_DEFAULT_TICK_S:g} s); every server needs "
            f"tickTime <= {zk.session_timeout_s * 500:.0f} ms (and a timeout of at least 5 "
            "ticks rides out a ZooKeeper leader election without losing the session)"
        )
    by_text: dict[str, list[str]] = {}
    hold_down = config.policy.hold_down_s
    grouped = {s for group in config.groups.values() for s in group.services}
    for site_name, site in config.sites.items():
        for name, service in site.services.items():
            check = service.check
            where = f"sites.{site_name}.services.{name}.check"
            if check.timeout_s > OVERLAP * check.interval_s:
                by_text.setdefault(
                    f"timeout_s {check.timeout_s:g} s is close to interval_s "
                    f"{check.interval_s:g} s: a slow target makes the next check start late, "
                    "and detection slower than interval x fall",
                    [],
                ).append(where)
            if check.fast_interval_s is not None and check.timeout_s > check.fast_interval_s:
                by_text.setdefault(
                    f"timeout_s {check.timeout_s:g} s exceeds fast_interval_s "
                    f"{check.fast_interval_s:g} s: while a verdict changes, a check that times "
                    "out delays the next re-check",
                    [],
                ).append(where)
            if name not in grouped or service.role == "degraded":
                continue
            down_after = (check.fall - 1) * check.recheck_s
            if down_after + hold_down < BLIP_S:
                by_text.setdefault(
                    f"an outage of the target of {down_after:.2g} s (fall {check.fall}, "
                    f"re-check every {check.recheck_s:g} s) is a down verdict, and with "
                    f"policy.hold_down_s ({hold_down:g} s) traffic moves: under {BLIP_S:g} s "
                    "in all, so a GC pause or a route flap that every observer sees is a "
                    "failover (cooldown and the switch budget bound flapping)",
                    [],
                ).append(where)
    warnings += [f"{', '.join(paths)}: {text}" for text, paths in by_text.items()]
    short = config.policy.graceful_ttl_s
    for name, group in config.groups.items():
        ttl = getattr(group.steering, "ttl", None)
        if ttl is not None and short >= ttl:
            warnings.append(
                f"policy.graceful_ttl_s: {short} s is not shorter than groups.{name}.steering.ttl "
                f"({ttl} s): a graceful switchover of {name} lowers nothing, and caches may "
                "hold the old answer that long after the switch"
            )
    return warnings
