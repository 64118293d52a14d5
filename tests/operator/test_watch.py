"""`failover status --watch` against a real cluster: it refreshes, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from failover.cli import cli
from tests.operator.cluster import Cluster

pytestmark = pytest.mark.zookeeper
ROOT = Path(__file__).resolve().parents[2]


def test_watch_json_prints_one_document_per_refresh(steady: Cluster) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        [
            "status",
            "--watch",
            "--json",
            "--interval",
            "0.3",
            "--count",
            "3",
            "--config",
            str(steady.config_path),
        ],
    )
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.output.splitlines()]
    assert len(docs) == 3
    assert all(doc["groups"]["web"]["active"] == "dc1" for doc in docs)
    assert docs[0]["at"] < docs[1]["at"] < docs[2]["at"]
    assert time.monotonic() - started >= 0.6  # two waits of the interval


def test_watch_table_repeats_and_ends_on_ctrl_c(steady: Cluster) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "failover",
            "status",
            "--watch",
            "--interval",
            "0.2",
            "--config",
            str(steady.config_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    time.sleep(3.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert out.count("every 0.2 s (Ctrl-C ends)") >= 2
    assert out.count("cluster ") >= 2 and "\x1b[" not in out  # not a terminal: no redraw


def test_count_without_watch_is_a_usage_error(steady: Cluster) -> None:
    result = CliRunner().invoke(
        cli, ["status", "--count", "2", "--config", str(steady.config_path)]
    )
    assert result.exit_code == 2 and "--count N goes with --watch" in result.output
    result = CliRunner().invoke(
        cli, ["status", "--watch", "--interval", "0", "--config", str(steady.config_path)]
    )
    assert result.exit_code == 2 and "--interval" in result.output


def test_watch_redraws_a_terminal(steady: Cluster) -> None:
    from tests.cli.test_progress import on_terminal

    code, output = on_terminal(
        "status",
        "--watch",
        "--interval",
        "0.2",
        "--count",
        "2",
        "--config",
        str(steady.config_path),
    )
    assert code == 0, output
    assert output.count("\x1b[2J") == 2  # cleared before each refresh
    assert output.count("every 0.2 s (Ctrl-C ends)") == 2
