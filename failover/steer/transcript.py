"""What a steerer sent, as plain lines, for comparison with expected transcripts in tests."""

from __future__ import annotations

import threading

import dns.message


class Transcript:
    """An append-only list of lines (thread-safe); `take()` returns and clears them."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def record(self, *lines: str) -> None:
        with self._lock:
            self._lines.extend(lines)

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def take(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
            return lines

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def dns_message_lines(message: dns.message.Message) -> list[str]:
    """A DNS message as text without what changes from run to run (id, TSIG time and MAC)."""
    lines = []
    for line in message.to_text().splitlines():
        if line.startswith("id ") or line == ";ADDITIONAL" or " TSIG " in line:
            continue
        lines.append(line.rstrip())
    if message.keyname is not None:
        lines.append(f";TSIG {message.keyname} {message.keyalgorithm}")
    return lines
