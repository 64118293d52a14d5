"""A recorded incident without ZooKeeper: the daemon's real `Leader` against the memory
coordinator, observers published by hand, a `Recorder` attached as the daemon attaches it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from failover.config import Config
from failover.coord import Member, MemoryCoordinator, MemoryStore
from failover.core.model import Command
from failover.daemon.leader import Leader
from failover.record.log import Recorder
from tests.core.world import everyone_sees, observations


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record_incident(
    config: Config,
    directory: Path,
    *,
    down_from: float = 10.0,
    down_until: float = 40.0,
    length_s: float = 60.0,
    cycle_s: float = 0.5,
    commands: dict[float, Command] | None = None,
    **options: Any,
) -> tuple[Recorder, Leader]:
    """dc1's db goes down for every observer from `down_from` to `down_until` (seconds after
    the start); the leader cycles every `cycle_s`; returns the closed recorder."""
    clock = Clock()
    start = clock.now
    store = MemoryStore(clock)
    coordinator = MemoryCoordinator(store, "dc1-a")
    store.tick()
    agents = []
    for instance, placed in config.instances.items():
        if placed.site in config.serving_sites:
            agent = MemoryCoordinator(store, instance)
            agent.register(Member(instance, placed.site, "test", ("agent",), clock.now))
            agents.append(agent)
    leadership = coordinator.campaign()
    assert leadership is not None
    leader = Leader(config)
    recorder = Recorder(config, "dc1-a", directory, clock=clock, **options)
    leader.recorder = recorder
    pending = dict(commands or {})
    while clock.now - start < length_s:
        offset = clock.now - start
        down = everyone_sees(config, "dc1", "db") if down_from <= offset < down_until else []
        changed = start + (down_from if down else down_until if offset >= down_until else 0.0)
        coordinator.publish(
            [
                replace(o, since=changed)
                if o.verdict == "down" or o.target.startswith("dc1/db/")
                else replace(o, since=start)
                for o in observations(config, clock.now, down=down)
            ]
        )
        for at in [t for t in pending if t <= offset]:
            coordinator.submit(pending.pop(at))
        store.tick()
        leader.cycle(coordinator, leadership, clock.now)
        clock.now += cycle_s
    leader.close()
    return recorder, leader
