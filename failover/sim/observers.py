"""The observers in the simulated world: the source of probe results of the daemon's observer.

Each observer's process runs the shipped `failover.daemon.observer.Verdicts` (built in
`failover.sim.control`). This module plays the daemon's `ProbeScheduler`: it feeds every
hysteresis state it reaches to `Verdicts.update`; a changed verdict wakes the process, whose
next cycle publishes through its `SimClient`, as the runner's does.

A probe chain runs only while the world's answer could change the observer's hysteresis state
(`core.hysteresis.observe` is a fixpoint otherwise), at the interval grid of the observer's real
schedule, faster while a verdict changes.

Lossy probes skip ahead. Each pair (observer, target) draws its probes' luck from its own seeded
stream, one number per probe that may fail by chance. While a pair's state is the fixpoint of a
success and nothing in the world changes, the successes ahead change nothing: the pair draws
on until the first failing number and schedules only that probe, on the same grid. A change in
the world (`poke`), a pause or a resume settles the skip: the probes before that instant count
as done (their numbers consumed), the rest are planned again from the same stream. So a run
gives the same trace with `skip_ahead` on or off, only with fewer events. Both this and the
remembered outcomes of probes need every change in the world to reach `poke`
(`World.world_changed` does it for faults and power).

Heartbeats. The daemon republishes unchanged verdicts every `cluster.daemon.heartbeat_s` from
its periodic cycle, and each publish wakes the leader, which reads it. As events, that is a
cycle per heartbeat per observer and a leader cycle each: a one-hour chaos run has about 10x
the events and takes 20x the time (`heartbeat_events = True` runs it so: the reference).
Instead, a heartbeat is published where it can be seen, by the shipped rule
(`Verdicts.publish_due`: only one that is due):
- when a leader reads the observations, every live observer on a live session first publishes
  what its periodic cycle would have by now (`Process.heartbeat`); the reader sees it at once,
  as it would on the watch that publish fires (so the watch does not wake it again);
- when an observer stops being heard: its cycle just before it is cut off or frozen (the same
  worst case as for the agent, `Control.before_cut`), and before it is killed
  (`Control.stopped`).
Why the leader sees the same: it judges an observation by when it first saw the observer's
newest stamp (`core.freshness`), and it sees every stamp as soon as it can read, here as there.
At any read, a connected observer's node holds its current verdicts (a change is on its way
within `react_s`), published at most a heartbeat ago: fresh, as in the daemon
(`heartbeat_s < stale_after_s` is a config rule). An observer that stops being heard at t last
published within a heartbeat before t in both (the daemon: within heartbeat_s + cycle_s), so
its verdicts lapse by t + stale_after_s, and its node goes with its session. Only the phase of
the heartbeats differs: here the reads set it, there the cycles. `tests/sim/test_observer_role.py`
checks the first at every read of campaigns, and runs them both ways: the same desired states
in the same order, at most two reactions to a watch apart (0.1 s).
"""

from __future__ import annotations

import random
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
from failover.daemon.observer import Verdicts

if TYPE_CHECKING:
    from failover.sim.coordination import SimClient
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

    __slots__ = ("busy", "drawn", "last", "name", "skip", "state", "stream", "token")

    def __init__(self, last: float, name: str) -> None:
        self.state = CheckState()
        self.last = last  # start of the last probe (the schedule's grid point)
        self.busy = False
        self.name = name  # seeds this pair's stream of luck
        self.stream: random.Random | None = None
        self.drawn: list[float] = []  # numbers drawn from the stream, not used by a probe yet
        # skipping: (the first skipped probe's time, how many succeed, each one's duration)
        self.skip: tuple[float, int, float] | None = None
        self.token = 0  # the pending skip's event is stale once this moves on

    def luck(self) -> float:
        """The next probe's number: it succeeds if the number is below its chance."""
        if self.drawn:
            return self.drawn.pop(0)
        if self.stream is None:
            self.stream = random.Random(self.name)
        return self.stream.random()


