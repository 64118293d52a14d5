"""Live game-days and a live chaos campaign in the lab, each scored against the simulator.

1. Every playbook in playbooks/ (or those given with `--playbooks`): those that cannot run
   live are counted out (`not supported live`), the others run in the lab, one lab per
   topology, `LiveStack.fresh()` before each, and are scored against the prediction.
2. `--runs N` runs of `--campaign` (default simulations/chaos-live.yaml) one after another
   on one lab: violations of the simulator's invariants over the recorded history, and
   mismatches with the prediction for the same schedule.

Goal: >= 50 live runs with 0 violations and 0 unexplained mismatches in <= 30 min; every
live-capable playbook passes live and matches its prediction. Needs root; run it under
`flock /tmp/failover-lab.lock`; removes the lab afterwards.

One JSON line per playbook and run as it ends; the last line printed is one JSON object:
{"runs", "violations", "mismatches", "wall_s", "playbooks_live", "playbooks_matching", ...}
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from failover.live.batch import row, run_playbooks
from failover.live.chaos import run_live_campaign, summarize
from failover.live.faults import not_live
from failover.sim.campaign import load_campaign
from failover.sim.playbook import load_playbook
from failover.testing.lab import unavailable

ROOT = Path(__file__).resolve().parents[1]


def _stop(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not stop the teardown
    raise KeyboardInterrupt  # the lab is torn down on the way out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playbooks", nargs="*", default=None, help="default: every playbook")
    parser.add_argument("--no-playbooks", action="store_true", help="only the campaign")
    parser.add_argument("--campaign", default=str(ROOT / "simulations" / "chaos-live.yaml"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--budget-s", type=float, default=None, help="start no chaos run after this long"
    )
    parser.add_argument("--logs", default=None, help="keep the logs of failing runs here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    reason = unavailable()
    if reason:
        print(json.dumps({"skipped": reason}))
        return
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"... {time.strftime('%H:%M:%S', time.gmtime())} {text}", file=sys.stderr, flush=True)

    paths = (
        []
        if args.no_playbooks
        else [
            Path(p)
            for p in (args.playbooks or sorted(str(p) for p in (ROOT / "playbooks").glob("*.yaml")))
        ]
    )
    every = sorted((ROOT / "playbooks").glob("*.yaml"))
    capable = [p for p in every if not not_live(load_playbook(p))]  # whether run or not
    rows = []

    def on_playbook(result: object) -> None:
        line = row(result)  # type: ignore[arg-type]
        rows.append(line)
        print(json.dumps(line), flush=True)

    if paths:
        run_playbooks(paths, args.seed, say, on_playbook)
    playbooks_s = time.monotonic() - started
    summary = {}
    if args.runs:
        campaign = load_campaign(args.campaign)
        chaos_started = time.monotonic()
        results = run_live_campaign(
            campaign,
            args.runs,
            args.seed,
            say,
            lambda seed, result: print(
                json.dumps(
                    {
                        "run": seed,
                        "matched": result.matched,
                        "violations": len(result.live.metrics.found) if result.live else None,
                        "mismatched": row(result)["mismatched"],
                        "events": [e.as_dict() for e in result.events],
                        "at": time.strftime("%H:%M:%S", time.gmtime()),
                    }
                ),
                flush=True,
            ),
            args.budget_s,
            Path(args.logs) if args.logs else None,
        )
        summary = summarize(
            campaign,
            results,
            f"failover chaos {args.campaign}",
            time.monotonic() - chaos_started,
        )
    print(
        json.dumps(
            {
                "runs": summary.get("runs", 0),
                "violations": summary.get("violations", 0),
                "mismatches": summary.get("mismatches", 0),
                "mismatches_near_tie": summary.get("mismatches_near_tie", 0),
                "wall_s": summary.get("wall_s", 0.0),
                "playbooks_live": len(capable),
                "playbooks_run": len([r for r in rows if r["live"]]),
                "playbooks_passed": len([r for r in rows if r["passed_live"]]),
                "playbooks_matching": len([r for r in rows if r["matched"]]),
                "playbooks_wall_s": round(playbooks_s, 1),
                "playbooks_total": len(every),
                "failing_runs": summary.get("failing", []),
            }
        )
    )


if __name__ == "__main__":
    main()
