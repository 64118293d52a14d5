"""Failover time of the whole system in the lab: from a service stopped to the traffic moved.

Builds the full stack (`failover.lab.stack.Stack`: ZooKeeper over three sites, real services,
three supervised daemons), then runs trials: stop the active site's database, and measure
- BGP: until the isp's best route for the prefix is the other site's, as primary;
- DNS: until every authoritative name server answers the other site's address.
The database is then started again and the next trial fails the site that is now active, so
the trials alternate between dc1 (a primary database) and dc2 (a standby); both sites probe
their database with the same check. The hold-down is set to 0 (and the cooldown and switch
budget out of the way) so that the figures are detection plus steering; the bound for
detection is D = interval + (fall - 1) x re-check + timeout of the failing check (the first
failing check starts up to one interval after the fault, then it is re-checked at the fast
re-check interval). Each trial's clock starts when the database is told to stop (a fast
shutdown refuses new connections at once).
Goal: BGP p99 <= D + 0.5 s; DNS p99 <= D + 1 s. Needs root; removes the lab afterwards.

`--config FILE` runs another profile of the lab's layout (e.g. examples/fast.yaml);
the daemons run at the scheduling priority of docs/failover@.service unless `--no-priority`.

The last line printed is one JSON object:
{"detection_bound_s": D, "bgp_failover_s": {"p50", "p99", "n"}, "dns_failover_s": {...}, ...}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from typing import Any

from probes import unit_priority

from failover.daemon.supervisor import Priority
from failover.lab.lab import EXAMPLE_CONFIG
from failover.lab.stack import Stack
from failover.testing.lab import unavailable

SERVICE = "db"
POLL_S = 0.005
LIMIT_S = 30.0
SHOW_TIMELINE = False
OVERRIDES: dict[str, Any] = {
    "policy": {"hold_down_s": 0, "cooldown_s": 0, "max_switches_per_hour": 1000},
}


def summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan"), "n": 0}
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3), "n": len(ordered)}


def detection_bound_s(stack: Stack, site: str) -> float:
    check = stack.config.sites[site].services[SERVICE].check
    return round(check.interval_s + check.recheck_s * (check.fall - 1) + check.timeout_s, 3)


def timeline(stack: Stack, since: float) -> list[str]:
    """What the daemons logged about the decision after the fault (wall clock `since`), each
    line with its offset: where the time between the fault and the traffic moved goes."""
    lines: list[tuple[float, str]] = []
    for daemon in stack.daemons.values():
        try:
            text = daemon.log_path.read_text(errors="replace").splitlines()[-400:]
        except OSError:
            continue
        for line in text:
            try:
                record = json.loads(line)
                at = record["at"]
                stamp = (
                    at
                    if isinstance(at, float)
                    else time.mktime(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S"))
                    - time.timezone
                    + int(at[20:23]) / 1000
                )
            except (ValueError, KeyError, TypeError):
                continue
            if stamp >= since and record.get("logger") in ("failover.leader", "failover.agent"):
                lines.append((stamp - since, f"{daemon.instance}: {record.get('msg', '')[:110]}"))
    return [f"  +{offset:.3f} s {text}" for offset, text in sorted(lines)]


def cpu_percent(stack: Stack) -> dict[str, float]:
    """Each daemon's CPU use over its life so far (user + system), in % of one core."""
    out = {}
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as uptime:
        now_s = float(uptime.read().split()[0])
    for name, daemon in stack.daemons.items():
        pid = daemon.child_pid()
        if pid is None:
            continue
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        used_s = (int(fields[11]) + int(fields[12])) / ticks
        alive_s = now_s - int(fields[19]) / ticks
        out[name] = round(100 * used_s / max(alive_s, 1e-6), 1)
    return out


def trial(stack: Stack, active: str, other: str) -> tuple[float | None, float | None]:
    """Stop `active`'s database; seconds until BGP and DNS are on `other` (None: not in time)."""
    started = time.monotonic()
    wall = time.time()
    stack.stop_service(active, SERVICE)
    bgp_s = dns_s = None
    while time.monotonic() - started < LIMIT_S and (bgp_s is None or dns_s is None):
        if bgp_s is None and stack.route() == (other, "primary"):
            bgp_s = time.monotonic() - started
        if dns_s is None and stack.dns_site() == other:
            dns_s = time.monotonic() - started
        time.sleep(POLL_S)
    if SHOW_TIMELINE:
        time.sleep(0.3)
        print("\n".join(timeline(stack, wall)), file=sys.stderr)
    return bgp_s, dns_s


def run(trials: int, config: str, priority: Priority | None) -> dict[str, Any]:
    stack = Stack(OVERRIDES, base_config=config, priority=priority, agents_first=True)
    bgp: list[float] = []
    dns: list[float] = []
    missed = 0
    phase = random.Random(7)
    try:
        stack.up()
        bound = {site: detection_bound_s(stack, site) for site in stack.config.serving_sites}
        if len(set(bound.values())) != 1:
            raise SystemExit(f"the sites probe their {SERVICE} differently: {bound}")
        active = stack.config.preferred_site(stack.bgp_group)
        for number in range(1, trials + 1):
            other = next(s for s in stack.config.serving_sites if s != active)
            stack.wait_healthy(timeout_s=60.0)
            stack.wait_steady(active, 30.0)
            time.sleep(phase.uniform(0.0, 1.0))  # the fault at any point of the probe cycle
            bgp_s, dns_s = trial(stack, active, other)
            print(
                f"trial {number}: {active}'s {SERVICE} stopped; BGP on {other} after "
                f"{bgp_s if bgp_s is None else round(bgp_s, 3)} s, DNS after "
                f"{dns_s if dns_s is None else round(dns_s, 3)} s",
                file=sys.stderr,
            )
            if bgp_s is None or dns_s is None:
                missed += 1
                print(stack.describe(), file=sys.stderr)
            if bgp_s is not None:
                bgp.append(bgp_s)
            if dns_s is not None:
                dns.append(dns_s)
            stack.start_service(active, SERVICE)
            if bgp_s is None:
                stack.reset(active)
            else:
                active = other
        cpu = cpu_percent(stack)
    except Exception:
        print(stack.log_tails(), file=sys.stderr)
        raise
    finally:
        stack.down()
    d = next(iter(bound.values()))
    return {
        "detection_bound_s": d,
        "bgp_failover_s": summary(bgp),
        "dns_failover_s": summary(dns),
        "hold_down_s": OVERRIDES["policy"]["hold_down_s"],
        "goal_bgp_p99_s": round(d + 0.5, 3),
        "goal_dns_p99_s": round(d + 1.0, 3),
        "missed": missed,
        "daemon_cpu_percent": cpu,
        "config": str(config),
        "priority": priority.describe() if priority else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument(
        "--config",
        default=str(EXAMPLE_CONFIG),
        help="the lab's config to run (default: examples/two-dc.yaml)",
    )
    parser.add_argument(
        "--no-priority",
        action="store_true",
        help="run the daemons at normal priority, not the unit's",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print what the daemons logged after each fault, with offsets",
    )
    args = parser.parse_args()
    global SHOW_TIMELINE
    SHOW_TIMELINE = args.timeline
    reason = unavailable()
    if reason:
        raise SystemExit(f"cannot run the lab here: {reason}")
    priority = None if args.no_priority else unit_priority()
    print(json.dumps(run(max(1, args.trials), args.config, priority)))


if __name__ == "__main__":
    main()
