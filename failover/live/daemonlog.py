"""The daemons' own log lines in the live timeline, in the simulator's line format.

What a daemon writes to its log during a run (from the size the file had when the recorder
started): its WARNING and ERROR lines, its role changes (`started`, `stopped`, `leading with
term N`) and its supervisor's records (started, exited, watchdog, stop hook, restart). Each
becomes a `daemon` line at the time the daemon gave it, e.g.

        14.286 daemon    dc1-a: warning: session not connected: acting as leader no more
        17.002 daemon    dc1-a: supervisor: exited (code -9)

The same text from the same daemon within `REPEAT_S` is shown once (kazoo repeats its
reconnect warnings several times a second while a server is down).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

LEVELS = ("warning", "error", "critical")
ROLE_CHANGES = ("started", "stopped", "leading with term")
SUPERVISOR_EVENTS = ("started", "exited", "watchdog", "stop_hook", "restart")
REPEAT_S = 5.0
MAX_BYTES = 4_000_000  # per daemon and run: a log that grows faster than this is cut short


def offsets(paths: dict[str, Path]) -> dict[str, int]:
    """Each log's current size (where this run's lines begin)."""
    found = {}
    for instance, path in paths.items():
        try:
            found[instance] = path.stat().st_size
        except OSError:
            found[instance] = 0
    return found


def _when(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).timestamp()
    return None


def _text(instance: str, record: dict[str, Any]) -> str | None:
    """The timeline text of one log record, None if the timeline does not show it."""
    if record.get("component") == "supervisor":
        event = str(record.get("event", ""))
        if event not in SUPERVISOR_EVENTS:
            return None
        details = []
        if "code" in record:
            details.append(f"code {record['code']}")
        if "took_s" in record:
            details.append(f"{record['took_s']} s")
        extra = f" ({', '.join(details)})" if details else ""
        return f"{instance}: supervisor: {event.replace('_', ' ')}{extra}"
    level = str(record.get("level", "")).lower()
    message = str(record.get("msg", ""))
    if level in LEVELS:
        return f"{instance}: {level}: {message}"
    if record.get("logger") == "failover.daemon" and message.startswith(ROLE_CHANGES):
        return f"{instance}: {message}"
    return None


def daemon_lines(
    paths: dict[str, Path], since: dict[str, int], wall_start: float
) -> list[tuple[float, str]]:
    """(seconds since `wall_start`, text) of every shown line written since `since`."""
    lines: list[tuple[float, str]] = []
    for instance, path in paths.items():
        try:
            with path.open("rb") as log:
                log.seek(since.get(instance, 0))
                data = log.read(MAX_BYTES)
        except OSError:
            continue
        last: dict[str, float] = {}
        for raw in data.decode(errors="replace").splitlines():
            if not raw.startswith("{"):
                continue  # the stop hook's own output, with no time
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            when = _when(record.get("at"))
            text = _text(instance, record)
            if when is None or text is None:
                continue
            if text in last and when - last[text] < REPEAT_S:
                continue
            last[text] = when
            lines.append((when - wall_start, text))
    return sorted(lines)
