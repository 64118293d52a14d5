"""How observations are stored: a list of whole observations (what every daemon reads), or one
heartbeat in a compact form (what the verdicts share once) that daemons read from now on;
malformed contents are refused."""

from __future__ import annotations

import json

import pytest

from failover.coord.zklayout import decode_observations, dumps, encode_observations
from failover.core.codec import to_dict
from failover.core.model import Observation


def heartbeat(count: int) -> list[Observation]:
    return [
        Observation(
            "dc1-a",
            "dc1",
            f"dc{1 + i % 2}/s{i}/10.0.{i // 250}.{i % 250}:80",
            "down" if i % 7 == 0 else "up",
            1796182000.125 + i,
            1796182500.661234,
            "refused" if i % 7 == 0 else "",
        )
        for i in range(count)
    ]


def test_one_heartbeat_round_trips_in_half_the_size() -> None:
    seen = heartbeat(1000)
    plain = encode_observations(seen)  # the default: what older daemons read
    assert plain == dumps([to_dict(item) for item in seen])
    assert decode_observations(plain) == seen
    data = encode_observations(seen, compact=True)
    assert decode_observations(data) == seen
    assert len(data) < 0.5 * len(plain)
    assert json.loads(data)["items"][0] == [seen[0].target, "down", seen[0].since, "refused"]


def test_mixed_stamps_and_older_daemons_lists_are_read() -> None:
    seen = heartbeat(3)
    mixed = [seen[0], Observation("dc1-a", "dc1", "dc1/x/1.2.3.4:80", "up", 1.0, 2.0)]
    assert decode_observations(encode_observations(mixed, compact=True)) == mixed
    older = dumps([to_dict(item) for item in seen])  # what a daemon before this change wrote
    assert decode_observations(older) == seen
    assert decode_observations(encode_observations([])) == []


@pytest.mark.parametrize(
    "raw",
    [
        {"instance": "a", "site": "dc1", "at": 1.0},
        {"instance": "a", "site": "dc1", "at": 1.0, "items": [["t", "up", 1.0]]},
        {"instance": "a", "site": "dc1", "at": 1.0, "items": [["t", "sideways", 1.0, ""]]},
        {"instance": "a", "site": "dc1", "at": "soon", "items": []},
        "observations",
    ],
)
def test_malformed_contents_are_refused(raw: object) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_observations(json.dumps(raw).encode())
