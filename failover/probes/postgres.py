"""`postgres` checks (asyncpg): connect, `SELECT 1`, the expected role, a replication-lag bound."""

from __future__ import annotations

import contextlib
from pathlib import Path

import asyncpg

from failover.config.model import PostgresCheck, split_host_port
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext, first_line
from failover.secrets import register

# One round trip: liveness, role, and (on a standby) how far replay is behind. A standby that
# has replayed everything it received is not lagging, however old the last transaction is.
QUERY = """
SELECT 1 AS one,
       pg_is_in_recovery() AS recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0.0)
       END::float8 AS lag_s
"""


class PostgresProbe(Probe):
    """Connect, run one query, compare the role and the lag with what is expected."""

    def __init__(self, check: PostgresCheck, context: ProbeContext) -> None:
        self.check = check

    def _password(self) -> str | None:
        if self.check.password_file is None:
            return None
        password = Path(self.check.password_file).read_text().strip()
        register(password)
        return password

    async def run(self, endpoint: str) -> CheckResult:
        check = self.check
        host, port = split_host_port(endpoint)
        try:
            password = self._password()
        except OSError as exc:
            return CheckResult(False, reason=f"cannot read password_file: {exc.strerror}")
        try:
            connection = await asyncpg.connect(
                host=host,
                port=port,
                user=check.user,
                database=check.database,
                password=password,
                timeout=check.timeout_s,
                ssl=False,
            )
        except asyncpg.PostgresError as exc:
            return CheckResult(False, reason=f"PostgreSQL at {endpoint}: {first_line(str(exc))}")
        try:
            row = await connection.fetchrow(QUERY)
        except asyncpg.PostgresError as exc:
            return CheckResult(False, reason=f"PostgreSQL at {endpoint}: {first_line(str(exc))}")
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=check.timeout_s)
        return self.judge(row["one"], row["recovery"], row["lag_s"], endpoint)

    def judge(self, one: int, recovery: bool, lag_s: float | None, endpoint: str) -> CheckResult:
        check = self.check
        if one != 1:
            return CheckResult(False, reason=f"SELECT 1 returned {one!r} at {endpoint}")
        role = "standby" if recovery else "primary"
        if check.expect_role != "any" and role != check.expect_role:
            return CheckResult(
                False,
                reason=f"pg_is_in_recovery()={str(recovery).lower()}, expected "
                f"{check.expect_role} ({endpoint})",
            )
        if recovery and check.max_lag_s is not None and (lag_s or 0.0) > check.max_lag_s:
            return CheckResult(
                False,
                reason=f"replication lag {lag_s:.1f} s > {check.max_lag_s:g} s ({endpoint})",
            )
        lag = f", lag {lag_s:.1f} s" if recovery and lag_s is not None else ""
        return CheckResult(True, reason=f"{role} at {endpoint}{lag}")
