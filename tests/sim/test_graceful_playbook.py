"""The planned-switchover playbook: its expectations hold only for a graceful switchover."""

from __future__ import annotations

from pathlib import Path

from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook
from tests.sim.conftest import ROOT

PLAYBOOK = ROOT / "playbooks" / "planned-switchover.yaml"


def test_an_abrupt_switchover_fails_the_graceful_expectations(tmp_path: Path) -> None:
    text = PLAYBOOK.read_text().replace("graceful: true", "graceful: false")
    text = text.replace("../simulations/", f"{ROOT}/simulations/")
    assert "graceful: false" in text
    path = tmp_path / "abrupt-switchover.yaml"
    path.write_text(text)
    outcome = run_playbook(load_playbook(path), seed=1)
    failed = {v.name for v in outcome.expectations if not v.passed}
    assert not outcome.passed
    assert "announced(web, dc1) == held within 51 s" in failed
    assert "graceful(mail) == preparing within 21 s" in failed
    assert outcome.violations == []  # abrupt is safe too, just not lossless by design
