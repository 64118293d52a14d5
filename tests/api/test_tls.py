"""HTTPS for the API, and mutual TLS: the daemon's real API server (`start_api`) of a daemon
whose coordinator is the in-memory one, with certificates from a test CA (trustme)."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from failover.api.auth import signed_headers
from failover.api.server import start_api
from failover.config import load_config
from failover.coord import MemoryCoordinator, MemoryStore
from failover.daemon.runner import Daemon
from failover.testing.servers.process import free_port

SCOPE = "failover/api/escher_request"


class Served:
    """One daemon's API served on a loop in a thread; `stop()` ends it."""

    def __init__(self, config_path: Path) -> None:
        config = load_config(config_path)
        self.address = config.instances["a"].api
        store = MemoryStore(lambda: 0.0)
        self.daemon = Daemon(config, "a", coordinator=MemoryCoordinator(store, "a"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(start_api(self.daemon), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("operator@example")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    return {"ca": ca, "client": client, "dir": tmp_path}


def served(pki: dict[str, Any], mutual: bool) -> Iterator[Served]:
    folder: Path = pki["dir"]
    (folder / "api.keys").write_text("ops:s3cret-s3cret\n")
    tls = {"cert_file": "server.pem", "key_file": "server.key"}
    if mutual:
        tls["client_ca_file"] = "ca.pem"
    document = {
        "cluster": {
            "name": "c",
            "zookeeper": {"hosts": ["127.0.0.1:2181"], "insecure_open_acl": True},
            "api": {"keys_file": "api.keys", "tls": tls},
        },
        "sites": {
            site: {
                "services": {
                    "app": {
                        "kind": "app",
                        "endpoints": [f"127.0.0.1:{n}"],
                        "check": {"type": "tcp"},
                    }
                }
            }
            for site, n in (("dc1", 1), ("dc2", 2))
        },
        "instances": {
            "a": {"site": "dc1", "api": f"127.0.0.1:{free_port()}", "roles": ["observer"]}
        },
        "groups": {
            "web": {
                "services": ["app"],
                "steering": {
                    "method": "bgp",
                    "prefix": "203.0.113.0/24",
                    "sites": {"dc1": {}, "dc2": {}},
                },
            }
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    running = Served(path)
    try:
        yield running
    finally:
        running.stop()


def request(
    running: Served,
    context: ssl.SSLContext | None,
    method: str = "GET",
    path: str = "/health",
    body: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    host, port = running.address.rsplit(":", 1)
    connection = (
        http.client.HTTPSConnection(host, int(port), timeout=5, context=context)
        if context
        else http.client.HTTPConnection(host, int(port), timeout=5)
    )
    try:
        connection.request(method, path, body=body.encode(), headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def client_context(pki: dict[str, Any], with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)
    if with_cert:
        pki["client"].configure_cert(context)
    return context


def test_https_serves_and_signed_writes_work(pki: dict[str, Any]) -> None:
    for running in served(pki, mutual=False):
        assert request(running, client_context(pki, False))[0] == 200
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            request(running, None)  # plain HTTP to a TLS port gets no answer
        body = json.dumps({"reason": "over TLS"})
        headers = signed_headers(
            "POST", running.address, "/freeze", body, "ops", "s3cret-s3cret", SCOPE
        )
        code, answer = request(
            running, client_context(pki, False), "POST", "/freeze", body, headers
        )
        assert code == 202, answer


def test_mutual_tls_refuses_a_client_without_a_certificate(pki: dict[str, Any]) -> None:
    for running in served(pki, mutual=True):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            request(running, client_context(pki, False))
        assert request(running, client_context(pki, True))[0] == 200
