"""The observer role: run every check, keep the verdicts, publish them on change and heartbeat.

Two parts. `Verdicts` keeps the verdicts and publishes them; it is fed from outside (each
hysteresis state its probe source reaches, and the clocks), so that the simulator runs it
unchanged beside its own source of probe results (`failover.sim.observers`). `Observer` is
the daemon's whole role: a `ProbeScheduler` feeding a `Verdicts`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from failover.config import Config
from failover.coord import Coordinator
from failover.core.model import CheckResult, CheckState, Observation
from failover.probes.runner import ProbeTarget, targets_of
from failover.probes.scheduler import ProbeScheduler

log = logging.getLogger("failover.daemon")

LAG_REPORT_EVERY_S = 10.0  # at most one warning this often, with the worst lag since the last


def lag_threshold_s(interval_s: float) -> float:
    """A start lag this large makes the detection time the config promises false: a quarter
    of the check's interval, and never more than 0.1 s."""
    return min(0.1, interval_s / 4)


class Verdicts:
    """One observer's verdicts and their publishing.

    `update(target, state)` hears every hysteresis state the probe source reaches; `clock`
    is the monotonic clock those states' `since` are on (the probe loop's). `now`, given by the
    caller to `publish`, is the wall clock the observations are stamped with. A changed verdict
    makes the verdicts dirty and calls `on_change` (the daemon's loop wakes and publishes at its
    next cycle); clean verdicts are republished every `cluster.daemon.heartbeat_s` all the
    same, so that the leader sees them fresh. That interval runs on the monotonic clock: a wall
    clock stepped back (an NTP step) must not silence the heartbeat until it catches up.
    """

    def __init__(
        self,
        config: Config,
        instance: str,
        targets: Iterable[str],
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self.site = config.instances[instance].site
        self.heartbeat_s = config.cluster.daemon.heartbeat_s
        self.on_change = on_change
        self.clock = clock
        self.states: dict[str, CheckState] = {key: CheckState() for key in targets}
        self.counted: dict[str, str] = {}  # target -> the verdict last counted as a change
        self.changes = 1  # verdict changes seen (by the probe loop's thread)
        self.published_changes = 0  # ... of which the last publish included
        self.published_at: float | None = None  # on `clock`: when the last publish read them

    def update(self, target: str, state: CheckState) -> None:
        self.states[target] = state
        if self.counted.get(target) != state.verdict:
            self.counted[target] = state.verdict
            self.changes += 1
            self.on_change()

    def observations(self, now: float) -> list[Observation]:
        """Every verdict with its times on the wall clock (`now`, as time.time())."""
        loop_now = self.clock()  # the probe loop's clock, read from any thread
        return [
            Observation(
                self.instance,
                self.site,
                target,
                state.verdict,
                now - (loop_now - state.since),
                now,
                state.reason,
            )
            for target, state in self.states.items()
        ]

    @property
    def dirty(self) -> bool:
        """A verdict changed since what the last publish read."""
        return self.changes != self.published_changes

    def publish_due(self) -> bool:
        """A change waits, or the last publish is a heartbeat old."""
        if self.dirty or self.published_at is None:
            return True
        return self.clock() - self.published_at >= self.heartbeat_s

    def publish(self, coordinator: Coordinator, now: float, clock_offset_s: float = 0.0) -> None:
        changes = self.changes  # read before the verdicts: a change after it stays dirty
        published_at = self.clock()
        coordinator.publish(self.observations(now + clock_offset_s))
        self.published_changes = changes
        self.published_at = published_at


class Observer:
    """The daemon's observer role: its `ProbeScheduler` feeds its `Verdicts`."""

    def __init__(self, config: Config, instance: str, on_change: Callable[[], None]) -> None:
        self.config = config
        self.instance = instance
        self.site = config.instances[instance].site
        self.scheduler = ProbeScheduler(targets_of(config), self._on_result)
        self.verdicts = Verdicts(config, instance, self.scheduler.states, on_change)
        self.results: dict[str, CheckResult] = {}
        self.on_result: Callable[[str, CheckResult], None] | None = None  # e.g. metrics
        self.on_lag: Callable[[float], None] | None = None  # e.g. metrics
        self.scheduler.on_lag = self._on_lag
        self.late_starts = 0  # starts later than lag_threshold_s since the last warning
        self.worst_lag_s = 0.0  # ... and the latest of them
        self.lag_reported_at = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """The probe loop is alive (started and not ended)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self.scheduler.run(), name="probes")

    async def stop(self) -> None:
        self.scheduler.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_result(self, target: str, state: CheckState, result: CheckResult) -> None:
        self.results[target] = result
        self.verdicts.update(target, state)
        if self.on_result is not None:
            self.on_result(target, result)

    def _on_lag(self, target: ProbeTarget, lag_s: float) -> None:
        if self.on_lag is not None:
            self.on_lag(lag_s)
        if lag_s < lag_threshold_s(target.check.interval_s):
            return
        self.late_starts += 1
        self.worst_lag_s = max(self.worst_lag_s, lag_s)
        now = time.monotonic()
        if now - self.lag_reported_at < LAG_REPORT_EVERY_S:
            return
        log.warning(
            f"checks start late: {self.late_starts} start(s) late by up to "
            f"{self.worst_lag_s * 1000:.0f} ms (e.g. {target.key}, interval "
            f"{target.check.interval_s:g} s); the host is busy or the daemon's scheduling "
            "priority too low, and detection takes longer than the config promises",
            extra={
                "fields": {
                    "late_starts": self.late_starts,
                    "worst_lag_s": round(self.worst_lag_s, 4),
                }
            },
        )
        self.late_starts = 0
        self.worst_lag_s = 0.0
        self.lag_reported_at = now
