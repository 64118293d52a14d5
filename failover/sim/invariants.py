"""Safety invariants, checked after every event; a violation keeps the trace that led to it.

The checker is an independent oracle: it reads histories (what the sites' routers announce,
what the name servers answer, what was written to the coordinator, the faults' ground truth),
never the engine's reasoning.

- `dual_active`: desired state names at most one primary; its epoch never goes down.
- `primary_overlap`: two sites announce primary at once for no longer than one steering apply.
- `epoch_regress`: the epoch a router's or a name server's steering carries never goes back.
- `moved_without_quorum`: while ZooKeeper has no quorum, no announcement and no DNS answer
  changes, except a primary held by its lease or the stop hook (and a change already in flight
  when the quorum went, within one steering apply).
- `switch_without_quorum`: a switch is written only with a ZooKeeper quorum; an automatic
  failover only while `observer_quorum` observer sites have a fresh `down` on the old site.
- `switch_on_inter_site_cut`: no automatic failover when the only fault is a cut between the
  two serving sites.
- `false_failover`: no automatic failover away from a site that nothing touched (no fault of
  any kind at it) for the whole hold-down and detection window.
- `unsettled_target`: no automatic failover to a site whose critical service or power came
  back less than a hold-down ago, after an outage long enough that the observers saw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.core.model import Announcement, GroupState, split_target

if TYPE_CHECKING:
    from failover.sim.world import FaultRecord, World

TRACE_TAIL = 40
FAILOVER_CODES = ("failover",)
SEEN_OUTAGES = ("service_down", "site_power_loss")  # outages every observer must notice


@dataclass(frozen=True, slots=True)
class Violation:
    at: float
    name: str
    message: str
    trace: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "at": round(self.at, 3),
            "name": self.name,
            "message": self.message,
            "trace": list(self.trace),
        }


class Checker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.violations: list[Violation] = []
        self.epochs: dict[str, int] = {}
        self.steered_epochs: dict[tuple[str, ...], int] = {}
        self.overlap_since: dict[str, float] = {}
        self._reported: set[tuple[str, float]] = set()
        self._last_now = 0.0
        self.no_quorum_since: float | None = None
        self.false_failovers = 0
        self.max_overlap_s = 0.0  # the longest two sites announced primary at once
        self.overlap_s: dict[str, float] = {}  # group -> seconds of ended overlaps
        config = world.config
        checks = [s.check for site in world.serving for s in config.sites[site].services.values()]
        detect_s = max(c.fall * c.interval_s + c.timeout_s for c in checks)
        self.hold_down_s = config.policy.hold_down_s
        self.window_s = self.hold_down_s + config.policy.stale_after_s + detect_s
        # an outage at least this long was seen by every observer that could see it
        self.seen_after_s = detect_s + config.policy.stale_after_s + world.model.daemons.react_s
        self.apply_s = world.model.steering.apply_s
        self.bound_s = {g: self.apply_s for g in config.groups}

    def violate(self, name: str, message: str) -> None:
        world = self.world
        world.log("VIOLATION", f"{name}: {message}")
        self.violations.append(
            Violation(world.now, name, message, tuple(world.lines[-TRACE_TAIL:]))
        )

    # --- every event ---------------------------------------------------------------------

    def check(self) -> None:
        world = self.world
        if world.now < self._last_now:
            self.violate("clock", f"the clock went back from {self._last_now} to {world.now}")
        self._last_now = world.now
        if world.quorum_ready:
            self.no_quorum_since = None
        elif self.no_quorum_since is None:
            self.no_quorum_since = world.now
        for group, since in self.overlap_since.items():
            if world.now - since > self.bound_s[group] and (group, since) not in self._reported:
                self._reported.add((group, since))
                self.violate(
                    "primary_overlap",
                    f"{group}: two sites announce primary for more than "
                    f"{self.bound_s[group]:g} s (since {since:.3f})",
                )

    # --- what routers and name servers show ----------------------------------------------

    def route_changed(
        self,
        key: tuple[str, str],
        old: Announcement,
        new: Announcement,
        epoch: int | None,
        fault: bool,
    ) -> None:
        group, site = key
        # a hold of the primary in effect by an agent that knows no epoch yet (restarted, not
        # yet connected: its lease rule) carries none, as the stop hook's hold does
        unknown_hold = epoch == 0 and old == "primary" and new == "held"
        if epoch is not None and not unknown_hold:
            self._epoch_seen(("route", group, site), epoch, f"{site}'s router for {group}")
        if not fault and not (old == "primary" and new == "held"):
            self._quorum_needed(f"{site} {group} {old} -> {new}")
        self._overlap(group)

    def dns_changed(self, group: str, site: str, epoch: int) -> None:
        self._epoch_seen(("dns", group), epoch, f"the name servers for {group}")
        self._quorum_needed(f"DNS for {group} -> {site}")

    def _epoch_seen(self, key: tuple[str, ...], epoch: int, where: str) -> None:
        last = self.steered_epochs.get(key, 0)
        if epoch < last:
            self.violate("epoch_regress", f"{where}: epoch went back from {last} to {epoch}")
        self.steered_epochs[key] = max(last, epoch)

    def _quorum_needed(self, what: str) -> None:
        if self.world.quorum_ready:
            return
        started = self.no_quorum_since if self.no_quorum_since is not None else self.world.now
        if self.world.now - started > self.apply_s + 1e-9:
            self.violate(
                "moved_without_quorum",
                f"{what} while ZooKeeper has had no quorum for {self.world.now - started:.3f} s",
            )

    def _overlap(self, group: str) -> None:
        world = self.world
        primaries = [s for s in world.serving if world.steering.route[(group, s)] == "primary"]
        if len(primaries) > 1 and group not in self.overlap_since:
            self.overlap_since[group] = world.now
            world.at(world.now + self.bound_s[group] + 1e-6, lambda _: None)
            world.log("overlap", f"{group}: {' and '.join(primaries)} both primary")
        elif len(primaries) <= 1 and group in self.overlap_since:
            since = self.overlap_since.pop(group)
            took = world.now - since
            self.max_overlap_s = max(self.max_overlap_s, took)
            self.overlap_s[group] = self.overlap_s.get(group, 0.0) + took
            if took > self.bound_s[group] and (group, since) not in self._reported:
                self._reported.add((group, since))
                self.violate(
                    "primary_overlap",
                    f"{group}: two sites announced primary for "
                    f"{took:.3f} s (bound {self.bound_s[group]:g} s)",
                )

    def dual_primary_s(self, group: str | None = None) -> float:
        """Seconds two sites announced primary at once so far (one group, or all)."""
        now = self.world.now
        groups = [group] if group else list(self.world.config.groups)
        return sum(
            self.overlap_s.get(g, 0.0)
            + (now - self.overlap_since[g] if g in self.overlap_since else 0.0)
            for g in groups
        )

    # --- every write of desired state ----------------------------------------------------

    def on_desired(self, old: GroupState | None, new: GroupState) -> None:
        world = self.world
        group = new.group
        primaries = new.primaries(world.serving)
        if len(primaries) > 1:
            self.violate("dual_active", f"{group}: desired state names {primaries} primary")
        if new.epoch < self.epochs.get(group, 0):
            self.violate(
                "dual_active", f"{group}: epoch went back from {self.epochs[group]} to {new.epoch}"
            )
        self.epochs[group] = max(new.epoch, self.epochs.get(group, 0))
        if old is None or new.last_switch_at == old.last_switch_at:
            return
        if not world.quorum_ready:
            self.violate(
                "switch_without_quorum",
                f"{group}: switch to {new.active} written without a ZooKeeper quorum",
            )
        if new.code not in FAILOVER_CODES:
            return
        self._observer_quorum(old, new)
        self._inter_site_cut(old, new)
        self._settled_target(new)
        if not self._touched(old.active, self.window_s):
            self.false_failovers += 1
            world.log("false", f"{group}: failover from {old.active} while it was healthy")
            self.violate(
                "false_failover",
                f"{group}: failover from {old.active}, which no fault touched in the "
                f"last {self.window_s:g} s",
            )

    def _observer_quorum(self, old: GroupState, new: GroupState) -> None:
        world = self.world
        if old.active not in world.control.agents():
            return  # its agent's session is gone, as the ZooKeeper quorum says: not a vote
        critical = {
            name
            for name, service in world.config.sites[old.active].services.items()
            if service.role == "critical" and name in world.config.groups[new.group].services
        }
        stale = world.config.policy.stale_after_s
        seeing = []
        for obs in world.observers.published():
            site, service, _ = split_target(obs.target)
            if (
                site == old.active
                and service in critical
                and obs.verdict == "down"
                and world.now - obs.at < stale
                and obs.site not in seeing
            ):
                seeing.append(obs.site)
        needed = world.config.observer_quorum
        if len(seeing) < needed:
            self.violate(
                "switch_without_quorum",
                f"{new.group}: failover from {old.active} with only "
                f"{len(seeing)} observer site(s) seeing it down "
                f"({', '.join(seeing) or 'none'}); the quorum is {needed}",
            )

    def _inter_site_cut(self, old: GroupState, new: GroupState) -> None:
        recent = [
            f
            for f in self.world.faults
            if f.kind != "operator" and (f.end is None or self.world.now - f.end <= self.window_s)
        ]
        if recent and all(f.inter_site_cut for f in recent):
            self.violate(
                "switch_on_inter_site_cut",
                f"{new.group}: failover from {old.active} to {new.active} while the "
                "only fault is a cut between the sites",
            )

    def _settled_target(self, new: GroupState) -> None:
        """Safety rule 7 on ground truth: the target was healthy for the whole hold-down."""
        world = self.world
        critical = set(world.config.groups[new.group].services)
        for fault in world.faults:
            if (
                fault.kind in SEEN_OUTAGES
                and new.active in fault.sites
                and (fault.service is None or fault.service in critical)
                and fault.end is not None
                and world.now - fault.end < self.hold_down_s
                and fault.end - fault.start >= self.seen_after_s
            ):
                self.violate(
                    "unsettled_target",
                    f"{new.group}: failover to {new.active} "
                    f"{world.now - fault.end:.3f} s after its outage ended "
                    f"({fault.label}); the hold-down is {self.hold_down_s:g} s",
                )

    def _touched(self, site: str, window_s: float) -> bool:
        return any(
            site in self._places(f)
            for f in self.world.faults
            if f.kind != "operator" and (f.end is None or self.world.now - f.end <= window_s)
        )

    @staticmethod
    def _places(fault: FaultRecord) -> tuple[str, ...]:
        return fault.sites + fault.places
