"""`failover status` shows a running graceful switchover: its stage, deadline and TTL."""

from __future__ import annotations

from pathlib import Path

from failover.cli.render import render_status
from failover.config import load_config
from failover.coord import NO_NODE, MemoryCoordinator, MemoryStore
from failover.core import Engine, View
from failover.core.model import Command
from failover.status import build_status

ROOT = Path(__file__).resolve().parents[2]


def test_status_shows_the_stage_of_a_graceful_switchover() -> None:
    config = load_config(ROOT / "examples" / "two-dc.yaml")
    now = 1000.0
    store = MemoryStore(lambda: now)
    coordinator = MemoryCoordinator(store, "dc1-a")
    leadership = coordinator.campaign()
    assert leadership is not None
    engine = Engine(config)
    command = Command("c1", "switchover", "alice", "", "mail", "dc2", True, graceful=True)
    step = engine.command({}, command, View(now))
    plan = step.states["mail"].graceful
    assert plan is not None and plan.stage == "preparing"
    coordinator.commit(leadership, desired=[(step.states["mail"], NO_NODE)])

    doc = build_status(coordinator, config, now)
    assert doc["groups"]["mail"]["graceful"]["stage"] == "preparing"
    assert doc["groups"]["mail"]["graceful"]["ttl_s"] == config.policy.graceful_ttl_s
    assert doc["groups"]["web"]["graceful"] is None
    text = render_status(doc, config)
    assert "mail: graceful switchover dc1 -> dc2: preparing until " in text
    assert f"records' TTL {config.policy.graceful_ttl_s} s" in text
