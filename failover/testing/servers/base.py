"""What the project's server launchers share: ports, readiness, and our own Python servers."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from failover.testing.servers.process import Errors, Process, free_port, port_open, wait_until

READY_FILE = "ready"


def listening(address: str, port: int, netns: str | None) -> bool:
    """Is something listening on address:port (inside `netns` when given)?"""
    if netns is None:
        return port_open(address, port)
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=3.0,
            check=False,
        ).stdout
    except subprocess.TimeoutExpired:
        return False
    return bool(out.strip())


def wait_ready(
    process: Process,
    ready: Callable[[], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    *,
    retry_on: Errors = (OSError, subprocess.SubprocessError),
) -> None:
    """Poll `ready()` until true; fail with the log tail if the process dies or time runs out.
    Only the errors in `retry_on` mean "not ready yet" (see `wait_until`)."""

    def up() -> bool:
        if not process.alive:
            raise process.fail(f"exited before {what}")
        return ready()

    try:
        wait_until(up, timeout_s, what, interval_s, retry_on=retry_on)
    except TimeoutError as exc:
        process.stop()
        raise process.fail(str(exc)) from None
    except BaseException:  # not ready, and never will be: leave no process behind
        process.stop()
        raise


def pick_port(address: str, port: int | None, netns: str | None) -> int:
    """`port`, or a free one on `address` (only knowable outside a namespace)."""
    if port is not None:
        return port
    if netns is not None:
        raise ValueError("a server inside a network namespace needs an explicit port")
    return free_port(address)


def url_host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


class ModuleServer:
    """One of our own Python servers (`python -m MODULE --listen A:P --dir D --name N ...`),
    in its own process (inside `netns` when given); it writes READY_FILE once it listens."""

    kind = "server"
    module = ""

    def __init__(
        self,
        workdir: str | Path,
        address: str,
        port: int | None,
        *,
        netns: str | None,
        tls: tuple[str, str] | None,
        name: str,
        extra: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.port = pick_port(address, port, netns)
        self.netns = netns
        self.tls = tls
        self.name = name
        argv = [
            sys.executable,
            "-m",
            self.module,
            "--listen",
            f"{address}:{self.port}",
            "--dir",
            str(self.workdir),
            "--name",
            name,
            *extra,
        ]
        if tls is not None:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.process = Process(
            f"{self.kind} {name}", argv, log_path=self.workdir / f"{self.kind}.log", netns=netns
        )

    @property
    def endpoint(self) -> str:
        return f"{url_host(self.address)}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / READY_FILE).unlink(missing_ok=True)
        self.process.start()
        wait_ready(self.process, (self.workdir / READY_FILE).exists, timeout_s, "ready")
        return self

    def stop(self) -> None:
        self.process.stop()


class ConfiguredServer:
    """A native server (nginx, HAProxy) run in the foreground from a config file we write;
    ready once something listens on its address and port."""

    kind = "server"

    def __init__(
        self,
        workdir: str | Path,
        address: str,
        port: int | None,
        *,
        netns: str | None,
        name: str,
        config_name: str,
    ) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.port = pick_port(address, port, netns)
        self.netns = netns
        self.name = name
        self.config_path = self.workdir / config_name
        self.process = Process(
            f"{self.kind} {name}",
            self.argv(),
            log_path=self.workdir / f"{self.kind}.log",
            netns=netns,
        )

    def argv(self) -> list[str]:
        raise NotImplementedError

    def config(self) -> str:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return f"{url_host(self.address)}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        self.process.start()
        wait_ready(
            self.process,
            lambda: listening(self.address, self.port, self.netns),
            timeout_s,
            "listening",
        )
        return self

    def stop(self) -> None:
        self.process.stop()
