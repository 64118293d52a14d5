"""Helpers for tests, benchmarks and demos that use the lab: build it, reach into it."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from failover.config import BgpSteering
from failover.lab.lab import COMPONENTS, TOOLS, Lab
from failover.lab.netns import LabError
from failover.lab.topology import ROUTER_SITES
from failover.steer.netns import netns_socket
from failover.testing.servers.process import Process, wait_until


def unavailable() -> str | None:
    """Why the lab cannot run here (not root, a program missing), or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"missing programs: {', '.join(missing)}" if missing else None


@contextlib.contextmanager
def running_lab(lab: Lab | None = None) -> Iterator[Lab]:
    """A freshly built lab (whatever a crashed run left is removed first), removed afterwards."""
    the_lab = lab or Lab()
    the_lab.down()
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()


def log_tails(lab: Lab, lines: int = 30) -> str:
    """The end of every BIRD and named log of the lab, for a failing test's report."""
    parts = []
    for path in sorted(lab.run_dir.glob("**/*.log")):
        with contextlib.suppress(OSError):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} ---\n" + "\n".join(tail))
    return "\n".join(parts)


def fetch(location: str, host: str, port: int, path: str = "/", timeout_s: float = 1.0) -> str:
    """An HTTP GET from inside a lab location (a socket opened in its namespace); the body."""
    with netns_socket(f"fo-{location}", socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect((host, port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0] + b" ":
        raise OSError(f"unexpected answer from {host}:{port}: {head[:60]!r}")
    return body.decode(errors="replace")


def serve_text(lab: Lab, location: str, address: str, port: int, text: str) -> Process:
    """A small HTTP server inside `location` on `address:port` whose `/` answers `text`."""
    root = lab.location_dir(location) / f"http-{address}-{port}"
    root.mkdir(parents=True, exist_ok=True)
    Path(root / "index.html").write_text(text)
    process = lab.process(
        location,
        f"http-{address}-{port}",
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            address,
            "--directory",
            str(root),
        ],
    )
    process.start()
    try:
        wait_until(
            lambda: _listening(lab, location, port),
            5.0,
            f"http server in {location}",
            retry_on=(OSError, LabError),
        )
    except TimeoutError:
        process.stop()
        raise process.fail("did not listen") from None
    return process


def _listening(lab: Lab, location: str, port: int) -> bool:
    done = lab.exec(location, ["ss", "-Htln", f"sport = :{port}"], timeout_s=2.0)
    return bool(done.stdout.strip())


def _forgotten(lab: Lab, prefix: str) -> bool:
    return not lab.routes(prefix)


def reset_lab(lab: Lab, timeout_s: float = 10.0) -> None:
    """Back to a known state between tests: every server running, no cuts, no steering
    routes in the router sites' tables (and so none at the isp)."""
    lab.heal_all()
    for component in COMPONENTS:
        lab.start(component)
    tables = {
        site.table
        for group in lab.config.groups.values()
        if isinstance(group.steering, BgpSteering)
        for site in group.steering.sites.values()
    }
    for site in ROUTER_SITES:
        for table in sorted(tables):
            lab.exec(site, ["ip", "route", "flush", "table", str(table)])  # may not exist yet
    lab.wait_ready(timeout_s)
    for prefix in lab.prefixes():
        wait_until(
            functools.partial(_forgotten, lab, prefix), timeout_s, f"the isp forgetting {prefix}"
        )


def reset_dns(lab: Lab, timeout_s: float = 10.0) -> None:
    """Both name servers restarted from fresh files: the zones as the lab first serves them."""
    for component in ("dns-secondary", "dns-primary"):
        lab.stop(component)
    lab.start("dns-primary", fresh=True)
    lab.start("dns-secondary", fresh=True)
    lab.wait_ready(timeout_s)
