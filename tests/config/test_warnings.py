"""`failover validate` accepts a valid config whose timers are risky, and says which (exit 0)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.config import load_config
from failover.config.rules import timer_warnings

ROOT = Path(__file__).resolve().parents[2]
FAST = ROOT / "examples" / "fast.yaml"
EXAMPLE = ROOT / "examples" / "two-dc.yaml"


def variant(tmp_path: Path, change: dict[str, object]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    (tmp_path / "secrets").symlink_to(EXAMPLE.parent / "secrets")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_fast_profile_validates_with_warnings() -> None:
    result = CliRunner().invoke(cli, ["validate", str(FAST)])
    assert result.exit_code == 0
    # (a checkout's example secret files may be group/world-readable: those warnings aside)
    lines = [line for line in result.output.splitlines() if "readable by others" not in line]
    assert lines[0] == "ok"
    warnings = [line for line in lines[1:] if ": warning: " in line]
    assert len(warnings) == len(lines) - 1 == 4, lines
    text = "\n".join(warnings)
    assert "cluster.zookeeper.session_timeout_s: 2 s is below" in text
    assert "tickTime <= 1000 ms" in text
    assert "sites.dc1.services.db.check" in text and "exceeds fast_interval_s 0.1 s" in text
    assert "an outage of the target of 0.2 s (fall 3, re-check every 0.1 s)" in text


def test_the_example_has_no_warning() -> None:
    assert timer_warnings(load_config(EXAMPLE)) == []


def test_a_timeout_close_to_the_interval_is_named(tmp_path: Path) -> None:
    path = variant(tmp_path, {"sites.dc2.services.firewall.check.timeout_s": 0.9})
    warnings = timer_warnings(load_config(path))
    assert warnings == [
        "sites.dc2.services.firewall.check: timeout_s 0.9 s is close to "
        "interval_s 1 s: a slow target makes the next check start late, and "
        "detection slower than interval x fall"
    ]


def test_a_short_stall_that_moves_traffic_is_named(tmp_path: Path) -> None:
    path = variant(tmp_path, {"policy.hold_down_s": 0})
    warnings = timer_warnings(load_config(path))
    # the database (fall 2, a 0.8 s re-check) goes down after 0.8 s; the others need 1 s
    assert warnings == [
        "sites.dc1.services.db.check, sites.dc2.services.db.check: an outage of the target "
        "of 0.8 s (fall 2, re-check every 0.8 s) is a down verdict, and with "
        "policy.hold_down_s (0 s) traffic moves: under 1 s in all, so a GC pause or a route "
        "flap that every observer sees is a failover (cooldown and the switch budget bound "
        "flapping)"
    ]


def test_a_graceful_ttl_that_lowers_nothing_is_named(tmp_path: Path) -> None:
    path = variant(tmp_path, {"policy.graceful_ttl_s": 30})
    assert timer_warnings(load_config(path)) == [
        "policy.graceful_ttl_s: 30 s is not shorter than groups.mail.steering.ttl (30 s): a "
        "graceful switchover of mail lowers nothing, and caches may hold the old answer that "
        "long after the switch"
    ]
