"""Simulator speed: simulated seconds per wall second, and a campaign's wall time.

1. One core: 24 simulated hours of the reference model under the random faults of
   simulations/chaos.yaml (speedup = simulated seconds / wall seconds; goal >= 10,000x).
2. Both cores: a campaign of N one-hour runs (goal: 10,000 runs within 10 minutes).
3. One core: a long run (1,000 simulated hours) of the reference model with 1 % probe loss on
   cross-site checks and no fault (goal: within 120 s, `long_run_hours_per_s` >= 8.3).
4. False failovers per 1,000 simulated hours at 1 % loss on every check, of the reference
   model (one run) and of the fast profile (simulations/fast.yaml, split into pieces over the
   processes; goal <= 1 each). The loss is background noise, not a fault: any automatic
   failover in these runs is a false one. `*down_verdicts_per_1000h` counts the single
   observers' verdicts the noise turned down (what the observer quorum and hold-down absorb).

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from failover.sim.campaign import (
    Campaign,
    Noise,
    load_campaign,
    run_campaign,
    run_one,
    run_steady,
    run_steady_split,
)
from failover.sim.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000, help="one-hour runs in the campaign")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--long-hours", type=float, default=1000.0, help="simulated hours of the long runs"
    )
    parser.add_argument(
        "--fast-hours", type=float, default=1000.0, help="simulated hours of the fast profile"
    )
    parser.add_argument(
        "--fast-pieces", type=int, default=10, help="independent runs the fast hours split into"
    )
    parser.add_argument("--loss", type=float, default=0.01, help="background probe loss")
    args = parser.parse_args()
    if args.long_hours <= 0 or args.fast_hours <= 0 or not 1 <= args.fast_pieces <= 1000:
        parser.error("--long-hours and --fast-hours must be > 0, --fast-pieces within 1..1000")
    if not 0 < args.loss < 1:
        parser.error(f"--loss must be within 0..1 (got {args.loss})")

    campaign = load_campaign(ROOT / "simulations" / "chaos.yaml")
    long_run = Campaign(
        campaign.source,
        campaign.spec.model_copy(update={"duration_s": args.hours * 3600.0}),
        campaign.topology,
    )
    started = time.perf_counter()
    result = run_one(long_run, args.seed)
    wall_s = time.perf_counter() - started
    print(
        f"{args.hours:g} simulated hours in {wall_s:.2f} s on one core: "
        f"{result.events} events, {len(result.classes)} fault classes, "
        f"{result.switches} switches, {len(result.violations)} violations",
        flush=True,
    )

    started = time.perf_counter()
    results = run_campaign(campaign, args.runs, seed=args.seed, jobs=args.jobs)
    campaign_wall_s = time.perf_counter() - started
    violations = len(result.violations) + sum(len(r.violations) for r in results)
    print(
        f"{args.runs} one-hour runs in {campaign_wall_s:.1f} s on {args.jobs} processes", flush=True
    )

    reference = load_topology(ROOT / "simulations" / "reference.yaml")
    started = time.perf_counter()
    long = run_steady(reference, args.long_hours, args.seed, Noise(args.loss, True))
    long_wall_s = time.perf_counter() - started
    print(
        f"{args.long_hours:g} h, {args.loss:.0%} loss across sites: {long_wall_s:.1f} s, "
        f"{long.events} events, {long.false_failovers} false failovers",
        flush=True,
    )
    every = run_steady(reference, args.long_hours, args.seed, Noise(args.loss, False))
    print(
        f"{args.long_hours:g} h, {args.loss:.0%} loss on every check: "
        f"{every.false_failovers} false failovers, {every.switches} switches",
        flush=True,
    )
    fast_topology = load_topology(ROOT / "simulations" / "fast.yaml")
    started = time.perf_counter()
    fast = run_steady_split(
        fast_topology,
        args.fast_hours,
        args.seed,
        Noise(args.loss, False),
        args.fast_pieces,
        args.jobs,
    )
    fast_wall_s = time.perf_counter() - started
    fast_false = sum(r.false_failovers for r in fast)
    print(
        f"fast profile, {args.fast_hours:g} h in {args.fast_pieces} pieces, {args.loss:.0%} "
        f"loss on every check: {fast_false} false failovers, "
        f"{sum(r.switches for r in fast)} switches, {fast_wall_s:.1f} s on {args.jobs} processes",
        flush=True,
    )
    violations += sum(
        len(v.violations) - v.false_failovers for v in [long, every, *fast]
    )  # false failovers are reported by their own figures
    print(
        json.dumps(
            {
                "speedup": round(result.simulated_s / wall_s),
                "events_per_s": round(result.events / wall_s),
                "simulated_s": result.simulated_s,
                "wall_s": round(wall_s, 3),
                "campaign_runs": args.runs,
                "campaign_jobs": args.jobs,
                "campaign_wall_s": round(campaign_wall_s, 2),
                "violations": violations,
                "long_run_hours": args.long_hours,
                "long_run_wall_s": round(long_wall_s, 2),
                "long_run_hours_per_s": round(args.long_hours / long_wall_s, 2),
                "probe_loss": args.loss,
                "false_failovers_per_1000h": round(
                    every.false_failovers * 1000.0 / args.long_hours, 3
                ),
                "down_verdicts_per_1000h": round(every.down_verdicts * 1000.0 / args.long_hours),
                "fast_hours": args.fast_hours,
                "fast_wall_s": round(fast_wall_s, 2),
                "fast_false_failovers_per_1000h": round(fast_false * 1000.0 / args.fast_hours, 3),
                "fast_down_verdicts_per_1000h": round(
                    sum(r.down_verdicts for r in fast) * 1000.0 / args.fast_hours
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
