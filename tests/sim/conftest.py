from __future__ import annotations

from pathlib import Path

import pytest

from failover.config.model import Config
from failover.core.policy import Engine

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))
REFERENCE = ROOT / "simulations" / "reference.yaml"
CHAOS = ROOT / "simulations" / "chaos.yaml"


class IgnoresQuorum(Engine):
    """A deliberately broken policy for tests only: one observer site is enough to act."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.layout.quorum = 1


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
