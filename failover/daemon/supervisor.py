"""A small supervisor that speaks systemd's protocol, for machines without systemd (the lab).

What it does, as systemd does with `Type=notify`, `WatchdogSec=`, `ExecStopPost=`, `Restart=`:
the child gets $NOTIFY_SOCKET and $WATCHDOG_USEC; it must send READY=1 and then WATCHDOG=1
at least every `watchdog_s`; a silent (frozen) child gets SIGABRT, then SIGKILL; whenever the
child ends, for whatever reason, the stop hook runs (it is the supervisor's, not the child's,
so a killed or frozen daemon still gets its site demoted); then the child restarts if asked.
Like systemd's `Nice=`, `CPUSchedulingPolicy=` and `CPUSchedulingPriority=`, it can start the
child with a scheduling priority (`Priority`), so that checks start on time on a busy host.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

SCHED_POLICIES = {
    "other": os.SCHED_OTHER,
    "batch": os.SCHED_BATCH,
    "idle": os.SCHED_IDLE,
    "fifo": os.SCHED_FIFO,
    "rr": os.SCHED_RR,
}
REALTIME = ("fifo", "rr")


class PriorityError(RuntimeError):
    """The child could not be given the scheduling priority asked for."""


@dataclass(frozen=True)
class Priority:
    """A process's scheduling settings, as systemd's `Nice=`, `CPUSchedulingPolicy=`,
    `CPUSchedulingPriority=` and `CPUSchedulingResetOnFork=yes` set them.

    `apply()` runs in the process to set (a `preexec_fn`, or the process itself): threads
    started later inherit it. A real-time policy is reset on fork, so that check commands
    (plugins) run at normal priority; a nice value is inherited, as with systemd.
    """

    nice: int | None = None
    policy: str | None = None  # a key of SCHED_POLICIES; None: leave as it is
    rt_priority: int = 0  # 1..99 for fifo and rr

    def __post_init__(self) -> None:
        if self.nice is not None and not -20 <= self.nice <= 19:
            raise ValueError(f"nice: {self.nice} is not within -20..19")
        if self.policy is not None and self.policy not in SCHED_POLICIES:
            raise ValueError(f"sched: {self.policy!r} is not one of {', '.join(SCHED_POLICIES)}")
        realtime = self.policy in REALTIME
        if realtime and not 1 <= self.rt_priority <= 99:
            raise ValueError(f"sched priority: {self.rt_priority} must be 1..99 for {self.policy}")
        if not realtime and self.rt_priority:
            raise ValueError(f"sched priority: {self.rt_priority} needs --sched fifo or rr")

    @property
    def empty(self) -> bool:
        return self.nice is None and self.policy is None

    def apply(self) -> None:
        """Set this on the calling process (raises OSError without the privilege)."""
        if self.nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)
        if self.policy is not None:
            flags = os.SCHED_RESET_ON_FORK if self.policy in REALTIME else 0
            os.sched_setscheduler(
                0, SCHED_POLICIES[self.policy] | flags, os.sched_param(self.rt_priority)
            )

    def supervise_args(self) -> list[str]:
        """The same settings as `failover supervise` options."""
        args = [] if self.nice is None else ["--nice", str(self.nice)]
        if self.policy is not None:
            args += ["--sched", self.policy]
        if self.rt_priority:
            args += ["--sched-priority", str(self.rt_priority)]
        return args

    def describe(self) -> dict[str, object]:
        return {"nice": self.nice, "sched": self.policy, "sched_priority": self.rt_priority or None}


@dataclass(frozen=True)
class SupervisorOptions:
    command: Sequence[str]
    watchdog_s: float
    stop_hook: Sequence[str] = ()
    restart_s: float | None = None  # None: do not restart
    ready_timeout_s: float = 60.0
    hook_timeout_s: float = 30.0
    kill_grace_s: float = 1.0
    priority: Priority = Priority()


class Supervisor:
    def __init__(self, options: SupervisorOptions) -> None:
        self.options = options
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        folder = tempfile.mkdtemp(prefix="failover-supervise-")
        self.socket_path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.socket_path)

    def log(self, event: str, **fields: object) -> None:
        record = {"at": round(time.time(), 3), "component": "supervisor", "event": event, **fields}
        print(json.dumps(record), file=sys.stderr, flush=True)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        code = 0
        try:
            while True:
                code, result = self._run_once()
                self._stop_hook(result, code)
                if self.stopping or self.options.restart_s is None:
                    return code
                self.log("restart", after_s=self.options.restart_s)
                time.sleep(self.options.restart_s)
                if self.stopping:  # told to stop while waiting: no new child
                    return code
        finally:
            self.sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
                os.rmdir(os.path.dirname(self.socket_path))

    def _on_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def _run_once(self) -> tuple[int, str]:
        env = {
            **os.environ,
            "NOTIFY_SOCKET": self.socket_path,
            "WATCHDOG_USEC": str(int(self.options.watchdog_s * 1e6)),
        }
        priority = self.options.priority
        try:
            self.child = subprocess.Popen(
                list(self.options.command),
                env=env,
                preexec_fn=None if priority.empty else priority.apply,
            )
        except subprocess.SubprocessError as exc:  # priority.apply() failed in the child
            raise PriorityError(
                f"cannot start the child with {priority.describe()}: "
                "setting a negative nice or a real-time policy needs root "
                f"(CAP_SYS_NICE) ({exc})"
            ) from exc
        pid = self.child.pid
        self.log(
            "started",
            pid=pid,
            watchdog_s=self.options.watchdog_s,
            **({} if priority.empty else priority.describe()),
        )
        ready = False
        deadline = time.monotonic() + self.options.ready_timeout_s
        while True:
            exit_code = self.child.poll()
            if exit_code is not None:
                result = (
                    "success" if exit_code == 0 else ("signal" if exit_code < 0 else "exit-code")
                )
                self.log("exited", pid=pid, code=exit_code, result=result)
                return exit_code, result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = "watchdog" if ready else "timeout"
                self.log(why, pid=pid, detail="no keep-alive in time; killing")
                self._kill()
                code = self.child.wait()
                return code, why
            readable, _, _ = select.select([self.sock], [], [], min(remaining, 0.1))
            if not readable:
                continue
            message = self.sock.recv(4096).decode(errors="replace")
            fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
            if fields.get("READY") == "1" and not ready:
                ready = True
                self.log("ready", pid=pid, status=fields.get("STATUS", ""))
            if ready and ("WATCHDOG" in fields or "READY" in fields):
                deadline = time.monotonic() + self.options.watchdog_s

    def _kill(self) -> None:
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError):
            # As systemd: the signal first, SIGCONT after, so a frozen child dies as it wakes.
            # The other order thaws it for a moment, and it acts (logs, pings ZooKeeper).
            self.child.send_signal(signal.SIGABRT)
            self.child.send_signal(signal.SIGCONT)
        try:
            self.child.wait(self.options.kill_grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.child.kill()

    def _stop_hook(self, result: str, code: int) -> None:
        if not self.options.stop_hook:
            return
        env = {**os.environ, "SERVICE_RESULT": result, "EXIT_STATUS": str(code)}
        started = time.monotonic()
        try:
            done = subprocess.run(
                list(self.options.stop_hook),
                env=env,
                timeout=self.options.hook_timeout_s,
                check=False,
            )
            self.log("stop_hook", code=done.returncode, took_s=round(time.monotonic() - started, 3))
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.log("stop_hook_failed", detail=str(exc))
