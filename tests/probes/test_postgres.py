"""PostgreSQL checks against a real primary and a streaming standby (Debian's PostgreSQL 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover.config.model import PostgresCheck
from failover.testing.servers.postgres import PostgresServer
from failover.testing.servers.process import ProcessError, free_port, wait_until
from tests.probes.conftest import probe


def pg(**fields: object) -> PostgresCheck:
    return PostgresCheck.model_validate({"type": "postgres", "timeout_s": 1.5, **fields})


def test_primary_passes_as_primary(pg_primary: PostgresServer) -> None:
    result = probe(pg(expect_role="primary"), pg_primary.endpoint)
    assert result.ok
    assert result.reason == f"primary at {pg_primary.endpoint}"


def test_standby_in_recovery_fails_when_primary_expected(pg_standby: PostgresServer) -> None:
    result = probe(pg(expect_role="primary"), pg_standby.endpoint)
    assert not result.ok
    assert result.reason == f"pg_is_in_recovery()=true, expected primary ({pg_standby.endpoint})"


def test_standby_passes_as_standby_and_any(pg_standby: PostgresServer) -> None:
    result = probe(pg(expect_role="standby", max_lag_s=5), pg_standby.endpoint)
    assert result.ok, result.reason
    assert result.reason.startswith(f"standby at {pg_standby.endpoint}, lag ")
    assert probe(pg(), pg_standby.endpoint).ok


def test_primary_fails_when_standby_expected(pg_primary: PostgresServer) -> None:
    result = probe(pg(expect_role="standby"), pg_primary.endpoint)
    assert not result.ok
    assert "pg_is_in_recovery()=false, expected standby" in result.reason


@pytest.fixture
def replay_paused(
    pg_primary: PostgresServer, pg_standby: PostgresServer
) -> Iterator[PostgresServer]:
    """The standby has replayed one transaction, then stops replaying (it still receives)."""
    pg_primary.sql("CREATE TABLE IF NOT EXISTS beat (at timestamptz)")
    pg_primary.sql("INSERT INTO beat VALUES (now())")
    wait_until(
        lambda: pg_standby.sql("SELECT count(*) FROM beat") != "0",
        10.0,
        "standby replayed the first beat",
        retry_on=(ProcessError,),
    )  # no table yet
    pg_standby.sql("SELECT pg_wal_replay_pause()")
    yield pg_standby
    pg_standby.sql("SELECT pg_wal_replay_resume()")


def test_replication_lag_over_the_bound_fails(
    pg_primary: PostgresServer, replay_paused: PostgresServer
) -> None:
    def lagging() -> bool:
        pg_primary.sql("INSERT INTO beat VALUES (now())")
        return not probe(pg(expect_role="standby", max_lag_s=0.5), replay_paused.endpoint).ok

    wait_until(lagging, 10.0, "standby lag over 0.5 s", interval_s=0.2)
    result = probe(pg(expect_role="standby", max_lag_s=0.5), replay_paused.endpoint)
    assert result.reason.startswith("replication lag ")
    assert result.reason.endswith(f"> 0.5 s ({replay_paused.endpoint})")


def test_unknown_database_fails_with_the_server_message(pg_primary: PostgresServer) -> None:
    result = probe(pg(database="nosuchdb"), pg_primary.endpoint)
    assert not result.ok
    assert result.reason == (
        f'PostgreSQL at {pg_primary.endpoint}: database "nosuchdb" does not exist'
    )


def test_refused() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = probe(pg(), endpoint)
    assert not result.ok
    assert result.reason == f"connection refused by {endpoint}"
