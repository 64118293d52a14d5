"""A short live game-day: the database of the active site stops in the lab, the same playbook
runs in the simulator, and the two agree (every verdict, and the key events within their
tolerance). The lab is built for the playbook's topology (2+2+1 ZooKeeper) and removed after."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from failover.live.gameday import gameday
from failover.sim.playbook import load_playbook
from failover.testing.lab import unavailable

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PLAYBOOK = Path(__file__).parent / "db-down-short.yaml"


def test_db_down_live_matches_the_prediction() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    book = load_playbook(PLAYBOOK)
    result = gameday(book, str(PLAYBOOK))
    data = result.as_dict()
    assert result.live is not None
    timeline = "\n".join(result.live.history.lines)
    assert result.passed, f"{data['rows']}\n{timeline}"
    assert result.matched, f"{data['rows']}\n{data['events']}\n{timeline}"
    events = {e.name: e for e in result.events}
    # the fault really moved the web group: a switch and the isp's route, seen live
    assert events["switch written"].live is not None
    assert events["isp route moved"].live is not None
    assert events["isp route moved"].live >= events["switch written"].live - 0.5
    # the preferred site's daemon leads at the start, as in the simulator
    assert result.live.history.leader[0][1] == "dc1-a"
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert not [line for line in left.stdout.splitlines() if line.startswith("fo-")]
