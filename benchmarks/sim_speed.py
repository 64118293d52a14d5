"""Simulator speed: simulated seconds per wall second, and a campaign's wall time.

1. One core: 24 simulated hours of the reference model under the random faults of
   simulations/chaos.yaml (speedup = simulated seconds / wall seconds; goal >= 10,000x).
2. Both cores: a campaign of N one-hour runs (goal: 10,000 runs within 10 minutes).

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from failover.sim.campaign import Campaign, load_campaign, run_campaign, run_one

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000, help="one-hour runs in the campaign")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

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
            }
        )
    )


if __name__ == "__main__":
    main()
