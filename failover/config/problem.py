"""One problem of a config (or playbook, topology, campaign): where, what, and the value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """`path` is dotted (`groups.web.steering.lease_s`; empty for the whole file); `value` is
    the offending value when there is one (kept for tools; `str()` shows path and message)."""

    path: str
    message: str
    value: Any = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
