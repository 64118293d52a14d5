"""Leader takeover time on a real 3-node ZooKeeper ensemble, after a crash and after a clean stop.

Three contender processes (`failover.testing.contender`) campaign. A crash trial kill -9s the
leader and measures until another one's `lead` event; a clean trial sends SIGTERM (the leader
resigns and closes its session). Times are on the system-wide monotonic clock. The last line
printed is one JSON object:

    {"session_timeout_s": S, "crash_takeover_s": {"p50", "p99", "n"}, "clean_takeover_s": {...}}

Goal: crash p99 <= S + 1 s; clean stop p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from failover.testing.contender import Contender
from failover.testing.servers.process import wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "p50": round(percentile(values, 0.5), 4),
        "p99": round(percentile(values, 0.99), 4),
        "n": len(values),
    }


class Bench:
    def __init__(self, workdir: Path, hosts: str, session_timeout_s: float) -> None:
        self.workdir = workdir
        self.hosts = hosts
        self.options = (
            "--chroot",
            f"/bench-{uuid.uuid4().hex[:8]}",
            "--cluster",
            "bench",
            "--session-timeout-s",
            str(session_timeout_s),
        )
        self.contenders: dict[str, Contender] = {}
        self.runs = 0

    def start(self, name: str) -> Contender:
        self.runs += 1
        contender = Contender(self.workdir / f"run{self.runs}", name, self.hosts, *self.options)
        contender.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.contenders[name] = contender.start()
        wait_until(lambda: bool(contender.events("joined")), 30.0, f"{name} joins")
        return contender

    def leader(self) -> Contender:
        def one() -> bool:
            return sum(c.leading() for c in self.contenders.values()) == 1

        wait_until(one, 30.0, "one leader")
        return next(c for c in self.contenders.values() if c.leading())

    def trial(self, crash: bool) -> float:
        old = self.leader()
        others = [c for c in self.contenders.values() if c is not old]
        started = time.monotonic()
        if crash:
            old.process.kill()
        else:
            old.process.signal(signal.SIGTERM)

        def taken() -> float | None:
            times = [e["t"] for c in others for e in c.events("lead") if e["t"] >= started]
            return min(times) if times else None

        wait_until(lambda: taken() is not None, 30.0, "a new leader")
        took = taken()
        assert took is not None
        old.stop()
        self.start(old.instance)
        return took - started

    def stop(self) -> None:
        for contender in self.contenders.values():
            contender.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="leader takeover time on a real ensemble")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--session-timeout-s", type=float, default=1.0)
    parser.add_argument("--tick-ms", type=int, default=200)
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    with tempfile.TemporaryDirectory(prefix="takeover-") as folder:
        workdir = Path(folder)
        ensemble = ZooKeeperEnsemble(workdir / "zk", 3, tick_ms=args.tick_ms)
        bench: Bench | None = None
        try:
            ensemble.start(timeout_s=60.0)
            bench = Bench(workdir, ensemble.connect_string, args.session_timeout_s)
            for name in ("a", "b", "c"):
                bench.start(name)
            crash, clean = [], []
            for index in range(args.trials):
                crash.append(bench.trial(crash=True))
                print(f"crash trial {index + 1}: {crash[-1]:.3f} s", file=sys.stderr)
            for index in range(args.trials):
                clean.append(bench.trial(crash=False))
                print(f"clean trial {index + 1}: {clean[-1]:.3f} s", file=sys.stderr)
        finally:
            if bench is not None:
                bench.stop()
            ensemble.stop()
    print(
        json.dumps(
            {
                "session_timeout_s": args.session_timeout_s,
                "crash_takeover_s": summary(crash),
                "clean_takeover_s": summary(clean),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
