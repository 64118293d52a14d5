"""JSON codecs for the core's snapshots (what the coordinator stores and the audit keeps)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

from failover.core.model import (
    Applied,
    Command,
    Decision,
    GroupState,
    Observation,
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
    """A snapshot dataclass from its JSON form, decoded by the fields' type hints (nested
    snapshots, optional ones, tuples); unknown keys are ignored (a newer writer's fields)."""
    hints = _hints(kind)
    values = {
        f.name: _value(hints[f.name], raw[f.name])
        for f in dataclasses.fields(kind)  # type: ignore[arg-type]
        if f.name in raw
    }
    return kind(**values)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(kind: type) -> dict[str, Any]:
    """A snapshot type's field hints, read once."""
    hints = _HINTS.get(kind)
    if hints is None:
        hints = _HINTS[kind] = typing.get_type_hints(kind)
    return hints


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v) for v in value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)  # type: ignore[arg-type]
    return value


__all__ = ["Applied", "Command", "Decision", "GroupState", "Observation", "decode", "encode"]