class Observers:
    skip_ahead = True  # False: every lossy probe is an event (the reference the skip must match)
    # True: every heartbeat is a periodic cycle of its own (the reference for the heartbeats)
    heartbeat_events = False

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
        self.keys = [target.key for target in self.targets]
        self.names = [d.name for d in world.daemons.values() if "observer" in d.roles]
        self.pairs: dict[str, dict[str, Pair]] = {}
        # background loss of every probe that is not a fault: (loss, only between two sites)
        self.ambient_loss = 0.0
        self.ambient_cross_site_only = True
        # (observer site, target) -> outcome; the world changes only through `poke`
        self._outcomes: dict[tuple[str, str], tuple[float, str, float]] = {}

    def _pair(self, name: str, target: Target, last: float) -> Pair:
        gen = self.world.daemons[name].gen
        return Pair(last, f"{self.world.seed}/{name}/{gen}/{target.key}")

    def bootstrap(self) -> None:
        """Every observer has been running for long: it sees every target up (its process's
        first cycle publishes that)."""
        rng = self.world.rng
        up = CheckState("up", 0, True, 0.0, "")
        for name in self.names:
            pairs = {}
            verdicts = self._verdicts(name)
            on_change, verdicts.on_change = verdicts.on_change, _nothing
            for target in self.targets:
                pair = self._pair(name, target, -rng.uniform(0, target.check.interval_s))
                pair.state = up
                pairs[target.key] = pair
                verdicts.update(target.key, up)
            verdicts.on_change = on_change
            self.pairs[name] = pairs

    def _verdicts(self, name: str) -> Verdicts:
        verdicts = self.world.control.processes[name].verdicts
        assert verdicts is not None  # every observer's process has them
        return verdicts

    def set_ambient_loss(self, loss: float, cross_site_only: bool = True) -> None:
        """Every probe (or every probe between two sites) fails with this chance, with no
        fault on record: the background noise that false-failover figures are measured under."""
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"ambient probe loss must be within 0..1 (got {loss})")
        self.ambient_loss = loss
        self.ambient_cross_site_only = cross_site_only
        self.poke()

    # --- lifecycle -------------------------------------------------------------------------

    def started(self, daemon: Daemon) -> None:
        if daemon.name not in self.pairs:
            return
        rng = self.world.rng
        now = self.world.now
        self.pairs[daemon.name] = {
            t.key: self._pair(daemon.name, t, now - rng.uniform(0, t.check.interval_s))
            for t in self.targets
        }
        self._poke_observer(daemon.name)

    def resumed(self, daemon: Daemon) -> None:
        if daemon.name not in self.pairs:
            return
        now = self.world.now
        paused_at = daemon.paused_at if daemon.paused_at is not None else now
        for target in self.targets:
            pair = self.pairs[daemon.name][target.key]
            if pair.skip is None:
                continue
            if self._first_event(pair, target, paused_at) < now:
                self._settle(pair, target, paused_at)  # the chain stopped while it was frozen
            else:  # no probe fell into the pause; the world may have changed meanwhile
                self._resettle(daemon.name, target, pair, now)
        self._poke_observer(daemon.name)

    # --- probing ---------------------------------------------------------------------------

    def poke(self, sites: Sequence[str] = ()) -> None:
        """Something changed at these sites (empty: anywhere): probe what could disagree."""
        self._outcomes.clear()
        now = self.world.now
        for name in self.names:
            daemon = self.world.daemons[name]
            if not daemon.running:
                continue
            pairs = self.pairs[name]
            for target in self.targets:
                if sites and target.site not in sites and daemon.site not in sites:
                    continue
                pair = pairs[target.key]
                if pair.skip is not None:  # the successes it skipped over may not hold now
                    self._resettle(name, target, pair, now)
                if not pair.busy and self._needs_probe(daemon.site, target, pair.state):
                    self._schedule(name, target, pair)

    def _poke_observer(self, name: str) -> None:
        self._outcomes.clear()
        daemon = self.world.daemons[name]
        for target in self.targets:
            pair = self.pairs[name][target.key]
            if not pair.busy and self._needs_probe(daemon.site, target, pair.state):
                self._schedule(name, target, pair)

    def _schedule(self, name: str, target: Target, pair: Pair) -> None:
        interval = target.check.interval_s
        now = self.world.now
        steps = max(1, -int(-(now - pair.last) // interval))
        self._plan(name, target, pair, pair.last + steps * interval)

    def _plan(self, name: str, target: Target, pair: Pair, when: float) -> None:
        """The next probe starts at `when`; skip the successes ahead if nothing can come of
        them (the state is the fixpoint of a success, on the plain interval)."""
        world = self.world
        daemon = world.daemons[name]
        pair.busy = True
        check = target.check
        interval = check.interval_s
        if self.skip_ahead and next_check_in_s(pair.state, check) == interval:
            chance, _, took = self._outcome(daemon.site, target)
            if (
                0.0 < chance < 1.0
                and took < interval
                and observe(pair.state, OK, when, check.rise, check.fall) is pair.state
            ):
                self._skip(name, daemon.gen, target, pair, when, chance, took)
                return
        world.at(when, self._probe, (name, daemon.gen, target))

    def _skip(
        self,
        name: str,
        gen: int,
        target: Target,
        pair: Pair,
        when: float,
        chance: float,
        took: float,
    ) -> None:
        """Draw on until the first failing number; schedule only that probe. Its time is
        reached by the same additions the probe-by-probe schedule makes, bit for bit."""
        interval = target.check.interval_s
        drawn = pair.drawn
        successes = 0
        for number in drawn:
            if number >= chance:
                break
            successes += 1
        else:  # draw on in blocks (the numbers past the failing one wait in `drawn`)
            if pair.stream is None:
                pair.stream = random.Random(pair.name)
            draw = pair.stream.random
            block = max(8, min(256, int(0.7 / (1.0 - chance))))
            while True:
                numbers = [draw() for _ in range(block)]
                drawn += numbers
                if max(numbers) >= chance:
                    break
                successes += block
            for number in numbers:
                if number >= chance:
                    break
                successes += 1
        failing_at = when
        for _ in range(successes):
            failing_at += interval
        pair.skip = (when, successes, took)
        pair.token += 1
        self.world.at(failing_at, self._skipped, (name, gen, target, pair.token))

    def _settle(self, pair: Pair, target: Target, until: float) -> tuple[float, int]:
        """End a skip: the skipped probes that started before `until` succeeded (their
        numbers are used up); the pair is free. Returns (the next probe's time, probes done)."""
        assert pair.skip is not None
        when, successes, _ = pair.skip
        interval = target.check.interval_s
        done = 0
        while done < successes and when < until:
            pair.last = when
            done += 1
            when += interval
        del pair.drawn[:done]
        pair.skip = None
        pair.token += 1
        pair.busy = False
        return when, done

    def _resettle(self, name: str, target: Target, pair: Pair, now: float) -> None:
        """The world changed at `now`: stand where probing one by one would stand. The next
        probe is already due at its time unless the last one's result is still on its way
        (then that result decides, as `poke` does for a free pair)."""
        assert pair.skip is not None
        took = pair.skip[2]
        when, done = self._settle(pair, target, now)
        if done == 0 or pair.last + took <= now:
            self._plan(name, target, pair, when)

    def _first_event(self, pair: Pair, target: Target, since: float) -> float:
        """When the skipped chain has its first event (a probe or its result) at or after
        `since`; a probe-by-probe chain of a frozen daemon stops there."""
        assert pair.skip is not None
        when, successes, took = pair.skip
        interval = target.check.interval_s
        for _ in range(successes):
            if when >= since:
                return when
            if when + took >= since:
                return when + took
            when += interval
        return when  # the failing probe's

    def _skipped(self, arg: tuple[str, int, Target, int]) -> None:
        name, gen, target, token = arg
        daemon = self.world.daemons[name]
        pair = self.pairs[name][target.key]
        if daemon.gen != gen or pair.token != token or pair.skip is None:
            return
        if not daemon.running:  # frozen since: its probes stopped then
            paused_at = daemon.paused_at if daemon.paused_at is not None else self.world.now
            self._settle(pair, target, paused_at)
            return
        del pair.drawn[: pair.skip[1]]
        pair.skip = None
        self._probe((name, gen, target))

    def _outcome(self, site: str, target: Target) -> tuple[float, str, float]:
        key = (site, target.key)
        known = self._outcomes.get(key)
        if known is None:
            known = self._outcomes[key] = self.outcome(site, target)
        return known

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
        if self.ambient_loss and (site != target.site or not self.ambient_cross_site_only):
            chance *= 1 - self.ambient_loss
        return chance, "error", took

    def _needs_probe(self, site: str, target: Target, state: CheckState) -> bool:
        chance, reason, _ = self._outcome(site, target)
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
        chance, reason, took = self._outcome(daemon.site, target)
        ok = chance >= 1.0 or (chance > 0.0 and pair.luck() < chance)
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
        self._verdicts(name).update(target.key, state)
        if self._needs_probe(daemon.site, target, state):
            when = max(pair.last + next_check_in_s(state, check), world.now)
            self._plan(name, target, pair, when)
        else:
            pair.busy = False

    # --- what the leader reads ---------------------------------------------------------------

    def heartbeats(self, reader: SimClient) -> None:
        """A leader is about to read the observations: every observer first publishes the
        heartbeat its periodic cycle would have published by now (the module's docstring says
        why that is the same to the leader). The reader is not woken by them: it reads them
        now, as it would have on the watch their publishes fire."""
        self.world.store.disarm(reader, "observations")
        for process in self.world.control.processes.values():
            process.heartbeat()

    def published(self) -> list[Observation]:
        """What the observers' nodes hold now, each stamped (`at`) with the world's time of
        its publish: the checker's ground truth of what a leader can count as fresh."""
        stamps = self.world.control.stamps
        out = []
        for name, (observations, _) in sorted(self.world.store.published.items()):
            at = stamps[name]
            out += [
                Observation(o.instance, o.site, o.target, o.verdict, o.since, at, o.reason)
                for o in observations
            ]
        return out


def _nothing() -> None:
    pass
