from __future__ import annotations

from failover.core.codec import decode, encode
from failover.core.model import (
    Applied,
    Command,
    Decision,
    GroupState,
    Observation,
    Override,
    PreCheck,
)


def test_group_state_round_trips_with_nested_values() -> None:
    state = GroupState(
        "web",
        "dc2",
        epoch=7,
        phase="switching",
        switch_from="dc1",
        switch_times=(1.0, 2.0),
        override=Override("dc2", None, "bob", "x"),
        scheduled=Command("c1", "switchover", "bob", site="dc1", at=5.0),
    )
    assert decode(GroupState, encode(state)) == state


def test_other_snapshots_round_trip() -> None:
    for value in (
        Observation("i", "dc1", "dc1/app/a:1", "up", 1.0, 2.0, "ok"),
        Applied("web", "dc1", 3, "backup", 4.0, True, "isp via dc2"),
        Command("c", "freeze", "alice", "why"),
        Decision(
            "web", "command", "accepted", "s", 3, {"a": 1}, (PreCheck("target", True, "ok"),), "c"
        ),
    ):
        assert decode(type(value), encode(value)) == value


def test_encoding_is_stable_and_ignores_unknown_fields() -> None:
    state = GroupState("web", "dc1")
    assert encode(state) == encode(GroupState("web", "dc1"))
    assert decode(GroupState, b'{"group":"web","active":"dc1","future":1}') == state
