"""Real servers for the probe tests: HTTP(S) with a test CA, HAProxy, SMTP, PostgreSQL primary
and standby, BIND, and a TCP service behind nftables inside a network namespace.

Every server runs on loopback (or inside a namespace the fixture makes), with a known PID,
and is stopped by that PID at teardown.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from failover.config.model import CheckBase
from failover.core.model import CheckResult
from failover.lab import netns as nets
from failover.probes import ProbeContext, make_probe, run_check
from failover.testing.servers.bind import LoopbackBind
from failover.testing.servers.haproxy import HaproxyServer
from failover.testing.servers.http import HttpServer
from failover.testing.servers.postgres import PostgresServer
from failover.testing.servers.process import wait_until
from failover.testing.servers.smtp import SmtpServer

TLS_NAME = "app.example.test"


def probe(check: CheckBase, endpoint: str) -> CheckResult:
    """Run one check once, as the daemon does (hard timeout, disable file, wording)."""

    async def once() -> CheckResult:
        async with ProbeContext() as context:
            return await run_check(make_probe(check, context), check, endpoint)

    return asyncio.run(once())


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A scratch directory every server user can traverse (PostgreSQL runs as `postgres`)."""
    path = Path(tempfile.mkdtemp(prefix="fo-probes-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Tls:
    ca_file: str
    cert_file: str
    key_file: str


@pytest.fixture(scope="session")
def tls(workdir: Path) -> Tls:
    """A test CA and a server certificate for app.example.test and 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert(TLS_NAME, "mail.example.test", "127.0.0.1")
    paths = Tls(str(workdir / "ca.pem"), str(workdir / "server.pem"), str(workdir / "server.key"))
    ca.cert_pem.write_to_path(paths.ca_file)
    cert.cert_chain_pems[0].write_to_path(paths.cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(paths.cert_file, append=True)
    cert.private_key_pem.write_to_path(paths.key_file)
    return paths


@pytest.fixture(scope="session")
def http_server(workdir: Path) -> Iterator[HttpServer]:
    server = HttpServer(workdir / "http").start()
    yield server
    server.stop()


@pytest.fixture
def healthy_http(http_server: HttpServer) -> Iterator[HttpServer]:
    """The HTTP server with /health answering 200 at once (reset after the test)."""
    http_server.set_health(200)
    yield http_server
    http_server.set_health(200)


@pytest.fixture(scope="session")
def https_server(workdir: Path, tls: Tls) -> Iterator[HttpServer]:
    server = HttpServer(workdir / "https", tls=(tls.cert_file, tls.key_file)).start()
    yield server
    server.stop()


@dataclass
class Lb:
    haproxy: HaproxyServer
    backends: list[HttpServer]


@pytest.fixture(scope="module")
def lb(workdir: Path) -> Iterator[Lb]:
    """HAProxy in front of two HTTP servers, checking their /health every 100 ms."""
    backends = [HttpServer(workdir / f"lb-app{i}", name=f"app{i}").start() for i in range(2)]
    haproxy = HaproxyServer(workdir / "lb", [b.endpoint for b in backends], inter_ms=100)
    try:
        haproxy.start()
        yield Lb(haproxy, backends)
    finally:
        haproxy.stop()
        for backend in backends:
            backend.stop()


@pytest.fixture(scope="session")
def smtp_server(workdir: Path, tls: Tls) -> Iterator[SmtpServer]:
    server = SmtpServer(workdir / "smtp", tls=(tls.cert_file, tls.key_file)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_refusing(workdir: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(workdir / "smtp-421", banner_code=421).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_primary(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "pg" / "primary", name="primary").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_standby(workdir: Path, pg_primary: PostgresServer) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "pg" / "standby", primary=pg_primary, name="standby")
    server.start()
    yield server
    server.stop()


# --- BIND ----------------------------------------------------------------------------------

ZONE = """$ORIGIN example.test.
$TTL 30
@ IN SOA ns1 hostmaster ( 1 60 10 3600 30 )
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 192.0.2.10
www IN A 192.0.2.11
mail IN A 192.0.2.25
"""


@pytest.fixture(scope="session")
def bind(workdir: Path) -> Iterator[LoopbackBind]:
    """named on 127.0.0.1 at a free port, authoritative for example.test, no recursion."""
    server = LoopbackBind(workdir / "bind", "example.test.", ZONE).start()
    yield server
    server.stop()


# --- a TCP service behind nftables, inside a network namespace -----------------------------


@dataclass
class Firewalled:
    """A namespace at `address` with an HTTP server on `port`, and nftables rules to set."""

    netns: str
    address: str
    port: int
    server: HttpServer

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def rule(self, verdict: str | None, match: str = "") -> None:
        """Replace the namespace's input rules with one `match verdict` rule (None: open)."""
        nets.run(nets.in_netns(self.netns, ["nft", "flush", "chain", "inet", "fo", "input"]))
        if verdict is not None:
            what = match or f"tcp dport {self.port}"
            nets.run(nets.in_netns(self.netns, ["nft", f"add rule inet fo input {what} {verdict}"]))


@pytest.fixture(scope="module")
def firewalled(workdir: Path) -> Iterator[Firewalled]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nftables")
    index = os.getpid() % 200 + 20
    netns, host_if, ns_if = f"fo-t-fw{index}", f"fo-t{index}a", f"fo-t{index}b"
    host_address, ns_address = f"10.250.{index}.1", f"10.250.{index}.2"
    nets.delete_namespace(netns)
    nets.run(["ip", "link", "del", host_if], check=False)
    server: HttpServer | None = None
    try:
        nets.add_namespace(netns)
        nets.batch(
            None,
            [
                f"link add {host_if} type veth peer name {ns_if} netns {netns}",
                f"addr add {host_address}/24 dev {host_if}",
                f"link set {host_if} up",
            ],
        )
        nets.batch(netns, [f"addr add {ns_address}/24 dev {ns_if}", f"link set {ns_if} up"])
        chain = "add chain inet fo input { type filter hook input priority 0; }"
        nets.run(nets.in_netns(netns, ["nft", f"add table inet fo; {chain}"]))
        server = HttpServer(workdir / "fw-http", ns_address, 8080, netns=netns, name="fw").start()
        yield Firewalled(netns, ns_address, 8080, server)
    finally:
        if server is not None:
            server.stop()
        nets.run(["ip", "link", "del", host_if], check=False)
        nets.delete_namespace(netns)


def wait_for_result(
    check: CheckBase, endpoint: str, *, ok: bool, repeat: int = 1, timeout_s: float = 5.0
) -> CheckResult:
    """Probe until the result's `ok` is as wanted `repeat` times in a row (bounded)."""
    seen: list[CheckResult] = []

    def settled() -> bool:
        seen.append(probe(check, endpoint))
        return len(seen) >= repeat and all(r.ok == ok for r in seen[-repeat:])

    try:
        wait_until(settled, timeout_s, f"{endpoint} ok={ok}", interval_s=0.05)
    except TimeoutError:
        last = seen[-1].reason if seen else "no probe ran"
        raise AssertionError(f"{endpoint} not ok={ok} within {timeout_s} s: {last}") from None
    return seen[-1]
