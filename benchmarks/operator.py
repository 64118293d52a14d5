"""Operator interface figures on a real little cluster on loopback (ZooKeeper, BIND, three
daemons; see tests/operator/cluster.py).

Prints one JSON object as its last line:
  switchover_verified_s_p50/max   `failover switchover --to SITE --wait`: from the command's
                                  submission to every site applied and DNS verified (as the
                                  CLI measures and prints it), over --rounds switches
  switchover_cli_wall_s_p50       the whole CLI run: start, pre-checks, submit, result, wait
  api_write_ms_p50/p99            a signed POST /unfreeze answered 202 (verify + queue)
  api_refused_ms_p50              an unsigned POST refused 401
  api_status_ms_p50               GET /status (a fresh coordinator read each: cache expired)
  metrics_scrape_ms_p50           GET /metrics
  refusal_recorded_s_p50          from an unsigned (refused) request to its count in a
                                  refusal summary (recorded once per refusal_interval_s: 1 s)

    .venv/bin/python benchmarks/operator.py [--rounds 6] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from failover.api.auth import signed_headers
from tests.operator.cluster import (
    FAILOVER,
    KEY_ID,
    KEY_SECRET,
    SCOPE,
    Cluster,
    start_cluster,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def post(cluster: Cluster, path: str, signed: bool) -> int:
    body = json.dumps({"reason": f"bench {time.monotonic_ns()}"})  # never a replay
    headers = {"Content-Type": "application/json"}
    if signed:
        headers |= signed_headers("POST", cluster.api["a"], path, body, KEY_ID, KEY_SECRET, SCOPE)
    request = urllib.request.Request(
        cluster.url("a", path), data=body.encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def timed_ms(action: object, count: int) -> list[float]:
    took = []
    for _ in range(count):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        took.append((time.perf_counter() - start) * 1000)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="failover-bench-operator-") as folder:
        cluster = start_cluster(Path(folder))
        try:
            verified, wall = [], []
            for index in range(args.rounds):
                site = "dc2" if index % 2 == 0 else "dc1"
                start = time.monotonic()
                done = subprocess.run(
                    [
                        FAILOVER,
                        "switchover",
                        "--to",
                        site,
                        "--wait",
                        "--config",
                        str(cluster.config_path),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                wall.append(time.monotonic() - start)
                if done.returncode != 0:
                    raise SystemExit(f"switchover failed: {done.stdout}{done.stderr}")
                verified.append(
                    float(
                        done.stdout.split("applied and verified on ")[1].split(" in ")[1].split()[0]
                    )
                )
            writes = timed_ms(lambda: post(cluster, "/unfreeze", True), args.requests)
            refused = timed_ms(lambda: post(cluster, "/unfreeze", False), args.requests // 4)

            def status() -> None:
                time.sleep(0.55)  # let the 0.5 s status cache expire
                start = time.perf_counter()
                cluster.get("a", "/status")
                status_ms.append((time.perf_counter() - start) * 1000)

            status_ms: list[float] = []
            for _ in range(10):
                status()
            scrape = timed_ms(lambda: cluster.get("a", "/metrics"), 20)
            audited = []
            for _ in range(5):
                client = cluster.operator()
                try:
                    before = sum(r["refused"] for r in client.refusals())
                    start = time.monotonic()
                    post(cluster, "/freeze", False)
                    deadline = start + 20
                    while time.monotonic() < deadline:
                        if sum(r["refused"] for r in client.refusals()) > before:
                            break
                        time.sleep(0.02)
                finally:
                    client.close()
                audited.append(time.monotonic() - start)
        finally:
            cluster.stop()
    print(
        json.dumps(
            {
                "switchover_verified_s_p50": round(statistics.median(verified), 3),
                "switchover_verified_s_max": round(max(verified), 3),
                "switchover_cli_wall_s_p50": round(statistics.median(wall), 3),
                "api_write_ms_p50": round(statistics.median(writes), 2),
                "api_write_ms_p99": round(pct(writes, 0.99), 2),
                "api_refused_ms_p50": round(statistics.median(refused), 2),
                "api_status_ms_p50": round(statistics.median(status_ms), 2),
                "metrics_scrape_ms_p50": round(statistics.median(scrape), 2),
                "refusal_recorded_s_p50": round(statistics.median(audited), 3),
                "rounds": args.rounds,
                "requests": args.requests,
            }
        )
    )


if __name__ == "__main__":
    main()
