"""A graceful switchover of a DNS group against the real cluster: the name server's TTL goes
down one old TTL before the switch and back one old TTL after it; status shows the stages."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import dns.exception
import pytest

from tests.operator.cluster import ADDRESSES, Cluster
from tests.operator.test_cli import run

pytestmark = pytest.mark.zookeeper


def _compact(items: list[Any]) -> list[Any]:
    return [item for i, item in enumerate(items) if i == 0 or item != items[i - 1]]


def test_graceful_dns_switchover_lowers_then_restores_the_ttl(steady: Cluster) -> None:
    answers: list[tuple[list[str], int | None]] = []
    stages: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(dns.exception.DNSException):
                answers.append(steady.bind.answer_ttl("www"))
            try:
                plan = steady.status()["groups"]["web"]["graceful"]
                stages.append(plan["stage"] if plan else "none")
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        moved = run(
            steady, "switchover", "--to", "dc2", "--graceful", "--reason", "planned", "--wait"
        )
    finally:
        stop.set()
        watcher.join(5)
    took = time.monotonic() - started
    assert moved.exit_code == 0, moved.output
    assert "graceful switchover to dc2 started: preparing" in moved.output
    dc1, dc2 = [ADDRESSES["dc1"]], [ADDRESSES["dc2"]]
    # what the name server answered, in order: configured TTL, short, switched, configured
    assert _compact(answers) == [(dc1, 5), (dc1, 1), (dc2, 1), (dc2, 5)], answers
    assert took >= 10.0  # one old TTL before the switch, one after it
    order = ["preparing", "switching", "draining", "restoring"]
    shown = [s for s in _compact(stages) if s != "none"]  # status, sampled: short ones slip by
    assert shown == sorted(shown, key=order.index), stages
    assert "preparing" in shown and "draining" in shown

    command_id = next(word.rstrip(":") for word in moved.output.split() if "cmd-" in word)
    entries = json.loads(run(steady, "history", "--json", "--limit", "30").output)["entries"]
    codes = [e["code"] for e in entries if e.get("group") == "web"]
    for code in ("graceful_preparing", "switchover", "graceful_draining", "graceful_done"):
        assert code in codes, codes
    explained = run(steady, "explain", command_id).output
    assert "graceful" in explained and "rule        graceful_preparing" in explained

    back = run(steady, "switchover", "--to", "dc1", "--abrupt", "--wait")
    assert back.exit_code == 0, back.output
    assert steady.bind.answer_ttl("www") == (dc1, 5)
    steady.wait_steady("dc1")
