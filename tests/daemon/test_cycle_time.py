"""Each cycle's time goes to failover_cycle_seconds; a slow one is logged with where its time
went (publish, the leader's read/decide/commit, the agent), at most once per 10 s."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest

from failover.coord import MemoryCoordinator, MemoryStore
from failover.core.model import Observation
from failover.daemon.runner import Daemon
from tests.core.world import example_isolated


def test_a_slow_cycle_is_logged_with_its_parts(caplog: pytest.LogCaptureFixture) -> None:
    config = example_isolated()
    clock = [1000.0]
    store = MemoryStore(lambda: clock[0])
    coordinator = MemoryCoordinator(store, "dc1-a")
    store.tick()
    daemon = Daemon(config, "dc1-a", coordinator=coordinator)
    daemon.cycle_once(clock[0])  # a real cycle: it leads, publishes, steers nothing yet
    assert {"read", "decide"} <= set(daemon.phases)
    with caplog.at_level(logging.INFO, logger="failover.daemon"):
        daemon._took(0.05)
        daemon._took(0.25)
        daemon._took(0.3)  # within 10 s of the last report: counted, not logged
    slow = [r for r in caplog.records if r.getMessage().startswith("slow cycle")]
    assert len(slow) == 1
    assert slow[0].getMessage().startswith("slow cycle: 0.250 s (")
    assert "read" in slow[0].getMessage() and "decide" in slow[0].getMessage()
    text = daemon.metrics.exposition().decode()
    count = next(
        line for line in text.splitlines() if line.startswith("failover_cycle_seconds_count")
    )
    assert float(count.split()[-1]) == 3


def test_the_observer_publishes_beside_the_cycle() -> None:
    config = example_isolated()
    clock = [1000.0]
    store = MemoryStore(lambda: clock[0])
    entered, release = threading.Event(), threading.Event()

    calls: list[int] = []

    class SlowPublish(MemoryCoordinator):
        def publish(self, observations: Sequence[Observation]) -> None:
            calls.append(len(observations))
            entered.set()
            release.wait(10)
            super().publish(observations)

    coordinator = SlowPublish(store, "dc1-a")
    store.tick()
    daemon = Daemon(config, "dc1-a", coordinator=coordinator)
    assert daemon.observer is not None and daemon.observer.verdicts.dirty
    wake_at = daemon.cycle_once(clock[0])  # the cycle ends while its publish is under way
    assert entered.wait(10) and daemon.publishing
    assert wake_at is None or wake_at > clock[0]  # no busy loop while it publishes
    clock[0] += 5.0  # a heartbeat is due, but one publish is under way: no second one
    daemon.cycle_once(clock[0])
    assert len(calls) == 1
    release.set()
    assert daemon._publish_job is not None
    daemon._publish_job.result(10)
    assert not daemon.publishing and not daemon.observer.verdicts.dirty
    assert {o.instance for o in coordinator.observations()} == {"dc1-a"}
