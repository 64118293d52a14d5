"""`failover chaos` shows progress on a terminal only: never with --json, never into a pipe."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from failover.cli.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
CHAOS = ROOT / "simulations" / "chaos.yaml"
CHAOS_ARGS = ["chaos", str(CHAOS), "--runs", "3", "--jobs", "1"]


def on_terminal(*args: str) -> tuple[int, str]:
    """Run `failover ARGS` with stdout and stderr on a pseudo-terminal; (exit code, output)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "failover", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_chaos_shows_progress_on_a_terminal() -> None:
    code, output = on_terminal(*CHAOS_ARGS)
    assert code in (0, 1), output
    assert "3/3 runs, " in output and "violation(s) so far, ETA" in output
    assert "\r\033[K" in output  # the line is rewritten in place, then cleared
    assert "campaign: " in output


def test_chaos_is_quiet_with_json_even_on_a_terminal() -> None:
    code, output = on_terminal(*CHAOS_ARGS, "--json")
    assert code in (0, 1), output
    assert "runs, " not in output and "ETA" not in output
    assert output.lstrip().startswith("{")


def test_chaos_is_quiet_into_a_pipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "failover", *CHAOS_ARGS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr == "" and "ETA" not in done.stdout
    assert "campaign: " in done.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_runs_and_violations() -> None:
    stream = Terminal()
    progress = Progress.start(4, enabled=True, stream=stream)
    progress.advance()
    progress.advance(violations=2)
    assert progress.line().startswith("2/4 runs, 2 violation(s) so far, ETA ")
    progress.advance()
    progress.advance()
    progress.finish()
    assert "4/4 runs, 2 violation(s) so far, ETA 0 s" in stream.getvalue()
    assert stream.getvalue().endswith("\r\033[K")
    silent = io.StringIO()  # not a terminal
    quiet = Progress.start(2, enabled=True, stream=silent)
    quiet.advance()
    quiet.finish()
    assert silent.getvalue() == ""
