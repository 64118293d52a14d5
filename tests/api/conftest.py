"""Fixtures: one real cluster for the API tests (see tests/operator/cluster.py), and a client
that signs requests with the Escher scheme as an operator's tool would."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.api.auth import signed_headers
from failover.testing.servers.process import wait_until
from tests.operator.cluster import KEY_ID, KEY_SECRET, SCOPE, SETTLING, Cluster, start_cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(Path(tmp_path_factory.mktemp("api-cluster")))
    yield running
    running.stop()


@pytest.fixture
def steady(cluster: Cluster) -> Cluster:
    cluster.wait_steady("dc1")
    wait_until(cluster.every_vote_up, 10.0, "every observer site votes up", retry_on=SETTLING)
    return cluster


def sign(
    cluster: Cluster,
    instance: str,
    path: str,
    body: dict[str, Any] | str,
    *,
    key_id: str = KEY_ID,
    secret: str = KEY_SECRET,
    at: float | None = None,
    for_instance: str | None = None,
    totp: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    text = body if isinstance(body, str) else json.dumps(body)
    address = cluster.api[for_instance or instance]
    return text.encode(), signed_headers(
        "POST", address, path, text, key_id, secret, SCOPE, at=at, totp=totp
    )


def send(
    cluster: Cluster,
    instance: str,
    path: str,
    data: bytes,
    headers: dict[str, str],
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, Any]]:
    """POST from a loopback `source` address (each attacker of a test uses its own)."""
    host, port = cluster.api[instance].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        connection.request(
            "POST", path, body=data, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def post(
    cluster: Cluster,
    instance: str,
    path: str,
    body: dict[str, Any] | str,
    source: str = "127.0.0.1",
    **options: Any,
) -> tuple[int, dict[str, Any]]:
    """Sign (unless told otherwise) and send one write request."""
    data, headers = sign(cluster, instance, path, body, **options)
    return send(cluster, instance, path, data, headers, source)


def notes(cluster: Cluster) -> list[str]:
    """The sentences of every API note in the audit trail."""
    return [
        entry.payload["decision"]["sentence"]
        for entry in cluster.operator_audit()
        if entry.payload.get("decision", {}).get("code") == "noted"
    ]


def wait_noted(cluster: Cluster, *fragments: str, timeout_s: float = 10.0) -> list[str]:
    """Until an audit note contains every fragment; returns the matching notes."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [n for n in notes(cluster) if all(f in n for f in fragments)]
        return bool(found)

    wait_until(seen, timeout_s, f"an audit note with {fragments}", retry_on=SETTLING)
    return found


def refusal_rows(cluster: Cluster) -> list[dict[str, Any]]:
    """Every row of every recorded summary of refused requests."""
    client = cluster.operator()
    try:
        return [row for summary in client.refusals() for row in summary["rows"]]
    finally:
        client.close()


def wait_refused(
    cluster: Cluster, source: str, key_id: str, reason: str, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Until a refusal summary counts a request from `source` claiming `key_id` for `reason`
    (a prefix of the recorded reason code)."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [
            row
            for row in refusal_rows(cluster)
            if row["source"] == source
            and row["key_id"] == key_id
            and row["reason"].startswith(reason)
        ]
        return bool(found)

    wait_until(seen, timeout_s, f"a refusal from {source} ({key_id}): {reason}")
    return found


def now() -> float:
    return time.time()
