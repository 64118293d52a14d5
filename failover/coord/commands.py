"""Command nodes read strictly, and what the API keeps beside the command queue.

A command node is written by an operator identity (or a daemon's API), so its bytes are
untrusted: `parse_command` never raises. A node that is not a valid command becomes a `note`
from `MALFORMED_BY` naming the problem; the leader consumes it as refused (audited, result
written), so one bad node can never stop the queue.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, get_args

from failover.core.model import Command, CommandKind

MALFORMED_BY = "coordinator:malformed"
MAX_COMMAND_BYTES = 64 * 1024
MAX_TEXT = 1000
KINDS = frozenset(get_args(CommandKind))
ONCE_ID_CHARS = frozenset("0123456789abcdef")


def malformed(command: Command) -> str | None:
    """The problem of a command node that could not be read (None for a real command)."""
    return command.reason if command.by == MALFORMED_BY and command.kind == "note" else None


def parse_command(command_id: str, data: bytes) -> Command:
    """A command node's bytes -> its Command (a `malformed` note when they are not one)."""
    try:
        return _parse(command_id, data)
    except ValueError as exc:
        return Command(
            command_id,
            "note",
            MALFORMED_BY,
            f"command node {command_id} is malformed: {exc}"[:MAX_TEXT],
        )


def _parse(command_id: str, data: bytes) -> Command:
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"{len(data)} bytes (at most {MAX_COMMAND_BYTES})")
    try:
        raw = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    kind: CommandKind = raw.get("kind")  # type: ignore[assignment]  # checked just below
    if kind not in KINDS:
        raise ValueError(f"kind {str(kind)[:40]!r} is not one of {', '.join(sorted(KINDS))}")
    by = _text(raw, "by", required=True)
    return Command(
        command_id,
        kind,
        by or "unknown",
        _text(raw, "reason") or "",
        _text(raw, "group"),
        _text(raw, "site"),
        _flag(raw, "force"),
        _number(raw, "at"),
        _number(raw, "expires_s", positive=True),
        _number(raw, "requested_at") or 0.0,
        _text(raw, "totp"),
        None if raw.get("graceful") is None else _flag(raw, "graceful"),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _text(raw: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value[:MAX_TEXT]


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _number(raw: dict[str, Any], name: str, positive: bool = False) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or abs(number) > 1e11 or (positive and number <= 0):
        raise ValueError(f"{name} {value!r} is out of range")
    return number


def check_once(once: str) -> str:
    """A once-only id (a signature, in hex) as a node name; ValueError if it is not one."""
    if not 16 <= len(once) <= 128 or not set(once) <= ONCE_ID_CHARS:
        raise ValueError("a once-only id is 16 to 128 lowercase hex digits")
    return once


def stamped(command_id: str, command: Command) -> Command:
    """`by` from the folder a command was created in (see `pending_commands`)."""
    operator, dot, _ = command_id.rpartition(".")
    if not dot or malformed(command) is not None:
        return command
    claim = command.by[:64]
    return replace(command, by=operator if claim == operator else f"{operator} (says {claim})")
