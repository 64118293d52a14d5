"""Probe throughput, start-time jitter and memory, against nginx on loopback.

Prints one JSON object as its last line:
  http_probes_per_s     sustained HTTP probes a second (a fresh connection each, through the
                        same path as the daemon: hard timeout, result wording), prober saturated
  tcp_probes_per_s      the same for TCP connect checks
  start_jitter_p99_ms   p99 lateness of probe start times, the scheduler running 1,000 HTTP
                        checks at a combined 2,000 probes a second
  rss_mb_1000_checks    the peak resident memory of that prober process
  loaded_start_jitter_p99_ms
                        the same start jitter while two CPU-bound competitor processes (nice 0,
                        bounded in time) keep both cores busy, the prober started with the
                        scheduling settings of docs/failover@.service (Nice=,
                        CPUSchedulingPolicy=, CPUSchedulingPriority=), as systemd would;
                        `loaded_default_start_jitter_p99_ms` is the same without them
Each measurement runs in its own process; nginx (one worker) runs in another. Both share the
machine's two cores, as they would in the lab; anything else running skews the figures (the
1-minute load average before the run is reported with them).

    .venv/bin/python benchmarks/probes.py [--seconds 8] [--checks 1000] [--rate 2000]

The loaded runs need root (a negative nice or a real-time policy needs CAP_SYS_NICE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from failover.config.model import CheckBase, HttpCheck, TcpCheck
from failover.core.model import CheckResult, CheckState
from failover.daemon.supervisor import Priority
from failover.probes import ProbeContext, ProbeScheduler, ProbeTarget, make_probe, run_check
from failover.testing.servers.nginx import NginxServer

UNIT = Path(__file__).resolve().parent.parent / "docs" / "failover@.service"


def unit_priority(path: Path = UNIT) -> Priority:
    """The scheduling settings the systemd unit gives the daemon."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            fields[key.strip()] = value.strip()
    nice = fields.get("Nice")
    return Priority(
        nice=int(nice) if nice is not None else None,
        policy=fields.get("CPUSchedulingPolicy"),
        rt_priority=int(fields.get("CPUSchedulingPriority", "0")),
    )


def competitors(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """`count` processes that spin on the CPU for `seconds`, then end by themselves."""
    spin = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def http_check(interval_s: float = 2.0) -> HttpCheck:
    return HttpCheck(
        type="http", path="/health", interval_s=interval_s, timeout_s=min(1.0, interval_s / 2)
    )


async def saturate(
    check: CheckBase, endpoint: str, seconds: float, workers: int
) -> dict[str, float]:
    """`workers` loops probing back to back for `seconds`: the most the prober can do."""
    failures: list[str] = []
    done = 0
    async with ProbeContext() as context:
        probe = make_probe(check, context)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                result = await run_check(probe, check, endpoint)
                done += 1
                if not result.ok:
                    failures.append(result.reason)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - started
    return {
        "probes_per_s": done / elapsed,
        "failed": len(failures),
        "first_failure": failures[0] if failures else "",
    }


async def scheduled(endpoint: str, checks: int, rate: float, seconds: float) -> dict[str, float]:
    """The real scheduler with `checks` HTTP checks adding up to `rate` probes a second."""
    check = http_check(interval_s=checks / rate)
    targets = [ProbeTarget("dc1", f"s{i}", "app", endpoint, check) for i in range(checks)]
    results: list[CheckResult] = []

    def on_result(key: str, state: CheckState, result: CheckResult) -> None:
        results.append(result)

    scheduler = ProbeScheduler(targets, on_result, concurrency=256)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(max(2.0, 4 * check.interval_s))  # past the first rounds' fast re-checks
    scheduler.lateness_s.clear()
    warm = len(results)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    measured = len(results) - warm
    elapsed = time.perf_counter() - started
    lateness = sorted(scheduler.lateness_s)
    scheduler.stop()
    await task
    failed = [r.reason for r in results if not r.ok]
    return {
        "probes_per_s": measured / elapsed,
        "jitter_p50_ms": 1000 * statistics.median(lateness),
        "jitter_p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))],
        "failed": len(failed),
        "first_failure": failed[0] if failed else "",
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(args: argparse.Namespace) -> None:
    if args.mode == "http":
        out = asyncio.run(saturate(http_check(), args.endpoint, args.seconds, args.workers))
    elif args.mode == "tcp":
        check = TcpCheck(type="tcp", interval_s=2.0, timeout_s=1.0)
        out = asyncio.run(saturate(check, args.endpoint, args.seconds, args.workers))
    else:
        out = asyncio.run(scheduled(args.endpoint, args.checks, args.rate, args.seconds))
    print(json.dumps(out))


def run_child(
    mode: str,
    endpoint: str,
    args: argparse.Namespace,
    *,
    load: int = 0,
    priority: Priority | None = None,
    label: str = "",
) -> dict[str, float]:
    argv = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--endpoint",
        endpoint,
        "--seconds",
        str(args.seconds),
        "--checks",
        str(args.checks),
        "--rate",
        str(args.rate),
        "--workers",
        str(args.workers),
    ]
    timeout = args.seconds * 4 + 60
    hogs = competitors(load, timeout) if load else []
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            preexec_fn=priority.apply if priority else None,
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{label or mode}: {json.dumps(result)}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--child", dest="mode")
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.mode:
        child(args)
        return
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="fo-bench-probes-"))
    nginx = NginxServer(workdir / "nginx", name="bench").start()
    try:
        http = run_child("http", nginx.endpoint, args)
        tcp = run_child("tcp", nginx.endpoint, args)
        sched = run_child("scheduled", nginx.endpoint, args)
        priority = unit_priority()
        loaded_default = run_child(
            "scheduled",
            nginx.endpoint,
            args,
            load=2,
            label="scheduled, 2 competitors, default priority",
        )
        loaded = run_child(
            "scheduled",
            nginx.endpoint,
            args,
            load=2,
            priority=priority,
            label=f"scheduled, 2 competitors, {priority.describe()}",
        )
    finally:
        nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "http_probes_per_s": round(http["probes_per_s"]),
                "tcp_probes_per_s": round(tcp["probes_per_s"]),
                "start_jitter_p99_ms": round(sched["jitter_p99_ms"], 1),
                "loaded_start_jitter_p99_ms": round(loaded["jitter_p99_ms"], 1),
                "loaded_default_start_jitter_p99_ms": round(loaded_default["jitter_p99_ms"], 1),
                "loaded_priority": priority.describe(),
                "loaded_failed_probes": int(loaded["failed"] + loaded_default["failed"]),
                "rss_mb_1000_checks": round(sched["rss_mb"], 1),
                "scheduled_http_probes_per_s": round(sched["probes_per_s"]),
                "scheduled_rate_asked": args.rate,
                "start_jitter_p50_ms": round(sched["jitter_p50_ms"], 2),
                "failed_probes": int(http["failed"] + tcp["failed"] + sched["failed"]),
                "load_avg_1m_before": round(
                    load_before, 2
                ),  # other work on the 2 cores skews all this
            }
        )
    )


if __name__ == "__main__":
    main()
