"""One face over both back ends, so that one contract suite runs against each.

`MemoryHarness` drives a `MemoryStore` on a manual clock; `ZooKeeperHarness` makes real
`ZooKeeperCoordinator` clients on a real ensemble, each test under its own chroot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from failover.coord import Coordinator, CoordinatorError, MemoryCoordinator, MemoryStore
from failover.coord.base import Role
from failover.coord.zklayout import Identity, Layout
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.core.agent import announcement
from failover.core.model import GroupState
from failover.testing.servers.process import wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble

DAEMON = Identity("failover-daemon", "test-daemon-secret")
OPERATOR = Identity("failover-operator", "test-operator-secret")  # the shared identity
# Operators' own identities: an operator client named so authenticates as its own
OPERATORS = {name: Identity(name, f"test-{name}-secret") for name in ("alice", "bob")}
SESSION_S = 2.0  # long enough that a loaded 2-core machine never expires one by accident
# What a coordinator's call may raise while a test waits for it to settle (no session yet).
SETTLING = (CoordinatorError, OSError)


class ManualClock:
    """Time that moves only when told to, and never backwards."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds


class MemoryHarness:
    name = "memory"
    session_timeout_s = SESSION_S

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = MemoryStore(self.clock)
        self.clients: list[MemoryCoordinator] = []

    def client(self, instance: str, role: Role = "daemon", **options: Any) -> MemoryCoordinator:
        for name in ("audit_keep", "commands_keep", "refusals_keep"):  # the store's, in memory
            if name in options:
                setattr(self.store, name, options.pop(name))
        client = MemoryCoordinator(
            self.store, instance, role, session_timeout_s=self.session_timeout_s, **options
        )
        self.clients.append(client)
        return client

    def settle(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Advance the manual clock in small steps until `predicate` holds."""
        deadline = self.clock() + timeout_s
        while not _holds(predicate):
            if self.clock() >= deadline:
                raise TimeoutError(f"{what}: not within {timeout_s:g} s (simulated)")
            self.clock.advance(0.05)
            self.store.tick()

    def expire(self, client: Coordinator) -> None:
        assert isinstance(client, MemoryCoordinator)
        self.store.expire(client)

    def wait(self, seconds: float) -> None:
        for _ in range(round(seconds / 0.05)):
            self.clock.advance(0.05)
            self.store.tick()

    def lose_quorum(self) -> None:
        self.store.lose_quorum()

    def restore_quorum(self) -> None:
        self.store.restore_quorum()

    def tamper_audit(self, seq: int, payload: dict[str, Any]) -> None:
        self.store.tamper_audit(seq, payload)

    def submit_raw(self, data: bytes) -> str:
        """A command node with these bytes, as a careless operator tool might write it."""
        client = MemoryCoordinator(self.store, "raw-operator", "operator")
        return client.submit_raw(data)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class ZooKeeperHarness:
    name = "zookeeper"
    session_timeout_s = SESSION_S

    def __init__(
        self, hosts: str, workdir: Path, ensemble: ZooKeeperEnsemble | None = None
    ) -> None:
        self.ensemble = ensemble  # needed only to lose and restore quorum
        self.hosts = hosts
        self.workdir = workdir
        self.chroot = f"/t-{uuid.uuid4().hex[:12]}"
        self.cluster = "shop"
        self.clients: list[ZooKeeperCoordinator] = []
        self.logs: Callable[[], str] | None = None
        self._raw: list[KazooClient] = []

    def client(self, instance: str, role: Role = "daemon", **options: Any) -> ZooKeeperCoordinator:
        client = ZooKeeperCoordinator(
            self.hosts,
            cluster=self.cluster,
            instance=instance,
            role=role,
            chroot=self.chroot,
            session_timeout_s=self.session_timeout_s,
            daemon=DAEMON,
            operator=OPERATORS.get(instance, OPERATOR) if role == "operator" else OPERATOR,
            operators={name: identity.acl_id for name, identity in OPERATORS.items()},
            op_timeout_s=2.0,
            **options,
        )
        self.clients.append(client)
        client.connect(timeout_s=10.0)
        return client

    def settle(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        wait_until(predicate, timeout_s + 2.0, what, interval_s=0.02, retry_on=SETTLING)

    def expire(self, client: Coordinator) -> None:
        """Expire the session from outside: a second client joins it and closes it."""
        assert isinstance(client, ZooKeeperCoordinator)
        client_id = client.client_id
        assert client_id is not None, "not connected"
        twin = KazooClient(self.hosts, client_id=client_id, timeout=self.session_timeout_s)
        twin.start(timeout=10.0)
        twin.stop()
        twin.close()

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def lose_quorum(self) -> None:
        """Kill two of the three servers."""
        assert self.ensemble is not None
        for index in (0, 1):
            self.ensemble.kill(index)

    def restore_quorum(self) -> None:
        assert self.ensemble is not None
        for index in (0, 1):
            self.ensemble.restart(index, wait=False)
        self.ensemble.wait_ready(timeout_s=30.0)

    def raw(self, identity: Identity | None = DAEMON) -> KazooClient:
        """A plain kazoo client (with the daemon identity unless None): for tampering tests."""
        auth = [identity.auth] if identity else None
        client = KazooClient(self.hosts, timeout=5.0, auth_data=auth)
        client.start(timeout=10.0)
        self._raw.append(client)
        return client

    def tamper_audit(self, seq: int, payload: dict[str, Any]) -> None:
        import json

        raw = self.raw()
        path = Layout(self.chroot, self.cluster).audit_entry(seq)
        data, _ = raw.get(path)
        entry = json.loads(data)
        entry["payload"] = payload
        raw.set(path, json.dumps(entry).encode())

    def submit_raw(self, data: bytes) -> str:
        """A command node with these bytes, written with the shared operator identity."""
        raw = self.raw(OPERATOR)
        folder = Layout(self.chroot, self.cluster).request_dir(OPERATOR.user)
        path = raw.create(f"{folder}/cmd-", data, sequence=True)
        return f"{OPERATOR.user}.{str(path).rsplit('/', 1)[1]}"

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for raw in self._raw:
            raw.stop()
            raw.close()


def _holds(predicate: Callable[[], bool]) -> bool:
    try:
        return bool(predicate())
    except SETTLING:
        return False


def wait_real(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Wait in real time; returns the seconds it took."""
    started = time.monotonic()
    wait_until(predicate, timeout_s, what, interval_s=0.02, retry_on=SETTLING)
    return time.monotonic() - started


def held(since: float | None, now: float, lease_s: float) -> str:
    """What a primary whose session went away at `since` announces now (core.agent's rule:
    connected, it confirms now; else its last confirmation was when the session went)."""
    primary = GroupState("web", "dc1")
    return announcement(
        primary,
        "dc1",
        backup=True,
        in_effect="primary",
        confirmed_at=now if since is None else since,
        now=now,
        lease_s=lease_s,
    )[0]
