"""Refused API requests, counted rather than recorded one by one.

Each refusal adds one to a count per (source, key id claimed, endpoint, reason); once per
interval the counts go to the coordinator as one summary (`Coordinator.record_refusals`),
which keeps them apart from the audit trail with their own retention. Memory is bounded: at
most `MAX_ROWS` distinct rows per interval, the rest counted under one `other` row.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_ROWS = 200
OTHER = ("other", "", "", "more distinct sources or reasons than one summary keeps")


def reason_code(reason: str) -> str:
    """The stable part of a refusal's reason (before the first ':' or ';'), bounded."""
    return reason.split(";", 1)[0].split(":", 1)[0].strip()[:80]


class RefusalCounter:
    """Counts refusals for the current interval; `take()` returns a summary and starts again."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.since = 0.0
        self.total = 0

    def add(self, source: str, key_id: str | None, endpoint: str, reason: str, now: float) -> None:
        if not self.counts:
            self.since = now
        row = (source, key_id or "", endpoint, reason_code(reason))
        if row not in self.counts and len(self.counts) >= MAX_ROWS:
            row = OTHER
        self.counts[row] += 1
        self.total += 1

    def take(self, instance: str, now: float) -> dict[str, Any] | None:
        if not self.counts:
            return None
        rows = [
            {"source": s, "key_id": k, "endpoint": e, "reason": r, "count": n}
            for (s, k, e, r), n in self.counts.most_common()
        ]
        summary = {
            "instance": instance,
            "from": self.since,
            "to": now,
            "refused": sum(self.counts.values()),
            "rows": rows,
        }
        self.counts.clear()
        return summary
