"""Safety invariants, checked after every event; a violation keeps the trace that led to it.

The checker is an independent oracle: it looks at the world's ground truth (faults, routes,
the coordinator's contents), never at the engine's reasoning.

- `dual_active`: desired state names at most one primary; its epoch never goes down.
- `primary_overlap`: two sites announce primary no longer than the lease bound
  (max(lease, watchdog) + one apply).
- `switch_without_quorum`: an automatic failover is written only with a ZooKeeper quorum and
  while at least `observer_quorum` observer sites have a fresh `down` on the old site.
- `switch_on_inter_site_cut`: no automatic failover when the only fault is a cut between the
  two serving sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.core.model import GroupState, Step, split_target

if TYPE_CHECKING:
    from failover.sim.world import World

TRACE_TAIL = 40
FAILOVER_CODES = ("failover",)


@dataclass(frozen=True, slots=True)
class Violation:
    at: float
    name: str
    message: str
    trace: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"at": round(self.at, 3), "name": self.name, "message": self.message,
                "trace": list(self.trace)}


class Checker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.violations: list[Violation] = []
        self.epochs: dict[str, int] = {}
        self.overlap_since: dict[str, float] = {}
        self._reported: set[tuple[str, float]] = set()
        self._last_now = 0.0
        self.false_failovers = 0
        config = world.config
        checks = [s.check for site in world.serving
                  for s in config.sites[site].services.values()]
        self.window_s = (config.policy.hold_down_s + config.policy.stale_after_s
                         + max(c.fall * c.interval_s + c.timeout_s for c in checks))
        daemons = world.model.daemons
        self.bound_s = {g: max(config.lease_s(g), daemons.watchdog_s)
                        + world.model.steering.apply_s + daemons.react_s
                        for g in config.groups}

    def violate(self, name: str, message: str) -> None:
        world = self.world
        world.log("VIOLATION", f"{name}: {message}")
        self.violations.append(Violation(world.now, name, message,
                                         tuple(world.lines[-TRACE_TAIL:])))

    # --- every event ---------------------------------------------------------------------

    def check(self) -> None:
        world = self.world
        if world.now < self._last_now:
            self.violate("clock", f"the clock went back from {self._last_now} to {world.now}")
        self._last_now = world.now
        for group, since in self.overlap_since.items():
            if world.now - since > self.bound_s[group] and (group, since) not in self._reported:
                self._reported.add((group, since))
                self.violate("primary_overlap",
                             f"{group}: two sites announce primary for more than "
                             f"{self.bound_s[group]:g} s (since {since:.3f})")

    def route_changed(self) -> None:
        world = self.world
        for group in world.config.groups:
            if not world.agents.bgp[group]:
                continue
            primaries = [s for s in world.serving if world.agents.route[(group, s)] == "primary"]
            if len(primaries) > 1 and group not in self.overlap_since:
                self.overlap_since[group] = world.now
                world.at(world.now + self.bound_s[group] + 1e-6, lambda _: None)
                world.log("overlap", f"{group}: {' and '.join(primaries)} both primary")
            elif len(primaries) <= 1 and group in self.overlap_since:
                since = self.overlap_since.pop(group)
                self.check_overlap(group, since)

    def check_overlap(self, group: str, since: float) -> None:
        took = self.world.now - since
        if took > self.bound_s[group] and (group, since) not in self._reported:
            self._reported.add((group, since))
            self.violate("primary_overlap", f"{group}: two sites announced primary for "
                                            f"{took:.3f} s (bound {self.bound_s[group]:g} s)")

    # --- every write of desired state ----------------------------------------------------

    def on_desired(self, old: GroupState | None, new: GroupState, step: Step) -> None:
        world = self.world
        group = new.group
        primaries = new.primaries(world.serving)
        if len(primaries) > 1:
            self.violate("dual_active", f"{group}: desired state names {primaries} primary")
        if new.epoch < self.epochs.get(group, 0):
            self.violate("dual_active", f"{group}: epoch went back from "
                                        f"{self.epochs[group]} to {new.epoch}")
        self.epochs[group] = max(new.epoch, self.epochs.get(group, 0))
        if old is None or new.last_switch_at == old.last_switch_at:
            return
        if not world.quorum_ready:
            self.violate("switch_without_quorum", f"{group}: switch to {new.active} written "
                                                  "without a ZooKeeper quorum")
        if new.code not in FAILOVER_CODES:
            return
        self._observer_quorum(old, new)
        self._inter_site_cut(old, new)
        if not self._faulty(old.active):
            self.false_failovers += 1
            world.log("false", f"{group}: failover from {old.active} while it was healthy")

    def _observer_quorum(self, old: GroupState, new: GroupState) -> None:
        world = self.world
        agents = world.leadership.view().agents
        if agents is not None and old.active not in agents:
            return  # its agent's session is gone, as the ZooKeeper quorum says: not a vote
        critical = {name for name, service in world.config.sites[old.active].services.items()
                    if service.role == "critical" and name in world.config.groups[
                        new.group].services}
        stale = world.config.policy.stale_after_s
        seeing = []
        for obs in world.observers.observations(world.now):
            site, service, _ = split_target(obs.target)
            if (site == old.active and service in critical and obs.verdict == "down"
                    and world.now - obs.at < stale and obs.site not in seeing):
                seeing.append(obs.site)
        needed = world.config.observer_quorum
        if len(seeing) < needed:
            self.violate("switch_without_quorum",
                         f"{new.group}: failover from {old.active} with only "
                         f"{len(seeing)} observer site(s) seeing it down "
                         f"({', '.join(seeing) or 'none'}); the quorum is {needed}")

    def _inter_site_cut(self, old: GroupState, new: GroupState) -> None:
        recent = [f for f in self.world.faults if f.kind != "operator"
                  and (f.end is None or self.world.now - f.end <= self.window_s)]
        if recent and all(f.inter_site_cut for f in recent):
            self.violate("switch_on_inter_site_cut",
                         f"{new.group}: failover from {old.active} to {new.active} while the "
                         "only fault is a cut between the sites")

    def _faulty(self, site: str) -> bool:
        world = self.world
        return any(site in f.sites for f in world.faults if f.kind != "operator"
                   and (f.end is None or world.now - f.end <= self.window_s))
