"""A one-line progress display for long commands, on a terminal only.

`Progress.start(total, enabled)` returns a display that rewrites one line of stderr (runs done,
violations so far, ETA) at most `every_s` apart, and clears it at the end. Disabled (with
`--json`, or when stderr is not a terminal) it writes nothing at all.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO | None, every_s: float = 0.2) -> None:
        self.total = total
        self.stream = stream
        self.every_s = every_s
        self.done = 0
        self.violations = 0
        self.started = time.monotonic()
        self._shown_at = 0.0

    @classmethod
    def start(cls, total: int, enabled: bool, stream: TextIO | None = None) -> Progress:
        """A display on `stream` (stderr) when enabled and it is a terminal, else a silent one."""
        stream = stream or sys.stderr
        return cls(total, stream if enabled and stream.isatty() else None)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = "?" if self.done == 0 else _duration(elapsed / self.done * left)
        return f"{self.done}/{self.total} runs, {self.violations} violation(s) so far, ETA {eta}"

    def advance(self, violations: int = 0) -> None:
        self.done += 1
        self.violations += violations
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self._shown_at >= self.every_s or self.done == self.total:
            self._shown_at = now
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
