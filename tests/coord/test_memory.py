"""The in-memory coordinator's faults on a manual clock: quorum, pauses, cuts, determinism."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from failover.coord import (
    NO_NODE,
    CoordinatorUnavailable,
    MemoryCoordinator,
    MemoryStore,
    NotLeader,
)
from failover.core.agent import lease_ends_at
from failover.core.model import GroupState
from tests.coord.harness import ManualClock, held

World = tuple[ManualClock, MemoryStore, list[MemoryCoordinator]]


def world(*names: str, timeout_s: float = 1.0) -> World:
    clock = ManualClock()
    store = MemoryStore(clock)
    return clock, store, [MemoryCoordinator(store, n, session_timeout_s=timeout_s) for n in names]


def run(clock: ManualClock, store: MemoryStore, seconds: float, step_s: float = 0.1) -> None:
    for _ in range(round(seconds / step_s)):
        clock.advance(step_s)
        store.tick()


def test_without_quorum_every_call_fails_and_no_session_expires() -> None:
    clock, store, (a, b) = world("a", "b")
    leader = a.campaign()
    assert leader is not None
    b.campaign()
    store.lose_quorum()
    assert a.session_state() == b.session_state() == "suspended"
    assert a.leadership() is None  # suspended: the leader stops acting
    since = a.disconnected_since()
    with pytest.raises(CoordinatorUnavailable, match="no quorum"):
        a.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
    with pytest.raises(CoordinatorUnavailable):
        b.members()
    run(clock, store, 5.0)
    assert held(since, clock(), 10.0) == "primary"
    store.restore_quorum()
    assert a.session_state() == "connected" and a.disconnected_since() is None
    assert a.leadership() == leader  # same session: same leadership, same term
    assert a.write_desired(leader, GroupState("web", "dc1"), NO_NODE) == 0


def test_paused_leader_expires_and_learns_it_when_resumed() -> None:
    clock, store, (a, b) = world("a", "b")
    old = a.campaign()
    assert old is not None and b.campaign() is None
    a.pause()
    run(clock, store, 1.5)
    new = b.campaign()
    assert new is not None and new.term > old.term
    a.resume()
    with pytest.raises(CoordinatorUnavailable, match="session lost"):
        a.write_desired(old, GroupState("web", "dc1"), NO_NODE)
    assert a.leadership() is None and a.session_state() == "lost"
    store.tick()
    assert a.session_state() == "connected"
    with pytest.raises(NotLeader):
        a.write_desired(old, GroupState("web", "dc1"), NO_NODE)
    assert a.campaign() is None


def test_a_cut_off_agent_keeps_primary_for_its_lease_then_holds_it() -> None:
    clock, store, (agent,) = world("agent")
    agent.cut()
    since = agent.disconnected_since()
    assert since is not None and agent.session_state() == "suspended"
    seen = []
    for _ in range(30):
        seen.append(held(agent.disconnected_since(), clock(), 2.0))
        run(clock, store, 0.1)
    assert seen[:20] == ["primary"] * 20 and set(seen[20:]) == {"held"}
    assert agent.session_state() == "suspended"  # nobody expires it from its side
    assert lease_ends_at(since, 2.0) == since + 2.0
    agent.heal()
    assert agent.session_state() == "lost"  # the service expired it meanwhile
    store.tick()
    assert agent.session_state() == "connected"
    assert held(agent.disconnected_since(), clock(), 2.0) == "primary"


def trace(seed_names: tuple[str, ...]) -> list[str]:
    clock, store, clients = world(*seed_names)
    events: list[str] = []

    def recorder(name: str) -> Callable[[str], None]:
        return lambda topic: events.append(f"{clock():.2f} {name} {topic}")

    for client in clients:
        client.subscribe(recorder(client.instance))
    for round_no in range(6):
        for client in clients:
            try:
                won = client.campaign()
                if won is not None:
                    events.append(f"{clock():.2f} {client.instance} leads {won.term}")
                    client.members()
            except CoordinatorUnavailable as exc:
                events.append(f"{clock():.2f} {client.instance} {exc}")
        clients[round_no % len(clients)].pause()
        run(clock, store, 1.5)
        clients[round_no % len(clients)].resume()
    return events


def test_same_calls_give_the_same_trace() -> None:
    first, second = trace(("a", "b", "c")), trace(("a", "b", "c"))
    assert first == second and len(first) > 10
