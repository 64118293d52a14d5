"""The observer's verdicts and their publishing (`failover.daemon.observer.Verdicts`), fed by
hand: a change is published at the next cycle, and unchanged verdicts every heartbeat, counted
on the monotonic clock, so that a wall clock stepped back does not silence them."""

from __future__ import annotations

from failover.coord import MemoryCoordinator, MemoryStore
from failover.core.model import CheckState
from failover.daemon.observer import Verdicts
from tests.core.world import example


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_verdicts_publish_on_change_and_on_heartbeat() -> None:
    config = example()
    wall, monotonic = Clock(1000.0), Clock(50.0)
    store = MemoryStore(wall)
    coordinator = MemoryCoordinator(store, "dc1-a")
    store.tick()
    verdicts = Verdicts(config, "dc1-a", ["dc1/app/x", "dc2/app/y"], lambda: None, monotonic)
    assert verdicts.publish_due()  # nothing published yet
    verdicts.publish(coordinator, wall.now)
    assert not verdicts.publish_due()
    verdicts.update("dc1/app/x", CheckState("down", 0, False, 49.0, "refused"))
    assert verdicts.dirty and verdicts.publish_due()
    verdicts.publish(coordinator, wall.now)
    published = {o.target: o for o in coordinator.observations()}
    assert published["dc1/app/x"].verdict == "down"
    assert published["dc1/app/x"].since == 999.0  # on the wall clock: a second before now
    assert published["dc1/app/x"].at == 1000.0
    monotonic.now += config.cluster.daemon.heartbeat_s - 0.01
    assert not verdicts.publish_due()
    monotonic.now += 0.01
    assert verdicts.publish_due()  # the heartbeat


def test_a_wall_clock_stepped_back_does_not_silence_the_heartbeat() -> None:
    config = example()
    wall, monotonic = Clock(1000.0), Clock(50.0)
    store = MemoryStore(wall)
    coordinator = MemoryCoordinator(store, "dc1-a")
    store.tick()
    verdicts = Verdicts(config, "dc1-a", ["dc1/app/x"], lambda: None, monotonic)
    verdicts.publish(coordinator, wall.now)
    wall.now -= 30.0  # NTP steps the clock back
    monotonic.now += config.cluster.daemon.heartbeat_s
    assert verdicts.publish_due()  # counted on the wall clock, it would wait 30 s more
    verdicts.publish(coordinator, wall.now)
    assert {o.at for o in coordinator.observations()} == {970.0}  # stamped on the wall clock
