"""Fixtures for the end-to-end tests: the whole stack in the lab, built once per module.

Real everything: namespaces, BIRD, BIND, a ZooKeeper ensemble over three sites, nginx,
HAProxy, PostgreSQL, SMTP, nftables and three supervised daemons. Before each test the stack
is reset (every part running, no cuts, not frozen, every group steady on dc1); when a test
fails, the tails of every daemon's and server's log are added to its report.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from failover.lab.stack import Stack
from failover.steer.netns import netns_socket
from failover.testing.lab import unavailable

# More switches than the example allows in an hour, and no cooldown: the tests switch often.
E2E_OVERRIDES: dict[str, Any] = {"policy": {"cooldown_s": 0, "max_switches_per_hour": 100}}


def running(stack: Stack) -> Iterator[Stack]:
    """The stack up for the fixture's scope, then down; its logs printed if it cannot start."""
    try:
        stack.up()
    except BaseException:
        print(stack.log_tails())
        stack.down()
        raise
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def stack_module() -> Iterator[Stack]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    stack = Stack(E2E_OVERRIDES)
    yield from running(stack)


@pytest.fixture
def stack(stack_module: Stack) -> Stack:
    """The module's stack, every group steady on dc1 with everything running."""
    stack_module.reset("dc1")
    return stack_module


def watch(
    stack: Stack, seconds: float, until: Callable[[], bool] | None = None, interval_s: float = 0.1
) -> list[tuple[float, tuple[str, str] | None, str | None]]:
    """Sample (time, isp best route, DNS site) for `seconds`, or until `until()` holds."""
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, stack.route(), stack.dns_site()))
        if until is not None and until():
            break
        time.sleep(interval_s)
    return samples


def epochs(stack: Stack) -> dict[str, int]:
    found = {}
    for group in stack.config.groups:
        state = stack.desired(group)
        assert state is not None, f"{group} has no desired state"
        found[group] = state.epoch
    return found


def audit_codes(stack: Stack) -> list[tuple[str, str]]:
    """(group, code) of every decision in the audit trail, oldest first."""
    entries = stack.operator(lambda c: c.audit())
    return [
        (
            e.payload.get("decision", {}).get("group", ""),
            e.payload.get("decision", {}).get("code", ""),
        )
        for e in entries
    ]


def post_in_client(
    stack: Stack, instance: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST to a daemon's API from inside the client namespace."""
    host, _, port = stack.config.instances[instance].api.rpartition(":")
    sock = netns_socket("fo-client", socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    sock.connect((host, int(port)))
    connection = http.client.HTTPConnection(host, int(port), timeout=10.0)
    connection.sock = sock
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()
