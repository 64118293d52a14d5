"""A real ZooKeeper ensemble of 1 or 3 local server processes (Debian's `zookeeper` package).

Used by the tests, the lab, the demo and the benchmarks. Each node has its own data dir (wiped
by `start()`, kept by `restart()`), its own log, an address (default 127.0.0.1) and optionally a
network namespace. Readiness is the `srvr` four-letter word reporting a mode. With `tls`,
each node also serves TLS clients on its own port (`secure_hosts`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from failover.testing.servers.process import Process, ProcessError, free_port, wait_until

CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
# The jar's manifest leaves out two jars that the Netty (TLS) connection factory needs.
TLS_CLASSPATH = "/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
JAVA = "java"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS client port: the server's key and certificate, and the CA."""

    key_cert_pem: Path  # the private key followed by the certificate
    ca_pem: Path


def make_test_tls(folder: str | Path, addresses: list[str]) -> TlsFiles:
    """A throw-away CA and a server certificate for `addresses` (IP SANs), made with openssl."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    san = ",".join([f"IP:{address}" for address in sorted(set(addresses))] + ["DNS:localhost"])
    (folder / "san.cnf").write_text(f"subjectAltName={san}\n")
    steps = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=failover test CA",
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    ]
    for step in steps:
        done = subprocess.run(
            ["openssl", *step], cwd=folder, capture_output=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise ProcessError(f"openssl {step[0]}: {done.stderr.decode(errors='replace')}")
    pem = folder / "server.pem"
    pem.write_text((folder / "server.key").read_text() + (folder / "server.crt").read_text())
    return TlsFiles(pem, folder / "ca.pem")


@dataclass(frozen=True)
class ZooKeeperNode:
    """One server's place: its id (myid), address, ports and optional network namespace."""

    id: int
    host: str
    client_port: int
    peer_port: int
    election_port: int
    netns: str | None = None
    secure_port: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def secure_address(self) -> str | None:
        return None if self.secure_port is None else f"{self.host}:{self.secure_port}"


