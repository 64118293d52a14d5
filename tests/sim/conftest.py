from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))
REFERENCE = ROOT / "simulations" / "reference.yaml"
CHAOS = ROOT / "simulations" / "chaos.yaml"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
