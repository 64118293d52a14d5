"""What an operator asks for, as a core `Command`: times, durations and write-request bodies.

Shared by the CLI (`--at`, `--expires`) and the HTTP API (JSON bodies), so that both accept
the same spellings: a time is ISO 8601 (`2026-11-24T05:00:00Z`) or relative (`+30s`, `+5m`);
a duration is seconds or a number with a unit (`90`, `30s`, `30m`, `2h`, `1d`).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any

from failover.config import Config
from failover.core.model import Command

UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION = re.compile(r"\s{0,8}([0-9]{1,12}(?:\.[0-9]{1,9})?)\s{0,8}([smhd]?)\s{0,8}")
MAX_TEXT = 500  # longest reason kept from a request
MAX_DURATION_S = 366 * 86400.0  # an override or a schedule more than a year ahead is a mistake
MAX_TIME_TEXT = 64


class BadRequest(ValueError):
    """The request is malformed; the message says which field and why."""


def parse_duration(text: str) -> float:
    """`90`, `30s`, `30m`, `2h`, `1d` -> seconds (> 0)."""
    match = DURATION.fullmatch(text[: MAX_TIME_TEXT + 1])
    if not match or len(text) > MAX_TIME_TEXT:
        raise BadRequest(f"{text[:MAX_TIME_TEXT]!r} is not a duration (like 30s, 30m, 2h)")
    seconds = float(match.group(1)) * UNITS_S[match.group(2) or "s"]
    if seconds <= 0:
        raise BadRequest(f"{text!r}: a duration must be more than 0")
    if seconds > MAX_DURATION_S:
        raise BadRequest(f"{text!r}: a duration must be at most {MAX_DURATION_S / 86400:g} days")
    return seconds


def parse_at(text: str, now: float) -> float:
    """`+30s`, `+5m` or an ISO 8601 time (UTC unless it names a zone) -> epoch seconds."""
    text = text.strip()
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    try:
        if len(text) > MAX_TIME_TEXT:
            raise ValueError
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{text!r} is not a time (ISO 8601 like 2026-11-24T05:00:00Z, or +30s / +5m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return _near(moment.timestamp(), now, text)


def _near(at: float, now: float, text: str) -> float:
    if not math.isfinite(at) or abs(at - now) > MAX_DURATION_S:
        raise BadRequest(f"{text!r}: a time must be within a year of now")
    return at


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name}: must be a string")
    return value[:MAX_TEXT]


def _group(body: dict[str, Any], config: Config) -> str | None:
    group = body.get("group")
    if group is None:
        return None
    if not isinstance(group, str) or group not in config.groups:
        raise BadRequest(f"group: unknown group {group!r} (known: {', '.join(config.groups)})")
    return group


def command_from_body(kind: str, raw: str, by: str, config: Config, now: float) -> Command:
    """A write request's JSON body -> the Command to queue (BadRequest when malformed).

    switchover: {"site": "dc2", "group": "web", "reason": "...", "force": false,
    "at": "+5m" | ISO | epoch seconds, "expires": "30m" | seconds, "graceful": true | false
    (absent: policy.graceful_switchover)}; freeze and unfreeze:
    {"group": "web", "reason": "..."}. `group` absent: every group.
    """
    try:
        body = (
            json.loads(raw, parse_constant=_no_constant, parse_float=_finite) if raw.strip() else {}
        )
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    allowed = {
        "switchover": {"site", "to", "group", "reason", "force", "at", "expires", "graceful"},
        "freeze": {"group", "reason"},
        "unfreeze": {"group", "reason"},
    }[kind]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    group, reason = _group(body, config), _text(body, "reason")
    if kind != "switchover":
        return Command("", kind, by, reason, group, requested_at=now)  # type: ignore[arg-type]
    site = body.get("site", body.get("to"))
    if not isinstance(site, str) or site not in config.serving_sites:
        raise BadRequest(
            f"site: {site!r} is not a serving site ({', '.join(config.serving_sites)})"
        )
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force: must be true or false")
    graceful = body.get("graceful")
    if graceful is not None and not isinstance(graceful, bool):
        raise BadRequest("graceful: must be true or false")
    return Command(
        "",
        "switchover",
        by,
        reason,
        group,
        site,
        force,
        _at(body.get("at"), now),
        _expires(body.get("expires")),
        now,
        graceful=graceful,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _at(value: Any, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest("at: must be a time (ISO 8601, +30s) or epoch seconds")
    if isinstance(value, str):
        return parse_at(value, now)
    try:
        return _near(float(value), now, str(value)[:40])
    except OverflowError:
        raise BadRequest("at: out of range") from None


def _expires(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest("expires: must be a duration (30m, 2h) or seconds")
    if isinstance(value, str):
        return parse_duration(value)
    if value <= 0:
        raise BadRequest("expires: must be more than 0 seconds")
    if value > MAX_DURATION_S:
        raise BadRequest(f"expires: at most {MAX_DURATION_S:g} seconds")
    return float(value)
