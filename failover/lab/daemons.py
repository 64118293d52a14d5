"""A daemon of the lab as production runs it: `failover supervise` (systemd's notify and
watchdog protocol, the stop hook `failover demote`) around `failover run`, inside its site's
namespace. Faults reach the daemon only (kill -9, SIGSTOP), never its supervisor."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from failover.daemon.supervisor import Priority
from failover.lab.lab import Lab
from failover.testing.servers.process import Process, wait_until

FAILOVER = str(Path(sys.executable).parent / "failover")


class SupervisedDaemon:
    """`failover supervise ... -- failover run` inside a site's namespace."""

    def __init__(
        self,
        lab: Lab,
        instance: str,
        site: str,
        config_path: Path,
        watchdog_s: float,
        priority: Priority | None = None,
        log_level: str = "INFO",
        restart_s: float | None = None,
    ) -> None:
        self.instance = instance
        self.site = site
        self.watchdog_s = watchdog_s
        hook = f"{FAILOVER} demote --config {config_path} --instance {instance}"
        argv = [
            FAILOVER,
            "supervise",
            "--watchdog-s",
            f"{watchdog_s:g}",
            "--stop-hook",
            hook,
            *(priority.supervise_args() if priority else []),
            # as systemd's Restart=on-failure: the daemon starts again after a crash
            *(["--restart-s", f"{restart_s:g}"] if restart_s is not None else []),
            "--",
            FAILOVER,
            "run",
            "--config",
            str(config_path),
            "--instance",
            instance,
            "--log-level",
            log_level,
        ]
        self.process: Process = lab.process(site, f"daemon-{instance}", argv)

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def alive(self) -> bool:
        return self.process.alive

    def start(self) -> None:
        if not self.process.alive:
            self.process.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to supervisor and daemon: the daemon resigns, the stop hook runs."""
        self.process.stop(timeout_s)

    def child_pid(self) -> int | None:
        """The daemon's PID (the supervisor's child), None while it has none."""
        pid = self.process.pid
        if pid is None or not self.process.alive:
            return None
        try:
            words = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(words[0]) if words else None

    def wait_child(self, timeout_s: float = 10.0) -> int:
        wait_until(
            lambda: self.child_pid() is not None, timeout_s, f"{self.instance}'s daemon process"
        )
        pid = self.child_pid()
        assert pid is not None
        return pid

    def signal_daemon(self, signum: int) -> int:
        """Send `signum` to the daemon only (not to its supervisor); the daemon's PID."""
        pid = self.wait_child()
        os.kill(pid, signum)
        return pid

    def events(self) -> list[dict[str, Any]]:
        """The supervisor's own records (started, ready, watchdog, exited, stop_hook...)."""
        found = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if '"component": "supervisor"' in line:
                    with contextlib.suppress(ValueError):
                        found.append(json.loads(line))
        return found

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)