class ZooKeeperEnsemble:
    """`size` ZooKeeper servers (1 = standalone) under `workdir`.

    `hosts`/`netns` give each node its address and namespace (default: all on 127.0.0.1 with
    kernel-chosen ports). `tick_ms` is ZooKeeper's tickTime; sessions are clamped by the
    servers to [2, `max_session_ticks`] ticks.
    """

    def __init__(
        self,
        workdir: str | Path,
        size: int = 3,
        *,
        tick_ms: int = 200,
        max_session_ticks: int = 40,
        sync_limit: int = 5,
        init_limit: int = 10,
        hosts: list[str] | None = None,
        netns: list[str | None] | None = None,
        client_port: int | None = None,
        jvm_heap_mb: int = 256,
        tls: TlsFiles | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("an ensemble has at least one server")
        if hosts is not None and len(hosts) != size:
            raise ValueError(f"{len(hosts)} addresses given for {size} servers")
        if netns is not None and len(netns) != size:
            raise ValueError(f"{len(netns)} namespaces given for {size} servers")
        self.workdir = Path(workdir)
        self.tick_ms = tick_ms
        self.max_session_ticks = max_session_ticks
        self.sync_limit = sync_limit
        self.init_limit = init_limit
        self.jvm_heap_mb = jvm_heap_mb
        self.tls = tls
        addresses = hosts or ["127.0.0.1"] * size
        spaces = netns or [None] * size
        self.nodes = [
            ZooKeeperNode(
                id=index + 1,
                host=addresses[index],
                client_port=client_port or _port(addresses[index], spaces[index]),
                peer_port=_port(addresses[index], spaces[index]),
                election_port=_port(addresses[index], spaces[index]),
                netns=spaces[index],
                secure_port=_port(addresses[index], spaces[index]) if tls else None,
            )
            for index in range(size)
        ]
        self.processes: list[Process] = [self._process(node) for node in self.nodes]

    # --- addresses ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def hosts(self) -> list[str]:
        return [node.address for node in self.nodes]

    @property
    def connect_string(self) -> str:
        return ",".join(self.hosts)

    @property
    def secure_hosts(self) -> list[str]:
        return [node.secure_address for node in self.nodes if node.secure_address]

    @property
    def max_session_timeout_s(self) -> float:
        return self.tick_ms * self.max_session_ticks / 1000.0

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> ZooKeeperEnsemble:
        """Wipe every data dir, start every server, wait until each reports a mode."""
        self.stop()
        for node in self.nodes:
            node_dir = self._dir(node)
            shutil.rmtree(node_dir, ignore_errors=True)
            (node_dir / "data").mkdir(parents=True)
            (node_dir / "data" / "myid").write_text(f"{node.id}\n")
            (node_dir / "zoo.cfg").write_text(self._config(node))
        for process in self.processes:
            process.start()
        self.wait_ready(timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.stop(timeout_s=5.0)

    def __enter__(self) -> ZooKeeperEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self, index: int) -> None:
        """kill -9 server `index` (0-based), as a crash does."""
        self.processes[index].kill()

    def pause(self, index: int) -> None:
        self.processes[index].pause()

    def resume(self, index: int) -> None:
        self.processes[index].resume()

    def restart(self, index: int, timeout_s: float = 30.0, wait: bool = True) -> None:
        """Start server `index` again with its data kept; wait until it serves if `wait`."""
        process = self.processes[index]
        process.stop(timeout_s=5.0)
        process.start()
        if wait:
            self.wait_ready([index], timeout_s=timeout_s)

    def alive(self, index: int) -> bool:
        return self.processes[index].alive

    # --- state ---------------------------------------------------------------------------------

    def mode(self, index: int, timeout_s: float = 1.0) -> str | None:
        """`leader`, `follower` or `standalone` from `srvr`; None when it does not serve."""
        reply = self.four_letter(index, "srvr", timeout_s)
        for line in reply.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def leader_index(self) -> int | None:
        for index in range(self.size):
            if self.alive(index) and self.mode(index) in ("leader", "standalone"):
                return index
        return None

    def wait_ready(self, indices: list[int] | None = None, timeout_s: float = 30.0) -> None:
        wanted = list(range(self.size)) if indices is None else indices
        for index in wanted:
            process = self.processes[index]

            def serving(index: int = index, process: Process = process) -> bool:
                if not process.alive:
                    raise process.fail("exited before serving")
                return self.mode(index) is not None

            try:
                wait_until(serving, timeout_s, f"zookeeper node {index + 1} serving", retry_on=())
            except TimeoutError as exc:
                raise process.fail(str(exc)) from None

    def four_letter(self, index: int, word: str, timeout_s: float = 1.0) -> str:
        """Send a four-letter word to server `index`; '' when it does not answer."""
        node = self.nodes[index]
        if node.netns is None:
            return _four_letter(node.host, node.client_port, word, timeout_s)
        script = (
            "import socket,sys\n"
            f"s=socket.create_connection(({node.host!r},{node.client_port}),{timeout_s})\n"
            f"s.sendall({word.encode()!r})\n"
            "sys.stdout.write(b''.join(iter(lambda:s.recv(4096),b'')).decode(errors='replace'))\n"
        )
        try:
            done = subprocess.run(
                ["ip", "netns", "exec", node.netns, "python3", "-c", script],
                capture_output=True,
                timeout=timeout_s + 2.0,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    def logs(self, lines: int = 60) -> str:
        """The tail of every server's log, each under a header."""
        parts = []
        for node, process in zip(self.nodes, self.processes, strict=True):
            parts.append(f"--- zookeeper node {node.id} ({node.address}) {process.log_path} ---")
            parts.append(process.log_tail(lines))
        return "\n".join(parts)

    # --- internals -----------------------------------------------------------------------------

    def _dir(self, node: ZooKeeperNode) -> Path:
        return self.workdir / f"zk{node.id}"

    def _process(self, node: ZooKeeperNode) -> Process:
        node_dir = self._dir(node)
        argv = [
            JAVA,
            f"-Xmx{self.jvm_heap_mb}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            CLASSPATH + (":" + TLS_CLASSPATH if self.tls else ""),
            MAIN_CLASS,
            str(node_dir / "zoo.cfg"),
        ]
        return Process(
            f"zookeeper-{node.id}",
            argv,
            log_path=self.workdir / f"zk{node.id}.log",
            cwd=None,
            netns=node.netns,
        )

    def _config(self, node: ZooKeeperNode) -> str:
        lines = [
            f"tickTime={self.tick_ms}",
            f"initLimit={self.init_limit}",
            f"syncLimit={self.sync_limit}",
            f"dataDir={self._dir(node) / 'data'}",
            f"clientPort={node.client_port}",
            f"clientPortAddress={node.host}",
            f"minSessionTimeout={2 * self.tick_ms}",
            f"maxSessionTimeout={self.max_session_ticks * self.tick_ms}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr,cons",
            "maxClientCnxns=200",
            "autopurge.purgeInterval=0",
        ]
        if self.tls is not None and node.secure_port is not None:
            lines += [
                f"secureClientPort={node.secure_port}",
                f"secureClientPortAddress={node.host}",
                "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
                f"ssl.keyStore.location={self.tls.key_cert_pem}",
                "ssl.keyStore.type=PEM",
                f"ssl.trustStore.location={self.tls.ca_pem}",
                "ssl.trustStore.type=PEM",
                "ssl.clientAuth=none",
            ]
        if self.size > 1:
            lines.append("standaloneEnabled=false")
            for peer in self.nodes:
                lines.append(f"server.{peer.id}={peer.host}:{peer.peer_port}:{peer.election_port}")
        return "\n".join(lines) + "\n"


def _port(host: str, netns: str | None) -> int:
    # Inside a namespace the address may not exist on the host: any free loopback port will do
    # there, since each namespace has its own port space.
    if netns is None:
        return free_port(host)
    return free_port("127.0.0.1")


def _four_letter(host: str, port: int, word: str, timeout_s: float) -> str:
    chunks: list[bytes] = []
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(word.encode())
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks).decode(errors="replace")


__all__ = [
    "ProcessError",
    "TlsFiles",
    "ZooKeeperEnsemble",
    "ZooKeeperNode",
    "make_test_tls",
    "wait_until",
]
