"""JSON codecs for the core's snapshots (what the coordinator stores and the audit keeps)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from failover.core.model import (
    Applied,
    Command,
    Decision,
    GroupState,
    Observation,
    Override,
    PreCheck,
)

T = TypeVar("T")


def to_dict(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)


def encode(value: Any) -> bytes:
    """A dataclass snapshot -> compact, key-sorted JSON bytes (stable for hashing)."""
    return json.dumps(to_dict(value), sort_keys=True, separators=(",", ":")).encode()


def decode(kind: type[T], data: bytes | str | dict[str, Any]) -> T:
    raw = data if isinstance(data, dict) else json.loads(data)
    return from_dict(kind, raw)


def from_dict(kind: type[T], raw: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    values = {key: value for key, value in raw.items() if key in names}
    if kind is GroupState:
        values["switch_times"] = tuple(values.get("switch_times", ()))
        if values.get("override"):
            values["override"] = from_dict(Override, values["override"])
        if values.get("scheduled"):
            values["scheduled"] = from_dict(Command, values["scheduled"])
    if kind is Decision:
        values["checks"] = tuple(from_dict(PreCheck, c) for c in values.get("checks", ()))
    return kind(**values)


__all__ = ["Applied", "Command", "Decision", "GroupState", "Observation", "decode", "encode"]
