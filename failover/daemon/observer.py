"""The observer role: run every check, keep the verdicts, publish them on change and heartbeat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from failover.config import Config
from failover.coord import Coordinator
from failover.core.model import CheckResult, CheckState, Observation
from failover.probes.runner import targets_of
from failover.probes.scheduler import ProbeScheduler


class Observer:
    def __init__(self, config: Config, instance: str, on_change: Callable[[], None]) -> None:
        self.config = config
        self.instance = instance
        self.site = config.instances[instance].site
        self.on_change = on_change
        self.scheduler = ProbeScheduler(targets_of(config), self._on_result)
        self.results: dict[str, CheckResult] = {}
        self.verdicts: dict[str, str] = {}
        self.changes = 1  # verdict changes seen (by the probe loop's thread)
        self.published_changes = 0  # ... of which the last publish included
        self.published_at = 0.0
        self.on_result: Callable[[str, CheckResult], None] | None = None  # e.g. metrics
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
        if self.on_result is not None:
            self.on_result(target, result)
        if self.verdicts.get(target) != state.verdict:
            self.verdicts[target] = state.verdict
            self.changes += 1
            self.on_change()

    def observations(self, now: float) -> list[Observation]:
        """Every verdict with its times on the wall clock (`now` is time.time())."""
        loop_now = time.monotonic()  # the event loop's clock, read from any thread
        return [Observation(self.instance, self.site, target, state.verdict,
                            now - (loop_now - state.since), now, state.reason)
                for target, state in self.scheduler.states.items()]

    @property
    def dirty(self) -> bool:
        """A verdict changed since what the last publish read."""
        return self.changes != self.published_changes

    def publish_due(self, now: float) -> bool:
        return self.dirty or now - self.published_at >= self.config.cluster.daemon.heartbeat_s

    def publish(self, coordinator: Coordinator, now: float, clock_offset_s: float = 0.0
                ) -> None:
        changes = self.changes  # read before the verdicts: a change after it stays dirty
        coordinator.publish(self.observations(now + clock_offset_s))
        self.published_changes = changes
        self.published_at = now

