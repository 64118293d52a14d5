"""The recording on disk: gzip JSON lines, append-only, rotated, bounded, never in the way.

Files are `<cluster>+<instance>+<UTC time>.jsonl.gz` in `cluster.daemon.record_dir`. A file
is flushed (a zlib sync point) every `flush_s`, so a daemon that is killed loses at most that
much and leaves a file whose complete lines still read back. A file is closed and a new one
begun when it reaches `file_bytes` or `file_s`; then the oldest files of this instance go
while they are older than `keep_s` or all together exceed `max_bytes`.

Recording must never stop the daemon: any error (a full disk, a directory that cannot be
written) stops the recording with one log line and `ok` False (the `failover_recording_ok`
metric); it tries again with a new file after `retry_s`.
"""

from __future__ import annotations

import datetime
import gzip
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from failover import __version__
from failover.config import Config
from failover.coord import Leadership
from failover.core.cycle import View
from failover.core.model import Command, GroupState, Step
from failover.record.format import Encoder, dump, fingerprint, header

log = logging.getLogger("failover.record")
SUFFIX = ".jsonl.gz"


def file_name(cluster: str, instance: str, at: float) -> str:
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{cluster}+{instance}+{stamp}{SUFFIX}"


def recorded_files(directory: Path, cluster: str, instance: str) -> list[Path]:
    """This instance's files, oldest first (their names sort by time)."""
    return sorted(directory.glob(f"{cluster}+{instance}+*{SUFFIX}"))


class Recorder:
    """Called by the leader at the end of each cycle (`record`); `close` when it stops."""

    def __init__(
        self,
        config: Config,
        instance: str,
        directory: str | Path,
        *,
        max_bytes: int | None = None,
        keep_s: float | None = None,
        file_bytes: int | None = None,
        file_s: float = 3600.0,
        flush_s: float = 1.0,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options = config.cluster.daemon
        self.config = config
        self.cluster = config.cluster.name
        self.instance = instance
        self.directory = Path(directory)
        self.max_bytes = max_bytes if max_bytes is not None else options.record_max_bytes
        self.keep_s = keep_s if keep_s is not None else options.record_keep_s
        self.file_bytes = file_bytes or max(4096, min(32 * 2**20, self.max_bytes // 8))
        self.file_s = file_s
        self.flush_s = flush_s
        self.retry_s = retry_s
        self.clock = clock
        self.fingerprint = fingerprint(config)
        self.ok = True
        self.error = ""
        self.path: Path | None = None
        self._raw: IO[bytes] | None = None
        self._gzip: gzip.GzipFile | None = None
        self._encoder = Encoder(self.cluster, self.fingerprint)
        self._opened_at = 0.0
        self._flushed_at = 0.0
        self._retry_at = 0.0
        self.records = 0

    # --- the leader's hook ------------------------------------------------------------------

    def record(
        self,
        start: Mapping[str, GroupState],
        view: View,
        commands: Sequence[Command],
        step: Step,
        leadership: Leadership,
    ) -> None:
        wall = self.clock()
        if self._gzip is None:
            if not self.ok and wall < self._retry_at:
                return
            if not self._open(wall):
                return
        try:
            line = self._encoder.cycle(
                start, view, commands, step, leadership.term, leadership.instance
            )
            self._write(dump(line), wall)
            self.records += 1
        except Exception as exc:  # a recording problem never stops the leader
            self._fail(exc)

    def close(self) -> None:
        gz, raw = self._gzip, self._raw
        self._gzip = self._raw = None
        if gz is None or raw is None:
            return
        try:
            gz.close()
            raw.close()
        except OSError as exc:
            self._fail(exc)

    # --- files ------------------------------------------------------------------------------

    def _open(self, wall: float) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.prune(wall)
            name = self.directory / file_name(self.cluster, self.instance, wall)
            raw = open(name, "xb")  # noqa: SIM115 - closed by close()
            self._raw, self.path = raw, name
            self._gzip = gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
            )
            self._encoder = Encoder(self.cluster, self.fingerprint)
            self._gzip.write(dump(header(self.config, self.instance, __version__, wall)))
            self._gzip.flush()
            self._opened_at = self._flushed_at = wall
        except Exception as exc:
            self._fail(exc)
            return False
        if not self.ok:
            log.warning(f"recording resumed in {self.path}")
        self.ok, self.error = True, ""
        return True

    def _write(self, data: bytes, wall: float) -> None:
        assert self._gzip is not None and self._raw is not None
        self._gzip.write(data)
        if wall - self._flushed_at >= self.flush_s:
            self._gzip.flush()
            self._flushed_at = wall
            if self._raw.tell() >= self.file_bytes or wall - self._opened_at >= self.file_s:
                self.close()
                if self.ok:
                    self._open(wall)

    def prune(self, wall: float) -> list[Path]:
        """Remove this instance's oldest files beyond the age and size limits; the removed."""
        files = [
            p
            for p in recorded_files(self.directory, self.cluster, self.instance)
            if p != self.path or self._gzip is None
        ]
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values())
        removed = []
        for path in files:
            old = wall - path.stat().st_mtime > self.keep_s
            if not old and total <= self.max_bytes - self.file_bytes:
                break
            path.unlink()
            total -= sizes[path]
            removed.append(path)
        return removed

    def _fail(self, exc: BaseException) -> None:
        gz, raw = self._gzip, self._raw
        self._gzip = self._raw = None
        for item in (gz, raw):
            try:
                if item is not None:
                    item.close()
            except Exception:
                pass
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        where = getattr(exc, "filename", None) or self.path or self.directory
        if self.ok:
            log.error(
                f"recording stopped: {where}: {reason}; the daemon goes on without it, "
                f"retrying in {self.retry_s:g} s",
                extra={"fields": {"record_dir": str(self.directory)}},
            )
        self.ok, self.error = False, f"{where}: {reason}"
        self._retry_at = self.clock() + self.retry_s
