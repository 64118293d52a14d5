"""Recording and replay: what recording costs, and how fast a day replays (one core).

The daemon's real `Leader` runs against the memory coordinator with the lab's shape of
cluster (examples/two-dc.yaml: three observer sites, two groups, five services a site), one
cycle a second, observers republishing every `heartbeat_s`, and an incident every hour (the
active site's database down for a minute: a failover, manual failback so it stays).

Times are CPU times of this process (the machine may be shared; wall time is printed too).

1. cycle_overhead_ratio: time in `Leader.cycle` with a recorder over time without, the same
   hour run in lockstep.
2. record_bytes_per_hour: the recording's compressed size per hour.
3. day_replay_s: `failover replay`'s work (read, decode, run the engine, compare) on a day of
   that recording (measured on --hours, 24 by default, scaled to 24 h); goal <= 10 s.
4. faithful: the recorded config reproduced every recorded decision.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from failover.config import Config, load_config
from failover.coord import Member, MemoryCoordinator, MemoryStore
from failover.core.model import Observation, target_key
from failover.daemon.leader import Leader
from failover.record.log import Recorder
from failover.record.read import merged
from failover.record.replay import replay

ROOT = Path(__file__).resolve().parents[1]
HOUR_S = 3600.0
START = float(int(time.time()) // 3600 * 3600)  # file ages are judged on this clock


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def observations(
    config: Config,
    now: float,
    stamps: dict[str, float],
    down: tuple[str, str] | None,
    since: dict[str, float],
) -> list[Observation]:
    out = []
    for instance, placed in config.instances.items():
        for site in config.serving_sites:
            for name, service in config.sites[site].services.items():
                verdict = "down" if down == (site, name) else "up"
                key = f"{site}/{name}"
                for endpoint in service.targets():
                    out.append(
                        Observation(
                            instance,
                            placed.site,
                            target_key(site, name, endpoint),
                            verdict,
                            since.get(key, START),
                            stamps[instance],
                        )
                    )
    return out


class World:
    """One leader with its memory coordinator and scripted observers; `cycle()` runs one
    second of it and returns the seconds spent in `Leader.cycle`."""

    def __init__(self, config: Config, directory: Path | None, heartbeat_s: float) -> None:
        self.config = config
        self.heartbeat_s = heartbeat_s
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.coordinator = MemoryCoordinator(self.store, "bench-leader")
        self.store.tick()
        self.agents = []
        for instance, placed in config.instances.items():
            if placed.site in config.serving_sites:
                agent = MemoryCoordinator(self.store, instance)
                agent.register(Member(instance, placed.site, "bench", ("agent",), START))
                self.agents.append(agent)
        leadership = self.coordinator.campaign()
        assert leadership is not None
        self.leadership = leadership
        self.leader = Leader(config)
        if directory is not None:
            self.leader.recorder = Recorder(config, "bench-leader", directory, clock=self.clock)
        self.stamps = dict.fromkeys(config.instances, START)
        self.since: dict[str, float] = {}
        self.incident = "dc1"
        self.cycles = 0

    def cycle(self) -> float:
        clock = self.clock
        offset = (clock.now - START) % HOUR_S
        if offset == 600.0:
            state, _ = self.coordinator.desired("web")
            self.incident = state.active if state is not None else "dc1"
        down = (self.incident, "db") if 600 <= offset < 660 else None
        if offset in (600.0, 660.0):
            self.since[f"{self.incident}/db"] = clock.now
        if int(clock.now - START) % int(self.heartbeat_s) == 0 or offset in (600.0, 660.0):
            self.stamps = dict.fromkeys(self.stamps, clock.now)
            self.coordinator.publish(
                observations(self.config, clock.now, self.stamps, down, self.since)
            )
        self.store.tick()
        began = time.thread_time()
        self.leader.cycle(self.coordinator, self.leadership, clock.now)
        spent = time.thread_time() - began
        self.cycles += 1
        clock.now += 1.0
        return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0, help="recorded hours")
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    args = parser.parse_args()
    config = load_config(ROOT / "examples" / "two-dc.yaml")
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        # the same hour with and without recording, in lockstep so that load hits both alike
        bare, recording = (
            World(config, None, args.heartbeat_s),
            World(config, directory / "one", args.heartbeat_s),
        )
        bare_s = recorded_s = 0.0
        for _ in range(int(min(args.hours, 1.0) * HOUR_S)):
            bare_s += bare.cycle()
            recorded_s += recording.cycle()
        bare.leader.close()
        recording.leader.close()
        world = World(config, directory / "many", args.heartbeat_s)
        while world.cycles < args.hours * HOUR_S:
            world.cycle()
        world.leader.close()
        cycles = world.cycles
        files = sorted((directory / "many").glob("*.jsonl.gz"))
        size = sum(p.stat().st_size for p in files)
        began, wall = time.process_time(), time.perf_counter()
        outcome = replay(merged(files))
        replay_s, wall_s = time.process_time() - began, time.perf_counter() - wall
    summary = outcome.recorded.as_dict()
    print(
        f"{cycles} cycles over {args.hours:g} h recorded in {len(files)} file(s), "
        f"{size} bytes; {summary['failovers']} failovers; replayed in {replay_s:.2f} s of CPU "
        f"({wall_s:.2f} s wall); "
        f"leader cycles {bare_s:.2f} s without recording, {recorded_s:.2f} s with",
        flush=True,
    )
    print(
        json.dumps(
            {
                "faithful": outcome.faithful and outcome.cycles == cycles,
                "day_replay_s": round(replay_s * 24 / args.hours, 2),
                "record_bytes_per_hour": round(size / args.hours),
                "cycle_overhead_ratio": round(recorded_s / bare_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
