"""The observers' probing in the simulated world.

A probe chain runs only while the world's answer could change the observer's hysteresis state
(`core.hysteresis.observe` is a fixpoint otherwise), at the interval grid of the observer's real
schedule, faster while a verdict changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.config.model import CheckBase
from failover.core.hysteresis import next_check_in_s, observe
from failover.core.model import (
    CheckResult,
    CheckState,
    Observation,
    target_key,
)

if TYPE_CHECKING:
    from failover.sim.world import Daemon, World

OK = CheckResult(True, 0.0, "")


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    site: str
    service: str
    check: CheckBase


class Pair:
    """One observer's probing of one target."""

    __slots__ = ("busy", "last", "state")

    def __init__(self, last: float) -> None:
        self.state = CheckState()
        self.last = last  # start of the last probe (the schedule's grid point)
        self.busy = False


class Observers:
    def __init__(self, world: World) -> None:
        self.world = world
        self.targets: list[Target] = []
        for site in world.serving:
            for name, service in world.config.sites[site].services.items():
                for endpoint in service.targets():
                    self.targets.append(
                        Target(target_key(site, name, endpoint), site, name, service.check)
                    )
        self.by_site: dict[str, list[Target]] = {}
        for target in self.targets:
            self.by_site.setdefault(target.site, []).append(target)
        self.names = [d.name for d in world.daemons.values() if "observer" in d.roles]
        self.pairs: dict[str, dict[str, Pair]] = {}
        self.published: dict[str, dict[str, tuple[str, float, str]]] = {}
        self.heartbeat: dict[str, float | None] = {}  # None: heartbeating now
        self.version = 0  # grows whenever what the leader would read changes

    def bootstrap(self) -> None:
        """Every observer has been running for long: it sees every target up."""
        rng = self.world.rng
        for name in self.names:
            pairs = {}
            for target in self.targets:
                pair = Pair(-rng.uniform(0, target.check.interval_s))
                pair.state = CheckState("up", 0, True, 0.0, "")
                pairs[target.key] = pair
            self.pairs[name] = pairs
            self.published[name] = {t.key: ("up", 0.0, "") for t in self.targets}
            self.heartbeat[name] = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    def started(self, daemon: Daemon) -> None:
        if daemon.name not in self.pairs:
            return
        rng = self.world.rng
        now = self.world.now
        self.pairs[daemon.name] = {
            t.key: Pair(now - rng.uniform(0, t.check.interval_s)) for t in self.targets
        }
        self._poke_observer(daemon.name)

    def resumed(self, daemon: Daemon) -> None:
        if daemon.name in self.pairs:
            self._poke_observer(daemon.name)

    def connected(self, daemon: Daemon) -> None:
        if daemon.name not in self.pairs:
            return
        self.published[daemon.name] = {
            key: (p.state.verdict, p.state.since, p.state.reason)
            for key, p in self.pairs[daemon.name].items()
        }
        self.heartbeat[daemon.name] = None
        self._changed()

    def disconnected(self, daemon: Daemon) -> None:
        if daemon.name not in self.pairs:
            return
        self.heartbeat[daemon.name] = self.world.now
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self.world.leadership.changed()

    # --- probing ---------------------------------------------------------------------------

    def poke(self, sites: Sequence[str] = ()) -> None:
        """Something changed at these sites (empty: anywhere): probe what could disagree."""
        for name in self.names:
            daemon = self.world.daemons[name]
            if not daemon.running:
                continue
            pairs = self.pairs[name]
            for target in self.targets:
                if sites and target.site not in sites and daemon.site not in sites:
                    continue
                pair = pairs[target.key]
                if not pair.busy and self._needs_probe(daemon.site, target, pair.state):
                    self._schedule(name, target, pair)

    def _poke_observer(self, name: str) -> None:
        daemon = self.world.daemons[name]
        for target in self.targets:
            pair = self.pairs[name][target.key]
            if not pair.busy and self._needs_probe(daemon.site, target, pair.state):
                self._schedule(name, target, pair)

    def _schedule(self, name: str, target: Target, pair: Pair) -> None:
        interval = target.check.interval_s
        now = self.world.now
        steps = max(1, -int(-(now - pair.last) // interval))
        when = pair.last + steps * interval
        pair.busy = True
        self.world.at(when, self._probe, (name, self.world.daemons[name].gen, target))

    def outcome(self, site: str, target: Target) -> tuple[float, str, float]:
        """(chance of success, failure reason, duration) of one probe from `site`."""
        world = self.world
        timeout = target.check.timeout_s
        if not world.reach(site, target.site):
            return 0.0, "timeout", timeout
        service = world.services[(target.site, target.service)]
        took = world.rtt_s(site, target.site) + service.latency_s()
        if took >= timeout:
            return 0.0, "timeout", timeout
        if not service.serving():
            return 0.0, "refused", took
        chance = (1 - service.fail_p()) * (1 - world.loss_p(site, target.site))
        return chance, "error", took

    def _needs_probe(self, site: str, target: Target, state: CheckState) -> bool:
        chance, reason, _ = self.outcome(site, target)
        if 0.0 < chance < 1.0:
            return True
        result = OK if chance >= 1.0 else CheckResult(False, 0.0, reason)
        check = target.check
        return observe(state, result, self.world.now, check.rise, check.fall) is not state

    def _live_pair(self, name: str, gen: int, target: Target) -> Pair | None:
        """The probing pair if the daemon that scheduled this event still runs (same life),
        else None; a stopped daemon of the same life frees the pair."""
        daemon = self.world.daemons[name]
        pair = self.pairs[name][target.key]
        if daemon.gen == gen and daemon.running:
            return pair
        if daemon.gen == gen:
            pair.busy = False
        return None

    def _probe(self, arg: tuple[str, int, Target]) -> None:
        name, gen, target = arg
        world = self.world
        pair = self._live_pair(name, gen, target)
        if pair is None:
            return
        daemon = world.daemons[name]
        pair.last = world.now
        chance, reason, took = self.outcome(daemon.site, target)
        ok = chance >= 1.0 or (chance > 0.0 and world.rng.random() < chance)
        result = OK if ok else CheckResult(False, 0.0, reason)
        world.after(took, self._result, (name, gen, target, result))

    def _result(self, arg: tuple[str, int, Target, CheckResult]) -> None:
        name, gen, target, result = arg
        world = self.world
        pair = self._live_pair(name, gen, target)
        if pair is None:
            return
        daemon = world.daemons[name]
        check = target.check
        old = pair.state
        state = observe(old, result, world.now, check.rise, check.fall)
        pair.state = state
        if state.verdict != old.verdict:
            world.log(
                "verdict",
                f"{name} sees {target.key} {state.verdict}"
                + (f" ({state.reason})" if state.reason else ""),
            )
            if daemon.connected:
                self.published[name][target.key] = (state.verdict, state.since, state.reason)
                self._changed()
        if self._needs_probe(daemon.site, target, state):
            when = max(pair.last + next_check_in_s(state, check), world.now)
            world.at(when, self._probe, (name, gen, target))
        else:
            pair.busy = False

    # --- what the leader reads ---------------------------------------------------------------

    def observations(self, now: float, *, true_time: bool = False) -> list[Observation]:
        """What the observers published, stamped by their own (maybe skewed) clocks, or with
        `true_time` on the world's clock (for the checker's ground truth)."""
        out = []
        sites = self.world.daemons
        clock = (lambda _site, t: t) if true_time else self.world.site_clock
        for name, published in self.published.items():
            hb = self.heartbeat[name]
            site = sites[name].site
            at = clock(site, now if hb is None else hb)  # stamped by the observer's own clock
            for key, (verdict, since, reason) in published.items():
                out.append(
                    Observation(
                        name,
                        site,
                        key,
                        verdict,  # type: ignore[arg-type]
                        clock(site, since),
                        at,
                        reason,
                    )
                )
        return out
