"""The closed vocabulary: every code documented, none made up at a call site."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failover.core.codes import CODES
from failover.core.model import Decision, GroupState

ROOT = Path(__file__).resolve().parents[2]


def test_every_code_is_in_the_operations_table() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    table = dict(re.findall(r"^\| `([a-z_]+)` \| ([a-z]+) \|", text, re.MULTILINE))
    assert table == {code: kind for code, (kind, _) in CODES.items()}


def test_an_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reason code"):
        Decision("web", "info", "made_up", "", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown reason code"):
        GroupState("web", "dc1", code="made_up")  # type: ignore[arg-type]


def test_no_code_is_built_by_formatting() -> None:
    for path in (ROOT / "failover" / "core").glob("*.py"):
        text = path.read_text()
        assert not re.search(r'say\(\s*"[a-z]+",\s*f"', text), path


@pytest.mark.parametrize(
    "fields",
    [
        {"phase": "switching"},  # no switch_from
        {"switch_from": "dc2"},  # steady with a switch in flight
        {"phase": "switching", "switch_from": "dc1"},  # from itself
        {"phase": "suspect"},  # no suspect_since
        {"suspect_since": 5.0},  # steady yet suspect
        {"hold_down_from": 5.0},  # a hold-down outside suspect
        {"demote_by": 5.0},
    ],
)
def test_group_state_fields_must_match_its_phase(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GroupState("web", "dc1", **fields)  # type: ignore[arg-type]
