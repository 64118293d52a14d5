"""Network namespace, link and process helpers: `ip`, `nft` and PIDs, every call bounded."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

COMMAND_TIMEOUT_S = 10.0


class LabError(RuntimeError):
    """Something the lab needs could not be done; the message says what and why."""


def run(
    argv: Sequence[str],
    *,
    timeout_s: float = COMMAND_TIMEOUT_S,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded); raise LabError naming it when it fails."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (run `make system`)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout_s:g} s") from None
    if check and done.returncode != 0:
        raise LabError(
            f"`{' '.join(argv)}` failed ({done.returncode}): {(done.stderr or done.stdout).strip()}"
        )
    return done


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def namespaces() -> list[str]:
    """Every network namespace on the host, by name."""
    done = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def add_namespace(ns: str) -> bool:
    """Create `ns` with loopback up; False if it already existed."""
    if ns in namespaces():
        return False
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    return True


def delete_namespace(ns: str) -> None:
    run(["ip", "netns", "delete", ns], check=False)


def batch(ns: str | None, commands: Iterable[str]) -> None:
    """Several `ip` commands inside `ns` (None: the host's namespace) in one call (`ip -batch`),
    stopping at the first error."""
    text = "\n".join(commands) + "\n"
    run(["ip", *(["-n", ns] if ns is not None else []), "-batch", "-"], input_text=text)


def link_exists(ns: str, name: str) -> bool:
    return run(["ip", "-n", ns, "link", "show", "dev", name], check=False).returncode == 0


def add_veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair created directly inside both namespaces (it never exists on the host)."""
    if link_exists(ns_a, name_a):
        return
    run(
        [
            "ip",
            "-n",
            ns_a,
            "link",
            "add",
            name_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "netns",
            ns_b,
        ]
    )


def sysctl(ns: str, key: str, value: str) -> None:
    run(in_netns(ns, ["sysctl", "-q", "-w", f"{key}={value}"]))


def netns_pids(ns: str) -> list[int]:
    """The PIDs of every process living in `ns` (all of them are the lab's)."""
    done = run(["ip", "netns", "pids", ns], check=False)
    return [int(word) for word in done.stdout.split() if word.isdigit()]


def pids_running(ns: str, needle: str) -> list[int]:
    """The PIDs in `ns` whose command line mentions `needle` (a config file's path)."""
    found = []
    for pid in netns_pids(ns):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                words = cmdline.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if needle in words:
            found.append(pid)
    return found


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def wait_pid_file(path: Path, what: str, timeout_s: float = 3.0) -> int:
    """The PID a daemon writes once it has forked, waiting for the file (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid = read_pid(path)
        if pid is not None and pid_alive(pid):
            return pid
        if time.monotonic() >= deadline:
            raise LabError(f"{what} wrote no PID file {path} within {timeout_s:g} s")
        time.sleep(0.02)


def kill_pids(pids: Sequence[int], grace_s: float = 1.0) -> None:
    """SIGTERM these PIDs, SIGKILL whichever is left after `grace_s`, wait until all are gone."""
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        left = [pid for pid in pids if pid_alive(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + wait_s
        while left and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
            left = [pid for pid in left if pid_alive(pid)]
            if left:
                time.sleep(0.02)
        if not left:
            return
    raise LabError(f"processes {left} did not exit")
