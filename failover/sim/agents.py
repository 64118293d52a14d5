"""The agents in the simulated world: one per serving site, driving `failover.core.agent`.

An agent follows desired state only through `should_apply` (newer epochs) and announces what
`announcement` says for its session and lease; a route outlives its process, and the
supervisor's stop hook demotes a dead or frozen agent's site to backup.
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
        self.bgp = {g: isinstance(world.config.groups[g].steering, BgpSteering)
                    for g in self.groups}
        self.backup = {g: s.backup if isinstance(s, BgpSteering) else False
                       for g, s in ((g, world.config.groups[g].steering) for g in self.groups)}
        self.cached: dict[str, dict[str, GroupState | None]] = {}
        self.route: dict[tuple[str, str], Announcement] = {}  # (group, site): in effect
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
                self.world.leadership.applied[(group, site)] = Applied(
                    group, site, state.epoch, announced, 0.0, True, "bootstrap")
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
        """The supervisor's stop hook: a dead or frozen agent's site is demoted to backup."""
        if self.owner.get(daemon.site) != daemon.name:
            return
        for group in self.groups:
            key = (group, daemon.site)
            self.applying[key] = False
            if self.bgp[group] and self.route[key] == "primary":
                self._set_route(key, "backup", "stop hook demotes to backup")

    def power_changed(self, site: str, on: bool) -> None:
        """A site's routers lose power (their routes go) or boot (announcing nothing yet)."""
        if site not in self.world.serving:
            return
        for group in self.groups:
            key = (group, site)
            self.applying[key] = False
            if self.bgp[group] and not on:
                self._set_route(key, "withdrawn", "routers lost power")

    def _set_route(self, key: tuple[str, str], announced: Announcement, why: str) -> None:
        if self.route[key] == announced:
            return
        self.route[key] = announced
        self.world.log("route", f"{key[1]} {key[0]} {announced}: {why}")
        self.world.traffic.route_changed(key, announced)
        self.world.checker.route_changed()

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
                if core_agent.should_apply(desired[group].epoch,
                                           known.epoch if known else None):
                    cached[group] = desired[group]
        session = world.session_state(daemon)
        for group in self.groups:
            state = cached.get(group)
            lease = world.config.lease_s(group)
            announced, why = core_agent.announcement(
                state, site, backup=self.backup[group], session=session,  # type: ignore[arg-type]
                lost_at=daemon.disconnected_at, now=world.now, lease_s=lease)
            key = (group, site)
            if announced == "primary" and session != "connected":
                ends = core_agent.lease_ends_at(daemon.disconnected_at, lease)
                if ends is not None:
                    world.at(ends, self.evaluate, site)
            epoch = state.epoch if state else 0
            if self.bgp[group]:
                if self.route[key] != announced:
                    if not self.applying.get(key):
                        self.applying[key] = True
                        world.after(world.model.steering.apply_s, self._applied,
                                    (site, daemon.gen, group, announced, epoch, why))
                    continue
            elif announced == "primary" and self.dns[group][1] < epoch:
                if not self.applying.get(key):
                    self.applying[key] = True
                    world.after(world.model.steering.apply_s, self._applied,
                                (site, daemon.gen, group, announced, epoch, why))
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
            self._set_route(key, announced, why)
        elif self.dns[group][1] < epoch:  # the update's prerequisite: an older epoch
            self.dns[group] = (site, epoch)
            world.log("dns", f"{group} -> {site} (epoch {epoch})")
            world.traffic.dns_changed(group, site)
        self.evaluate(site)

    def _report(self, daemon: Daemon, applied: Applied) -> None:
        key = (applied.group, applied.site)
        if not daemon.connected:
            self.unreported[key] = applied
            return
        self.unreported.pop(key, None)
        current = self.world.leadership.applied.get(key)
        if (current is None or current.epoch != applied.epoch
                or current.announcement != applied.announcement):
            self.world.leadership.write_applied(applied)
