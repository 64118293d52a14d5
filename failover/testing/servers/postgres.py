"""PostgreSQL 15 from Debian: a primary, and standbys made with `pg_basebackup -R`.

The server runs as the `postgres` user in the foreground with its data directory, its socket
and its log in one place. Every ancestor of the data directory must be traversable by that
user (a directory under /tmp made with mode 0755 is; pytest's tmp_path is not). Trust
authentication from anywhere: for tests and the lab only.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path

from failover.testing.servers.base import pick_port, url_host, wait_ready
from failover.testing.servers.process import Process, ProcessError

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


def _as_postgres(argv: list[str]) -> list[str]:
    return ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", *argv]


class PostgresServer:
    def __init__(
        self,
        datadir: str | Path,
        address: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        primary: PostgresServer | None = None,
        name: str = "db",
    ) -> None:
        self.datadir = Path(datadir)
        self.address = address
        self.port = pick_port(address, port, netns)
        self.netns = netns
        self.primary = primary
        self.name = name
        self.process = Process(
            f"postgres {name}",
            _as_postgres(
                [
                    str(BIN / "postgres"),
                    "-D",
                    str(self.datadir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.datadir),
                    "-c",
                    f"listen_addresses={address}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "logging_collector=off",
                    "-c",
                    "wal_sender_timeout=5s",
                    "-c",
                    "wal_receiver_status_interval=1s",
                    "-c",
                    "hot_standby_feedback=on",
                ]
            ),
            log_path=self.datadir.parent / f"{self.datadir.name}.log",
            netns=netns,
        )

    @property
    def endpoint(self) -> str:
        return f"{url_host(self.address)}:{self.port}"

    def _run(self, argv: list[str], timeout_s: float, in_netns: bool = False) -> str:
        full = _as_postgres(argv)
        if in_netns and self.netns is not None:
            full = ["ip", "netns", "exec", self.netns, *full]
        try:
            done = subprocess.run(
                full, capture_output=True, text=True, timeout=timeout_s, check=False, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise ProcessError(f"{self.name}: {argv[0]} took over {timeout_s:g} s") from None
        if done.returncode != 0:
            raise ProcessError(f"{self.name}: {' '.join(argv)} failed:\n{done.stderr}")
        return done.stdout

    def init(self, timeout_s: float = 60.0) -> PostgresServer:
        """Create the data directory: `initdb`, or a base backup of the primary."""
        user = pwd.getpwnam(USER)
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.datadir.mkdir(mode=0o700, exist_ok=False)
        os.chown(self.datadir, user.pw_uid, user.pw_gid)
        if self.primary is None:
            self._run(
                [
                    str(BIN / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-A",
                    "trust",
                    "-U",
                    USER,
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                timeout_s,
            )
            with open(self.datadir / "pg_hba.conf", "a") as hba:
                hba.write(
                    "host all all 0.0.0.0/0 trust\nhost replication all 0.0.0.0/0 trust\n"
                    "host all all ::/0 trust\nhost replication all ::/0 trust\n"
                )
        else:
            self._run(
                [
                    str(BIN / "pg_basebackup"),
                    "-h",
                    self.primary.address,
                    "-p",
                    str(self.primary.port),
                    "-U",
                    USER,
                    "-D",
                    str(self.datadir),
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                    "-c",
                    "fast",
                ],
                timeout_s,
                in_netns=True,
            )
            for stale in self.datadir.glob(".s.PGSQL.*"):  # the primary's socket lock, copied
                stale.unlink()
        return self

    def ready(self) -> bool:
        done = subprocess.run(
            [str(BIN / "pg_isready"), "-q", "-h", str(self.datadir), "-p", str(self.port)],
            capture_output=True,
            timeout=5.0,
            check=False,
        )
        return done.returncode == 0

    def start(self, timeout_s: float = 30.0) -> PostgresServer:
        if not (self.datadir / "PG_VERSION").exists():
            self.init()
        self.process.start()
        wait_ready(self.process, self.ready, timeout_s, "accepting connections", 0.1)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then the usual stop."""
        self.process.signal(signal.SIGINT)
        if self.process.wait(timeout_s) is None:
            self.process.stop()

    def sql(self, statement: str, timeout_s: float = 10.0) -> str:
        """Run one statement over the local socket; its rows as psql's unaligned text."""
        return self._run(
            [
                str(BIN / "psql"),
                "-h",
                str(self.datadir),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                "postgres",
                "-XAtqc",
                statement,
            ],
            timeout_s,
        ).strip()

    def promote(self, timeout_s: float = 30.0) -> None:
        """Make a standby the primary (and wait until it is)."""
        self._run(
            [
                str(BIN / "pg_ctl"),
                "promote",
                "-w",
                "-t",
                str(int(timeout_s)),
                "-D",
                str(self.datadir),
            ],
            timeout_s + 5,
        )
