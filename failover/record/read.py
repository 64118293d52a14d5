"""Reading recordings back: every file checked, every problem named by path and line.

A file whose gzip stream was never finished (the daemon still writes it, or was killed) reads
up to its last complete line; a line cut in half, corrupt compressed data, a line that is not
JSON or not a record, and a file of another cluster are errors (`LogError`).
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from failover.record.format import FORMAT, Cycle, Decoder, Header

CHUNK = 1 << 16
MAX_LINE = 64 << 20  # a config plus a cycle of a large cluster stays far below this


class LogError(Exception):
    """A recording that cannot be replayed, with where and why."""


def lines(path: Path, notes: list[str] | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a gzip file. A last member that was never finished reads up
    to its last complete line, with a note (the writer still writes it, or was stopped)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        inflate = zlib.decompressobj(31)
        pending = b""
        number = 0
        started = False
        while True:
            try:
                chunk = handle.read(CHUNK)
            except OSError as exc:
                raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
            if not chunk:
                break
            while chunk:
                started = True
                try:
                    data = inflate.decompress(chunk)
                except zlib.error as exc:
                    raise LogError(
                        f"{path}: corrupt gzip data after line {number}: {exc}"
                    ) from None
                chunk = b""
                if inflate.eof:  # a member ended; another may follow
                    chunk = inflate.unused_data
                    inflate = zlib.decompressobj(31)
                    started = False
                pending += data
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    number += 1
                    yield number, line
                if len(pending) > MAX_LINE:
                    raise LogError(f"{path}: line {number + 1} is longer than {MAX_LINE} bytes")
        if number == 0 and not pending and not started:
            raise LogError(f"{path}: empty file, not a recording")
        if pending:
            raise LogError(
                f"{path}: truncated: line {number + 1} is cut off "
                f"({len(pending)} bytes without an end)"
            )
        if started and notes is not None:
            notes.append(
                f"{path}: unfinished (still being written, or its writer was "
                f"stopped): read up to line {number}"
            )


def read_header(path: Path, raw: bytes) -> Header:
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or "format" not in doc:
            raise ValueError("no header")
        if doc["format"] != FORMAT:
            raise LogError(
                f"{path}: line 1: format {doc['format']!r}; this version reads format {FORMAT}"
            )
        return Header(
            str(doc["k"]),
            str(doc["f"]),
            str(doc["instance"]),
            float(doc["opened"]),
            dict(doc["config"]),
            str(path),
        )
    except LogError:
        raise
    except (ValueError, KeyError, TypeError):
        raise LogError(
            f"{path}: line 1 is not a recording's header (is this a `failover` recording?)"
        ) from None


def cycles(path: Path, notes: list[str] | None = None) -> Iterator[Cycle]:
    """The cycles of one file, in order."""
    decoder: Decoder | None = None
    for number, raw in lines(path, notes):
        if decoder is None:
            decoder = Decoder(read_header(path, raw))
            continue
        try:
            doc: Any = json.loads(raw)
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            yield decoder.cycle(doc, number)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            what = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not a cycle record"
            raise LogError(f"{path}: line {number}: {what} ({type(exc).__name__}: {exc})") from None


def headers(paths: Sequence[Path]) -> list[Header]:
    """Every file's header (checked: one cluster); files whose header cannot be read fail."""
    found = []
    for path in paths:
        if path.is_dir():
            raise LogError(f"{path}: a directory; give the files (e.g. {path}/*.jsonl.gz)")
        for _, raw in lines(path):
            found.append(read_header(path, raw))
            break
        else:
            raise LogError(f"{path}: no header line")
    clusters = sorted({h.cluster for h in found})
    if len(clusters) > 1:
        names = ", ".join(f"{h.path} ({h.cluster})" for h in found)
        raise LogError(f"the recordings are of different clusters: {names}")
    return found


def merged(paths: Sequence[Path], notes: list[str] | None = None) -> Iterator[Cycle]:
    """The cycles of every file, by time (files of several leaders interleave)."""
    ordered = sorted(paths, key=lambda p: next(h.opened for h in headers([p])))
    streams = [cycles(p, notes) for p in ordered]
    return heapq.merge(*streams, key=lambda c: c.now)
