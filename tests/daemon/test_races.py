"""Races in the daemon's roles (safety review, item 5), each with the interleaving that broke it:
a failed commit must not swallow the audit of its decisions, a verdict that changes while it
is being published must be published again, and a reload must not swap roles under a cycle."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from failover.config import Config
from failover.coord import CoordinatorError, Leadership, MemoryCoordinator, MemoryStore
from failover.core.model import CheckResult, CheckState, Observation
from failover.daemon.leader import Leader
from failover.daemon.observer import Observer
from failover.daemon.runner import Daemon
from tests.core.world import EXAMPLE, everyone_sees, example, example_isolated, observations


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def leading(config: Config) -> tuple[MemoryStore, MemoryCoordinator, Leadership, Clock]:
    clock = Clock()
    store = MemoryStore(clock)
    coordinator = MemoryCoordinator(store, "dc1-a")
    store.tick()
    leadership = coordinator.campaign()
    assert leadership is not None
    return store, coordinator, leadership, clock


def test_a_failed_commit_leaves_its_decisions_to_be_audited_by_the_next_cycle() -> None:
    config = example()
    store, coordinator, leadership, clock = leading(config)
    coordinator.publish(observations(config, clock.now, down=everyone_sees(config, "dc1", "db")))
    leader = Leader(config)
    stale = Leadership(leadership.instance, leadership.term - 1)
    with pytest.raises(CoordinatorError):
        leader.cycle(coordinator, stale, clock.now)  # deposed: nothing is written
    assert store.audit_entries == []
    assert leader.last_step is not None
    lost = {(d.group, d.code) for d in leader.last_step.decisions if d.kind != "desired"}
    assert lost
    clock.now += 0.1
    leader.cycle(coordinator, leadership, clock.now)
    codes = {
        (e.payload["decision"]["group"], e.payload["decision"]["code"]) for e in coordinator.audit()
    }
    assert lost <= codes  # not taken as already audited
    leader.close()


class PublishingRace(MemoryCoordinator):
    """A coordinator whose publish lets the probe loop change a verdict mid-way, as the
    event loop's thread can while the cycle's thread publishes."""

    during_publish: list[object] = []

    def publish(self, observations: Sequence[Observation]) -> None:
        for change in self.during_publish:
            change()  # type: ignore[operator]
        self.during_publish = []
        super().publish(observations)


def test_a_verdict_that_changes_during_a_publish_stays_dirty() -> None:
    config = example()
    clock = Clock()
    store = MemoryStore(clock)
    coordinator = PublishingRace(store, "dc1-a")
    store.tick()
    observer = Observer(config, "dc1-a", on_change=lambda: None)
    target = next(iter(observer.scheduler.states))
    observer.verdicts.publish(coordinator, clock.now)
    assert not observer.verdicts.dirty
    down = CheckState("down", 0, False, clock.now, "refused")
    coordinator.during_publish = [
        lambda: observer._on_result(target, down, CheckResult(False, 0.0, "refused"))
    ]
    observer._on_result(
        target, CheckState("up", 0, True, clock.now, ""), CheckResult(True)
    )  # a first change: dirty
    observer.verdicts.publish(coordinator, clock.now)  # the second change lands mid-publish
    assert observer.verdicts.dirty  # so the next cycle publishes it, not the next heartbeat
    assert observer.verdicts.publish_due()


def test_a_reload_waits_for_the_cycle_that_uses_the_roles(tmp_path: Path) -> None:
    config_path = tmp_path / "cluster.yaml"
    config_path.write_text(
        EXAMPLE.read_text().replace("secrets/", f"{EXAMPLE.parent.as_posix()}/secrets/")
    )
    config = example()
    store = MemoryStore(Clock())
    coordinator = MemoryCoordinator(store, "witness-a")
    store.tick()
    inside = threading.Event()
    release = threading.Event()

    class SlowDaemon(Daemon):
        seen: list[tuple[object, object]] = []

        def cycle_once(self, now: float) -> float | None:
            used = self.leader
            if not inside.is_set():
                inside.set()
                release.wait(10)
            self.seen.append((used, self.leader))
            return None

    daemon = SlowDaemon(config, "witness-a", config_path=str(config_path), coordinator=coordinator)

    async def scenario() -> None:
        task = asyncio.create_task(daemon.run())
        await asyncio.to_thread(inside.wait, 10)
        before = daemon.leader
        daemon.request_reload()  # SIGHUP while the cycle is inside
        await asyncio.sleep(0.3)
        assert daemon.leader is before  # not swapped under the running cycle
        release.set()
        for _ in range(100):
            if daemon.leader is not before:
                break
            await asyncio.sleep(0.05)
        assert daemon.leader is not before  # reloaded between two cycles
        daemon.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    used, current = daemon.seen[0]
    assert used is current  # the first cycle saw one leader role from start to end


def test_a_reload_is_all_or_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A config that parses but names a TSIG key file that is not there is refused whole: the
    running roles stay, none is half-replaced (before, the leader's DNS steerer failed only
    when it first steered)."""
    good = EXAMPLE.read_text().replace("secrets/", f"{EXAMPLE.parent.as_posix()}/secrets/")
    config_path = tmp_path / "cluster.yaml"
    config_path.write_text(good)
    store = MemoryStore(Clock())
    daemon = Daemon(
        example_isolated(),
        "dc1-a",
        config_path=str(config_path),
        coordinator=MemoryCoordinator(store, "dc1-a"),
    )
    before = (daemon.leader, daemon.agent, daemon.observer, daemon.config)
    config_path.write_text(good.replace("secrets/tsig.key", "secrets/no-such.key"))
    with caplog.at_level("ERROR", logger="failover.daemon"):
        asyncio.run(daemon.reload())
    assert (daemon.leader, daemon.agent, daemon.observer, daemon.config) == before
    assert any(
        "reload refused" in r.message and "no-such.key" in r.message for r in caplog.records
    ), [r.message for r in caplog.records]
    config_path.write_text(good.replace("hold_down_s: 2", "hold_down_s: 3"))
    asyncio.run(daemon.reload())
    assert daemon.config.policy.hold_down_s == 3 and daemon.leader is not before[0]
    for role in (daemon.leader, daemon.agent):
        if role is not None:
            role.close()
