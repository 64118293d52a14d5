"""Routers and name servers in the simulated world, and the simulated steerers through which
the daemon's own roles change them (`failover.daemon.agent.Agent` drives a `SimRoute` per BGP
group of its site; `failover.daemon.leader.Leader` drives a `SimZone` per DNS group).

The world part decides nothing: a route is what the last steering call or the supervisor's
stop hook put there (or gone with the routers' power); a zone holds the newest epoch any update
carried, and refuses an older one (the epoch record's prerequisite). A route outlives its
process; the stop hook holds a dead or frozen agent's primary within `stop_hook_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from failover.config.model import BgpSteering
from failover.core.graceful import dns_ttl
from failover.core.model import Announcement, GroupState
from failover.sim.topology import CLIENTS
from failover.steer.base import (
    RouteSteerer,
    Steerer,
    SteerResult,
    bgp_plan,
    fail_open_problem,
)

if TYPE_CHECKING:
    from failover.sim.world import World


class Steering:
    """What each site's routers announce and what the name servers answer, per group."""

    def __init__(self, world: World) -> None:
        self.world = world
        groups = world.config.groups
        self.groups = list(groups)
        self.bgp = {g: isinstance(groups[g].steering, BgpSteering) for g in self.groups}
        self.backup = {
            g: s.backup if isinstance(s, BgpSteering) else False
            for g, s in ((g, groups[g].steering) for g in self.groups)
        }
        self.route: dict[tuple[str, str], Announcement] = {}  # (group, site): in effect
        self.epoch: dict[tuple[str, str], int] = {}  # (group, site): epoch of the route's steering
        self.dns: dict[str, tuple[str, int]] = {}  # group -> (site, epoch) at the name servers
        self.ttl_s: dict[str, float] = {  # group -> the TTL its records carry there now
            g: float(getattr(groups[g].steering, "ttl", 0)) for g in self.groups
        }

    def bootstrap(self, desired: dict[str, GroupState]) -> None:
        """The cluster has run for long: every site announces what the desired state says."""
        for group in self.groups:
            state = desired[group]
            for site in self.world.serving:
                self.route[(group, site)] = state.announcement(site, self.backup[group])
                self.epoch[(group, site)] = state.epoch
            if not self.bgp[group]:
                self.dns[group] = (state.active, state.epoch)

    # --- the routers -----------------------------------------------------------------------

    def set_route(
        self,
        key: tuple[str, str],
        announced: Announcement,
        why: str,
        epoch: int | None = None,
        fault: bool = False,
    ) -> None:
        """Change what a site's router announces. `epoch`: the desired state's epoch an agent
        applied (None: the stop hook or a fault, which keep the epoch); `fault`: not steering
        at all (the routers lost power)."""
        if epoch is not None and epoch > self.epoch.get(key, 0):
            self.epoch[key] = epoch
        if self.route[key] == announced:
            return
        old = self.route[key]
        self.route[key] = announced
        self.world.log("route", f"{key[1]} {key[0]} {announced}: {why}")
        self.world.traffic.route_changed(key, announced)
        self.world.checker.route_changed(key, old, announced, epoch, fault)

    def stop_hook(self, site: str, daemon: str) -> None:
        """The supervisor's stop hook, run when an agent's process ends (on `daemon`'s host):
        it holds the site's primary (never demotes further) within
        `cluster.daemon.stop_hook_s`."""
        hook_s = self.world.config.cluster.daemon.stop_hook_s
        self.world.after(hook_s, self._stop_hook_ran, (site, daemon))

    def _stop_hook_ran(self, arg: tuple[str, str]) -> None:
        site, daemon = arg
        world = self.world
        if not world.power[site] or world.control.agent_running(site):
            return  # restarted already (it took over its routes), or the routers are off
        router = world.routers[site]
        if not world.connected(daemon, router):
            world.log("route", f"{site}: the stop hook on {daemon} cannot reach {router}")
            return
        for group in self.groups:
            key = (group, site)
            if self.bgp[group] and self.route[key] == "primary":
                self.set_route(key, "held", "stop hook holds the primary")

    def power_changed(self, site: str, on: bool) -> None:
        """A site's routers lose power (their routes go) or boot (announcing nothing yet)."""
        if site not in self.world.serving or on:
            return
        for group in self.groups:
            if self.bgp[group]:
                self.set_route((group, site), "withdrawn", "routers lost power", fault=True)

    # --- the name servers ------------------------------------------------------------------

    def update_zone(
        self, group: str, site: str, epoch: int, sender: str, ttl_s: float
    ) -> SteerResult:
        """An RFC 2136 update from `sender`'s location, with the epoch record's prerequisite,
        writing records with `ttl_s` (a graceful switchover's short TTL, or the configured)."""
        world = self.world
        if not world.reach(sender, CLIENTS):
            return SteerResult(
                group, site, epoch, "withdrawn", "failed", "name servers unreachable"
            )
        held_site, held_epoch = self.dns[group]
        if held_epoch > epoch:
            return SteerResult(
                group,
                held_site,
                held_epoch,
                "primary",
                "refused",
                f"prerequisite failed: the zone holds epoch {held_epoch}",
            )
        changed = (held_site, held_epoch) != (site, epoch)
        if changed:
            self.dns[group] = (site, epoch)
            cached_s, self.ttl_s[group] = self.ttl_s[group], ttl_s
            if held_site != site:
                world.log("dns", f"{group} -> {site} (epoch {epoch})")
            world.checker.dns_changed(group, site, epoch)
            if held_site != site:  # resolvers hold the old answer as long as its TTL said
                world.traffic.dns_changed(group, site, cached_s)
        return SteerResult(group, site, epoch, "primary", "verified", changed=changed)


