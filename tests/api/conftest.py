"""Fixtures: one real cluster for the API tests (see tests/operator/cluster.py), and a client
that signs requests with the Escher scheme as an operator's tool would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
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


def sign(cluster: Cluster, instance: str, path: str, body: dict[str, Any] | str, *,
         key_id: str = KEY_ID, secret: str = KEY_SECRET, at: float | None = None,
         for_instance: str | None = None) -> tuple[bytes, dict[str, str]]:
    text = body if isinstance(body, str) else json.dumps(body)
    address = cluster.api[for_instance or instance]
    return text.encode(), signed_headers("POST", address, path, text, key_id, secret, SCOPE,
                                         at=at)


def send(cluster: Cluster, instance: str, path: str, data: bytes, headers: dict[str, str]
         ) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(cluster.url(instance, path), data=data, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(cluster: Cluster, instance: str, path: str, body: dict[str, Any] | str, **options: Any
         ) -> tuple[int, dict[str, Any]]:
    """Sign (unless told otherwise) and send one write request."""
    data, headers = sign(cluster, instance, path, body, **options)
    return send(cluster, instance, path, data, headers)


def notes(cluster: Cluster) -> list[str]:
    """The sentences of every API note in the audit trail."""
    return [entry.payload["decision"]["sentence"] for entry in cluster.operator_audit()
            if entry.payload.get("decision", {}).get("code") == "noted"]


def wait_noted(cluster: Cluster, *fragments: str, timeout_s: float = 10.0) -> list[str]:
    """Until an audit note contains every fragment; returns the matching notes."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [n for n in notes(cluster) if all(f in n for f in fragments)]
        return bool(found)

    wait_until(seen, timeout_s, f"an audit note with {fragments}", retry_on=SETTLING)
    return found


def now() -> float:
    return time.time()
