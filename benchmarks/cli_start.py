"""CLI start-up: wall time of `failover --version`, `failover --help` and
`failover validate examples/two-dc.yaml`, each the best of several runs in a fresh process.

Runs this checkout's code (`python -m failover` from the repository root, which `-m` puts
first on the path).
Prints one JSON object as its last line: {"version_s": .., "help_s": .., "validate_s": ..}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "version_s": ["--version"],
    "help_s": ["--help"],
    "validate_s": ["validate", str(ROOT / "examples" / "two-dc.yaml")],
}


def best_of(args: list[str], runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "failover", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"failover {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace')}"
            )
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="runs per command; the best counts")
    args = parser.parse_args()
    figures = {}
    for name, command in COMMANDS.items():
        figures[name] = round(best_of(command, args.runs), 3)
        print(
            f"failover {' '.join(command)}: best {figures[name]:.3f} s of {args.runs}", flush=True
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
