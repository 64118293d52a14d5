"""The agents in the simulated world: one per serving site, driving `failover.core.agent`.

An agent follows desired state only through `should_apply` (newer epochs) and announces what
`announcement` says for its last confirmation and lease (a connected agent confirms every
cycle; a disconnected one last did when it lost its connection); a route outlives its process,
and the supervisor's stop hook holds a dead or frozen agent's primary within `stop_hook_s`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.config.model import BgpSteering
from failover.core import agent as core_agent
from failover.core.model import Announcement, Applied, GroupState

if TYPE_CHECKING:
    from failover.sim.world import Daemon, World


class Agents:
    """One agent per serving site (its first instance with the agent role)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.owner: dict[str, str] = {}
        for name, daemon in world.daemons.items():
            if "agent" in daemon.roles and daemon.site in world.serving:
                self.owner.setdefault(daemon.site, name)
        self.groups = list(world.config.groups)
        self.bgp = {
            g: isinstance(world.config.groups[g].steering, BgpSteering) for g in self.groups
        }
        self.backup = {
            g: s.backup if isinstance(s, BgpSteering) else False
            for g, s in ((g, world.config.groups[g].steering) for g in self.groups)
        }
        self.cached: dict[str, dict[str, GroupState | None]] = {}
        self.route: dict[tuple[str, str], Announcement] = {}  # (group, site): in effect
        self.epoch: dict[tuple[str, str], int] = {}  # (group, site): epoch of the route's steering
        self.dns: dict[str, tuple[str, int]] = {}  # group -> (site, epoch) at the name servers
        self.applying: dict[tuple[str, str], bool] = {}
        self.unreported: dict[tuple[str, str], Applied] = {}

    def bootstrap(self) -> None:
        desired = self.world.leadership.desired
        for site in self.world.serving:
            self.cached[site] = dict(desired)
            for group in self.groups:
                state = desired[group]
                announced = state.announcement(site, self.backup[group])
                self.route[(group, site)] = announced
                self.epoch[(group, site)] = state.epoch
                self.world.leadership.applied[(group, site)] = Applied(
                    group, site, state.epoch, announced, 0.0, True, "bootstrap"
                )
        for group in self.groups:
            if not self.bgp[group]:
                state = desired[group]
                self.dns[group] = (state.active, state.epoch)

    def daemon(self, site: str) -> Daemon | None:
        name = self.owner.get(site)
        return self.world.daemons[name] if name else None

    # --- triggers ------------------------------------------------------------------------

    def desired_changed(self) -> None:
        for site in self.owner:
            self._soon(site)

    def session_changed(self, daemon: Daemon) -> None:
        if self.owner.get(daemon.site) == daemon.name:
            self._soon(daemon.site)

    def started(self, daemon: Daemon) -> None:
        if self.owner.get(daemon.site) == daemon.name:
            self.cached[daemon.site] = {}
            self._soon(daemon.site)

    def _soon(self, site: str) -> None:
        self.world.after(self.world.model.daemons.react_s, self.evaluate, site)

    def stop_hook(self, daemon: Daemon) -> None:
        """The supervisor's stop hook, run when an agent's process ends: it holds the site's
        primary (never demotes further) within `cluster.daemon.stop_hook_s`."""
        if self.owner.get(daemon.site) != daemon.name:
            return
        for group in self.groups:
            self.applying[(group, daemon.site)] = False
        hook_s = self.world.config.cluster.daemon.stop_hook_s
        self.world.after(hook_s, self._stop_hook_ran, (daemon.name, daemon.gen))

    def _stop_hook_ran(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        daemon = self.world.daemons[name]
        if daemon.gen != gen or not self.world.power[daemon.site]:
            return  # restarted already (it took over its routes), or the routers are off
        for group in self.groups:
            key = (group, daemon.site)
            if self.bgp[group] and self.route[key] == "primary":
                self._set_route(key, "held", "stop hook holds the primary")

    def confirmed_at(self, daemon: Daemon) -> float | None:
        """The start of the agent's last read of desired state on a live session: now while
        connected (it reads every cycle), else when it lost the connection."""
        return self.world.now if daemon.connected else daemon.disconnected_at

    def keep_alive_until(self, daemon: Daemon) -> float:
        """The last instant the daemon may feed its watchdog (`core.agent`): unbounded unless
        its site's primary stands on the lease alone."""
        if self.owner.get(daemon.site) != daemon.name or daemon.connected:
            return float("inf")
        cluster = self.world.config.cluster.daemon
        limits = [
            core_agent.keep_alive_until(
                daemon.disconnected_at,
                lease_s=self.world.config.lease_s(group),
                watchdog_s=cluster.watchdog_s,
                cycle_s=cluster.cycle_s,
            )
            for group in self.groups
            if self.route[(group, daemon.site)] == "primary"
        ]
        return min(limits, default=float("inf"))

    def power_changed(self, site: str, on: bool) -> None:
        """A site's routers lose power (their routes go) or boot (announcing nothing yet)."""
        if site not in self.world.serving:
            return
        for group in self.groups:
            key = (group, site)
            self.applying[key] = False
            if self.bgp[group] and not on:
                self._set_route(key, "withdrawn", "routers lost power", fault=True)

    def _set_route(
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

    # --- the agent's cycle -----------------------------------------------------------------

    def evaluate(self, site: str) -> None:
        world = self.world
        daemon = self.daemon(site)
        if daemon is None or not daemon.running or not world.power[site]:
            return
        cached = self.cached.setdefault(site, {})
        desired = world.leadership.desired
        if daemon.connected:
            for group in self.groups:
                known = cached.get(group)
                if core_agent.should_apply(desired[group].epoch, known.epoch if known else None):
                    cached[group] = desired[group]
        confirmed = self.confirmed_at(daemon)
        for group in self.groups:
            state = cached.get(group)
            lease = world.config.lease_s(group)
            key = (group, site)
            if self.bgp[group]:
                announced, why = core_agent.announcement(
                    state,
                    site,
                    backup=self.backup[group],
                    in_effect=self.route[key],
                    confirmed_at=confirmed,
                    now=world.now,
                    lease_s=lease,
                )
            elif state is not None and daemon.connected:  # DNS: updates need a session
                announced, why = state.announcement(site, False), f"epoch {state.epoch}"
            else:
                announced, why = self.route[key], "no session: DNS stays as it is"
            if self.bgp[group] and announced == "primary" and not daemon.connected:
                ends = core_agent.lease_ends_at(confirmed, lease)
                if ends is not None:
                    world.at(ends, self.evaluate, site)
            epoch = state.epoch if state else self.epoch.get(key, 0)
            if self.bgp[group]:
                if self.route[key] != announced:
                    if not self.applying.get(key):
                        self.applying[key] = True
                        world.after(
                            world.model.steering.apply_s,
                            self._applied,
                            (site, daemon.gen, group, announced, epoch, why),
                        )
                    continue
            elif announced == "primary" and self.dns[group][1] < epoch:
                if not self.applying.get(key):
                    self.applying[key] = True
                    world.after(
                        world.model.steering.apply_s,
                        self._applied,
                        (site, daemon.gen, group, announced, epoch, why),
                    )
                continue
            self._report(daemon, Applied(group, site, epoch, announced, world.now, True, why))

    def _applied(self, arg: tuple[str, int, str, Announcement, int, str]) -> None:
        site, gen, group, announced, epoch, why = arg
        world = self.world
        daemon = self.daemon(site)
        key = (group, site)
        if daemon is None or daemon.gen != gen or not daemon.alive or not world.power[site]:
            return
        self.applying[key] = False
        if daemon.paused:
            return  # frozen mid-call: it applies again when it resumes
        if self.bgp[group]:
            self._set_route(key, announced, why, epoch)
        elif self.dns[group][1] < epoch:  # the update's prerequisite: an older epoch
            self.dns[group] = (site, epoch)
            world.log("dns", f"{group} -> {site} (epoch {epoch})")
            world.checker.dns_changed(group, site, epoch)
            world.traffic.dns_changed(group, site)
        self.evaluate(site)

    def _report(self, daemon: Daemon, applied: Applied) -> None:
        key = (applied.group, applied.site)
        if not daemon.connected:
            self.unreported[key] = applied
            return
        self.unreported.pop(key, None)
        current = self.world.leadership.applied.get(key)
        if (
            current is None
            or current.epoch != applied.epoch
            or current.announcement != applied.announcement
        ):
            self.world.leadership.write_applied(applied)
