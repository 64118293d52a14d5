"""Real server processes the project starts itself (tests, lab, demo, benchmarks).

Each process has a known PID, writes its output to its own log file, optionally runs inside a
network namespace, and is killed by that PID at stop. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar


class ProcessError(RuntimeError):
    """A server did not start or become ready; the message ends with its log's tail."""


class Process:
    """One server process. `start()` launches it; `stop()` ends it and waits for the PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: str | Path,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        netns: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.netns = netns
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> Process:
        argv = self.argv if self.netns is None else ["ip", "netns", "exec", self.netns, *self.argv]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = None if self.env is None else {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            try:
                self._popen = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.cwd,
                    env=environment,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessError(f"{self.name}: cannot start {argv[0]}: {exc}") from None
        return self

    def signal(self, signum: int) -> None:
        if self.alive and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def kill(self) -> None:
        """kill -9, as a crash does."""
        self.signal(signal.SIGKILL)
        self.wait(5.0)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def wait(self, timeout_s: float) -> int | None:
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL after `timeout_s`."""
        if not self.alive:
            return
        self.resume()
        self.signal(signal.SIGTERM)
        if self.wait(timeout_s) is None:
            self.signal(signal.SIGKILL)
            self.wait(5.0)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, why: str) -> ProcessError:
        return ProcessError(f"{self.name}: {why}\n--- {self.log_path} ---\n{self.log_tail()}")


Errors = tuple[type[BaseException], ...]
T = TypeVar("T")
D = TypeVar("D")


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    *,
    retry_on: Errors = (OSError,),
) -> None:
    """Poll `predicate` until it returns something true; raise TimeoutError naming `what` (and
    the last error retried) after `timeout_s`.

    Only the errors in `retry_on` mean "not yet" (by default OSError: nothing listens yet, a
    file is not written yet, a timeout); any other error is a bug or a real failure and ends
    the wait at once, with its own traceback, instead of turning into a timeout."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except retry_on as exc:
            last = exc
        if time.monotonic() >= deadline:
            why = f" (last: {type(last).__name__}: {last})" if last is not None else ""
            raise TimeoutError(f"{what}: not within {timeout_s:g} s{why}")
        time.sleep(interval_s)


def attempt(call: Callable[[], T], expected: Errors, default: D) -> T | D:
    """One try of what `wait_until` polls: `call()`, or `default` if it raised one of the
    `expected` errors; any other error propagates."""
    try:
        return call()
    except expected:
        return default


_handed_out: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now, for a server that binds it later.

    The kernel's own pick (bind to port 0) is not safe for that: it comes from the ephemeral
    range, so an outgoing connection (a ZooKeeper server dialling its peers) can hold it by the
    time the server binds, and the kernel may hand the same port out twice before either server
    binds. A daemon then ran without its API while a ZooKeeper port answered at its address. So
    the port comes from below the ephemeral range and is never handed out twice by a process.
    """
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(10000, low)
        if (host, port) in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add((host, port))
        return port
    raise ProcessError(f"no free TCP port on {host} between 10000 and {low}")


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(10001, int(text.split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
