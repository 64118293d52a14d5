"""Secrets this process has read, so that no log line can carry one.

Every reader of a secret file (ZooKeeper digest credentials, API keys, TSIG secrets, probe
passwords) registers what it read; the daemon's log handler runs `RedactingFilter`, which
replaces each registered secret in a formatted message by `***`. ZooKeeper's own debug log
writes its auth packet; `AUTH_PACKET` catches that shape even before a secret is registered.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

MIN_LENGTH = 4  # shorter strings would redact ordinary words; no real secret is this short
AUTH_PACKET = re.compile(r"(Auth\([^)]{0,200}?auth=)'[^']{0,400}'")
_lock = threading.Lock()
_secrets: set[str] = set()


def register(*secrets: str) -> None:
    """Remember secrets (and, for `user:password`, the password alone) for redaction."""
    with _lock:
        for secret in secrets:
            for part in (secret, secret.partition(":")[2]):
                if len(part) >= MIN_LENGTH:
                    _secrets.add(part)


def read_secret_file(
    path: str | Path,
    what: str,
    error: type[Exception],
    parse: Callable[[str, str], dict[str, str]],
) -> dict[str, str]:
    """Read a `key_id:secret` file with `parse(text, path)` and register what it holds; an
    unreadable file raises `error` naming `what` and the path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path}: cannot read: {exc}") from None
    found = parse(text, str(path))
    register(*found.values())
    return found


def id_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, key id, the rest) of each `key_id:rest` line; blank lines and `#`
    comments skipped. A line without `:` gives an empty rest."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            key_id, _, rest = line.partition(":")
            yield number, key_id, rest


def redact(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    text = AUTH_PACKET.sub(r"\1'***'", text)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Formats each record's message once, with every known secret replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = redact(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_info = None
                record.msg = f"{record.msg} ({type(text).__name__}: {text})"
        return True
