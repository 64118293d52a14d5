"""The error contract: whatever the ensemble does, a coordinator raises only `CoordinatorError`s.

Every public method of `Coordinator` is driven against a real ensemble that is stopped (every
server killed) and one that is partitioned away (every server paused: connections stay open,
nothing answers), both while the client still believes it is connected and after it noticed.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from failover.coord import (
    NO_NODE,
    AuditRecord,
    CommandResult,
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    Leadership,
    Member,
    MemoryCoordinator,
    MemoryStore,
)
from failover.coord.zklayout import Layout
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.core.model import Applied, Command, GroupState, Observation
from failover.testing.servers.zookeeper import ZooKeeperEnsemble
from tests.coord.harness import (
    DAEMON,
    OPERATOR,
    SESSION_S,
    ManualClock,
    ZooKeeperHarness,
    wait_real,
)

OP_TIMEOUT_S = 0.3

Call = tuple[str, Callable[[], object]]


def calls(client: Coordinator, leadership: Leadership) -> list[Call]:
    """One call of every public method, with plausible arguments; `close` comes last."""
    state = GroupState("web", "dc1", epoch=2)
    result = CommandResult("cmd-0000000000", True, "done", "done", 1.0, client.instance, 1)
    record = AuditRecord("note", {"text": "hello"}, 1.0)
    return [
        ("connect", lambda: client.connect(timeout_s=OP_TIMEOUT_S)),
        ("session_state", client.session_state),
        ("disconnected_since", client.disconnected_since),
        ("subscribe", lambda: client.subscribe(lambda topic: None)),
        ("register", lambda: client.register(Member(client.instance, "dc1", "0", (), 1.0))),
        ("members", client.members),
        ("campaign", client.campaign),
        ("leadership", client.leadership),
        ("leader", client.leader),
        (
            "publish",
            lambda: client.publish([Observation(client.instance, "dc1", "web", "up", 1.0, 1.0)]),
        ),
        ("observations", client.observations),
        ("desired", lambda: client.desired("web")),
        (
            "commit",
            lambda: client.commit(
                leadership, desired=[(state, NO_NODE)], results=[result], audit=[record]
            ),
        ),
        ("write_desired", lambda: client.write_desired(leadership, state, 0)),
        ("report_applied", lambda: client.report_applied(Applied("web", "dc1", 2, "primary", 1.0))),
        ("applied", lambda: client.applied("web")),
        ("groups", lambda: client.groups(["web", "mail"])),
        ("submit", lambda: client.submit(Command("", "note", "tester", "hello"))),
        ("pending_commands", client.pending_commands),
        ("command_result", lambda: client.command_result("cmd-0000000000")),
        ("complete_command", lambda: client.complete_command(leadership, result)),
        ("audit", client.audit),
        ("audit_head", client.audit_head),
        (
            "record_refusals",
            lambda: client.record_refusals(
                {"from": 1.0, "to": 2.0, "counts": {"127.0.0.1 bad signature": 3}}
            ),
        ),
        ("refusals", client.refusals),
        ("announce_shadow", lambda: client.announce_shadow("candidate", {"agree": True})),
        ("shadows", client.shadows),
        ("resign", client.resign),
        ("close", client.close),
    ]


def public_methods() -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(Coordinator, inspect.isfunction)
        if not name.startswith("_")
    }


def leaks(client: Coordinator, leadership: Leadership) -> list[str]:
    """Every call whose error is not a `CoordinatorError` (nothing may escape otherwise)."""
    found = []
    for name, call in calls(client, leadership):
        try:
            call()
        except CoordinatorError:
            pass
        except Exception as exc:
            found.append(f"{name}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
    return found


def test_every_public_method_is_driven() -> None:
    """A method added to the interface must be added to `calls` too."""
    client = MemoryCoordinator(MemoryStore(ManualClock()), "a")
    assert {name for name, _ in calls(client, Leadership("a", 1))} == public_methods()


LOCAL = {"session_state", "disconnected_since", "subscribe", "leadership", "close"}
DELEGATING = {"write_desired", "complete_command"}  # the interface's own, built on `commit`


def test_every_zookeeper_method_that_does_io_is_wrapped_at_the_edge() -> None:
    """A kazoo error that only a race can provoke would slip past the fault tests: so every
    method that talks to ZooKeeper must go through `edge`, which translates whatever is left."""
    unwrapped = sorted(
        name
        for name in public_methods() - LOCAL - DELEGATING
        if not hasattr(getattr(ZooKeeperCoordinator, name), "__wrapped__")
    )
    assert unwrapped == []
    assert all(
        getattr(ZooKeeperCoordinator, name) is getattr(Coordinator, name) for name in DELEGATING
    )


def test_memory_raises_only_coordinator_errors_without_quorum_or_cut_off() -> None:
    store = MemoryStore(ManualClock())
    a, b = MemoryCoordinator(store, "a"), MemoryCoordinator(store, "b")
    leadership = Leadership("a", 1)
    a.register(Member("a", "dc1", "0", (), 1.0))
    b.cut()
    assert leaks(b, leadership) == []
    store.lose_quorum()
    assert leaks(a, leadership) == []


def test_memory_connect_is_trivial() -> None:
    store = MemoryStore(ManualClock())
    client = MemoryCoordinator(store, "a")
    assert client.connect() is client
    assert client.session_state() == "connected"


class Clients:
    """A leading daemon and an operator on an ensemble of their own, with some history."""

    def __init__(self, ensemble: ZooKeeperEnsemble) -> None:
        self.ensemble = ensemble
        options: dict[str, Any] = {
            "cluster": "shop",
            "chroot": "/errors",
            "session_timeout_s": SESSION_S,
            "daemon": DAEMON,
            "operator": OPERATOR,
            "op_timeout_s": OP_TIMEOUT_S,
        }
        self.daemon = ZooKeeperCoordinator(ensemble.connect_string, instance="a", **options)
        self.operator = ZooKeeperCoordinator(
            ensemble.connect_string, instance="op", role="operator", **options
        )
        for client in (self.daemon, self.operator):
            client.connect(timeout_s=10.0)
        self.daemon.register(Member("a", "dc1", "0", (), 1.0))
        self.leadership = leadership = lead_now(self.daemon)
        self.daemon.write_desired(leadership, GroupState("web", "dc1"), NO_NODE)
        self.operator.submit(Command("", "note", "tester", "before the fault"))

    def close(self) -> None:
        for client in (self.daemon, self.operator):
            client.close()


@pytest.fixture
def clients(fresh_ensemble: ZooKeeperEnsemble) -> Iterator[Clients]:
    made = Clients(fresh_ensemble)
    yield made
    for index in range(fresh_ensemble.size):
        fresh_ensemble.resume(index)
    made.close()


def each_client(clients: Clients) -> list[str]:
    found = []
    for client in (clients.daemon, clients.operator):
        found += [f"{client.instance} {leak}" for leak in leaks(client, clients.leadership)]
    return found


@pytest.mark.zookeeper
def test_a_stopped_ensemble_raises_only_coordinator_errors(clients: Clients) -> None:
    for index in range(clients.ensemble.size):
        clients.ensemble.kill(index)
    assert each_client(clients) == []  # at once: the clients may not have noticed yet
    # A client that never had a session: connect() says so, and so does every call.
    never = ZooKeeperCoordinator(
        clients.ensemble.connect_string,
        cluster="shop",
        instance="b",
        chroot="/errors",
        daemon=DAEMON,
        op_timeout_s=OP_TIMEOUT_S,
    )
    with pytest.raises(CoordinatorUnavailable):
        never.connect(timeout_s=0.5)
    assert leaks(never, clients.leadership) == []


@pytest.mark.zookeeper
@pytest.mark.parametrize("paused", [(0, 1, 2), (0, 1)], ids=["all-paused", "no-quorum"])
def test_a_partitioned_ensemble_raises_only_coordinator_errors(
    clients: Clients, paused: tuple[int, ...]
) -> None:
    """Paused servers keep their connections open and answer nothing; with two of three paused,
    the third has no quorum and serves no one."""
    for index in paused:
        clients.ensemble.pause(index)
    started = time.monotonic()
    # Still "connected" as far as the clients know: the calls go out and time out.
    assert clients.daemon.session_state() == "connected"
    found = leaks(clients.daemon, clients.leadership)
    assert time.monotonic() - started < 30 * OP_TIMEOUT_S + 2.0, "every call is bounded"
    assert found == []
    # Later, with the connection given up as lost and the session (maybe) expired.
    time.sleep(SESSION_S)
    assert leaks(clients.operator, clients.leadership) == []


@pytest.mark.zookeeper
def test_a_bad_name_is_a_coordinator_error(zk_harness: ZooKeeperHarness) -> None:
    """A name ZooKeeper would refuse (or read as another node) is refused before any I/O."""
    client = zk_harness.client("a")
    for call in (
        lambda: client.command_result(""),
        lambda: client.desired("a/b"),
        lambda: client.applied(".."),
        lambda: client.command_result("x\x00"),
    ):
        with pytest.raises(CoordinatorError, match="cannot name a ZooKeeper node"):
            call()


@pytest.mark.zookeeper
def test_malformed_contents_are_a_coordinator_error_naming_the_node(
    zk_harness: ZooKeeperHarness,
) -> None:
    client = zk_harness.client("a")
    leadership = lead_now(client)
    client.write_desired(leadership, GroupState("web", "dc1"), NO_NODE)
    path = Layout(zk_harness.chroot, zk_harness.cluster).state("web")
    zk_harness.raw().set(path, b"{not json")
    with pytest.raises(CoordinatorError, match=f"{path}: malformed contents"):
        client.desired("web")
    zk_harness.raw().set(path, b"[1, 2]")
    with pytest.raises(CoordinatorError, match="malformed contents"):
        client.desired("web")


def lead_now(client: Coordinator) -> Leadership:
    found: list[Leadership] = []

    def won() -> bool:
        leadership = client.campaign()
        if leadership is not None:
            found.append(leadership)
        return leadership is not None

    wait_real(won, 10.0, f"{client.instance} leads")
    return found[-1]


def test_the_leak_detector_sees_a_leak() -> None:
    """`leaks` must fail on a non-CoordinatorError (else the tests above cannot fail)."""

    class Leaky(MemoryCoordinator):
        def members(self) -> dict[str, Member]:
            raise KeyError("raw")

    client = Leaky(MemoryStore(ManualClock()), "a")
    assert leaks(client, Leadership("a", 1)) == ["members: builtins.KeyError: 'raw'"]