class SimRoute(RouteSteerer):
    """One site's router for one BGP group, as the agent's steerer (`BirdSteerer` in a site),
    driven from `sender` (the agent's daemon). While the two are cut apart every call fails;
    the daemon's periodic cycle (every `cycle_s`, `retry`) tries again."""

    def __init__(
        self,
        steering: Steering,
        group: str,
        site: str,
        sender: str = "",
        retry: Callable[[], None] = lambda: None,
    ) -> None:
        self.world_steering = steering
        self.group = group
        self.site = site
        self.sender = sender
        self.retry = retry
        config = steering.world.config.groups[group].steering
        assert isinstance(config, BgpSteering)
        self.config = config

    def apply(
        self, state: GroupState, *, force: bool = False, deadline_s: float | None = None
    ) -> SteerResult:
        plan = bgp_plan(state, list(self.config.sites), self.config.backup)
        return self.announce(plan[self.site], state.epoch, plan=plan, force=force)

    def announce(
        self,
        announcement: Announcement,
        epoch: int,
        *,
        plan: dict[str, Announcement] | None = None,
        force: bool = False,
        deadline_s: float | None = None,
    ) -> SteerResult:
        key = (self.group, self.site)
        if not self._reachable():
            return self._result(
                "failed", f"{self.world_steering.world.routers[self.site]} unreachable"
            )
        if announcement == "withdrawn" and not force:
            problem = fail_open_problem(self.group, plan or {self.site: "withdrawn"})
            if problem:
                return self._result("refused", problem)
        changed = self.world_steering.route[key] != announcement
        self.world_steering.set_route(key, announcement, f"epoch {epoch}", epoch)
        return self._result("verified", changed=changed, epoch=epoch)

    def read(self) -> SteerResult:
        if not self._reachable():
            return self._result(
                "failed", f"{self.world_steering.world.routers[self.site]} unreachable"
            )
        return self._result("verified")

    def _reachable(self) -> bool:
        world = self.world_steering.world
        if not self.sender or world.connected(self.sender, world.routers[self.site]):
            return True
        world.after(world.config.cluster.daemon.cycle_s, lambda _: self.retry())
        return False

    def _result(
        self, outcome: str, detail: str = "", changed: bool = False, epoch: int | None = None
    ) -> SteerResult:
        key = (self.group, self.site)
        return SteerResult(
            self.group,
            self.site,
            self.world_steering.epoch.get(key, 0) if epoch is None else epoch,
            self.world_steering.route[key],
            outcome,  # type: ignore[arg-type]
            detail,
            changed,
        )


class SimZone(Steerer):
    """A DNS group's names at the name servers, as the leader's steerer (`Rfc2136Steerer`),
    sending from the leader's site. `retry` runs when an update could not be delivered: the
    daemon's periodic cycle (every `cycle_s`) tries again."""

    def __init__(
        self, steering: Steering, group: str, sender: str, retry: Callable[[], None]
    ) -> None:
        self.world_steering = steering
        self.group = group
        self.site = sender
        self.retry = retry

    def apply(
        self, state: GroupState, *, force: bool = False, deadline_s: float | None = None
    ) -> SteerResult:
        steering = self.world_steering
        configured = int(getattr(steering.world.config.groups[self.group].steering, "ttl", 0))
        result = steering.update_zone(
            self.group, state.active, state.epoch, self.site, float(dns_ttl(state, configured))
        )
        if result.outcome == "failed":
            world = self.world_steering.world
            world.after(world.config.cluster.daemon.cycle_s, lambda _: self.retry())
        return result

    def read(self) -> SteerResult:
        site, epoch = self.world_steering.dns[self.group]
        return SteerResult(self.group, site, epoch, "primary", "verified")
