"""Faults against a real ensemble: contender processes killed, paused; ZooKeeper servers lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover.coord import Leadership
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.core.model import Command
from failover.testing.contender import Contender
from failover.testing.servers.zookeeper import ZooKeeperEnsemble
from tests.coord.harness import DAEMON, OPERATOR, SESSION_S, held, wait_real

pytestmark = pytest.mark.zookeeper


class Contenders:
    """Contender processes under one chroot; stopped (by PID) at teardown."""

    def __init__(self, workdir: Path, hosts: str) -> None:
        self.workdir = workdir
        self.hosts = hosts
        self.chroot = f"/t-{uuid.uuid4().hex[:12]}"
        self.contenders: list[Contender] = []
        self.clients: list[ZooKeeperCoordinator] = []
        for identity, name in ((DAEMON, "daemon"), (OPERATOR, "operator")):
            (workdir / f"{name}.digest").write_text(f"{identity.user}:{identity.password}\n")

    def start(self, *names: str, options: tuple[str, ...] = ()) -> list[Contender]:
        started = []
        for name in names:
            contender = Contender(
                self.workdir,
                name,
                self.hosts,
                "--chroot",
                self.chroot,
                "--cluster",
                "shop",
                "--session-timeout-s",
                str(SESSION_S),
                "--daemon-auth",
                str(self.workdir / "daemon.digest"),
                "--operator-auth",
                str(self.workdir / "operator.digest"),
                *options,
            )
            self.contenders.append(contender.start())
            started.append(contender)
        return started

    def client(self, instance: str, role: Any = "daemon") -> ZooKeeperCoordinator:
        client = ZooKeeperCoordinator(
            self.hosts,
            cluster="shop",
            instance=instance,
            role=role,
            chroot=self.chroot,
            session_timeout_s=SESSION_S,
            daemon=DAEMON,
            operator=OPERATOR,
            op_timeout_s=2.0,
        )
        self.clients.append(client)
        return client.connect(timeout_s=10.0)

    def leader(self, timeout_s: float = 15.0, among: list[Contender] | None = None) -> Contender:
        pool = among if among is not None else self.contenders
        wait_real(lambda: any(c.leading() for c in pool), timeout_s, "a contender leads")
        return next(c for c in pool if c.leading())

    def stop(self) -> None:
        for contender in self.contenders:
            contender.stop()
        for client in self.clients:
            client.close()


@pytest.fixture
def contenders(zk_ensemble: Any, tmp_path: Path) -> Iterator[Contenders]:
    group = Contenders(tmp_path, zk_ensemble.connect_string)
    yield group
    group.stop()


@pytest.fixture
def contenders_on_fresh(fresh_ensemble: ZooKeeperEnsemble, tmp_path: Path) -> Iterator[Contenders]:
    group = Contenders(tmp_path, fresh_ensemble.connect_string)
    yield group
    group.stop()


def last(contender: Contender, kind: str) -> dict[str, Any]:
    return contender.events(kind)[-1]


def test_leader_killed_another_leads_within_session_timeout(contenders: Contenders) -> None:
    contenders.start("a", "b", "c")
    old = contenders.leader()
    old_term = last(old, "lead")["term"]
    killed_at = time.monotonic()
    old.process.kill()
    others = [c for c in contenders.contenders if c is not old]
    new = contenders.leader(timeout_s=SESSION_S + 5.0, among=others)
    took_s = last(new, "lead")["t"] - killed_at
    assert took_s <= SESSION_S + 1.0, f"takeover took {took_s:.2f} s"
    assert last(new, "lead")["term"] > old_term


def test_paused_leader_is_fenced_and_knows_it(contenders: Contenders) -> None:
    contenders.start("a", "b", "c", options=("--write-every-s", "0.1", "--stale"))
    old = contenders.leader()
    old_term = last(old, "lead")["term"]
    wait_real(lambda: bool(old.events("write")), 5.0, "the leader writes")
    old.process.pause()
    others = [c for c in contenders.contenders if c is not old]
    new = contenders.leader(timeout_s=SESSION_S + 5.0, among=others)
    new_term = last(new, "lead")["term"]
    wait_real(
        lambda: any(e["term"] == new_term for e in new.events("write")),
        5.0,
        "the new leader writes",
    )
    time.sleep(0.3)
    seen = len(old.events())
    old.process.resume()
    wait_real(
        lambda: (
            bool(old.events()[seen:]) and any(e["event"] == "refused" for e in old.events()[seen:])
        ),
        5.0,
        "the old leader's write",
    )
    wait_real(
        lambda: any(e["event"] == "deposed" for e in old.events()[seen:]),
        5.0,
        "the old leader learns it was deposed",
    )
    after = old.events()[seen:]
    assert not [e for e in after if e["event"] == "write"], after
    assert all(e["term"] == old_term for e in after if e["event"] == "refused")
    reader = contenders.client("reader")
    state, _ = reader.desired("web")
    assert state is not None and state.reason == f"term {new_term}"


def test_zookeeper_server_faults(
    contenders_on_fresh: Contenders, fresh_ensemble: ZooKeeperEnsemble
) -> None:
    group, ensemble = contenders_on_fresh, fresh_ensemble
    group.start("a", "b", "c", options=("--write-every-s", "0.1"))
    agent = group.client("agent-dc1")
    leader = group.leader()
    term = last(leader, "lead")["term"]

    # One of three servers (the ZooKeeper leader, the worst one) killed: nothing changes.
    zk_leader = ensemble.leader_index()
    assert zk_leader is not None
    killed_at = time.monotonic()
    ensemble.kill(zk_leader)
    time.sleep(SESSION_S + 1.0)
    # Its connection may drop for a moment (the leader then pauses acting), but its session,
    # its term and its leadership stay.
    assert leader.leading()
    assert {e["term"] for e in leader.events("lead")} == {term}
    assert all(c.events("lead") == [] for c in group.contenders if c is not leader)
    wait_real(lambda: last(leader, "write")["t"] > killed_at + 2.0, 3.0, "writes go on")
    ensemble.restart(zk_leader)

    # Two of three killed: no quorum. No write succeeds, the leader stops acting, the agent
    # holds its site's steering (within its lease).
    survivor = (zk_leader + 1) % 3
    lost_at = time.monotonic()
    for index in range(3):
        if index != survivor:
            ensemble.kill(index)
    wait_real(lambda: agent.session_state() != "connected", 3.0 * SESSION_S, "agent suspended")
    wait_real(
        lambda: bool([e for e in leader.events("deposed") if e["t"] > lost_at]),
        3.0 * SESSION_S,
        "the leader stops acting",
    )
    time.sleep(1.0)
    assert [e for e in leader.events("write") if e["t"] > lost_at + 0.2] == []
    since = agent.disconnected_since()
    assert since is not None
    assert held(since, time.monotonic(), 10.0) == "primary"
    assert held(since, since + 10.0, 10.0) == "held"

    # Quorum back: everything recovers by itself.
    restored_at = time.monotonic()
    for index in range(3):
        if index != survivor:
            ensemble.restart(index, wait=False)
    ensemble.wait_ready(timeout_s=30.0)

    def writes_again() -> bool:
        return any(e["t"] > restored_at for c in group.contenders for e in c.events("write"))

    wait_real(writes_again, 20.0, "a leader writes again")
    wait_real(lambda: agent.session_state() == "connected", 10.0, "agent connected")
    wait_real(lambda: set(agent.members()) == {"a", "b", "c"}, 10.0, "every member back")
    current = agent.leader()
    assert isinstance(current, Leadership) and current.term >= term


def test_command_runs_once_when_the_leader_dies_handling_it(contenders: Contenders) -> None:
    contenders.start("a", "b", "c", options=("--commands", "--command-delay-s", "1.5"))
    contenders.leader()
    operator = contenders.client("alice", role="operator")
    _, version_before = operator.desired("web")
    command_id = operator.submit(Command("", "switchover", "alice", "test", "web", "dc2"))
    wait_real(
        lambda: any(c.events("command-start") for c in contenders.contenders),
        SESSION_S + 8.0,
        "the leader starts the command",
    )
    old = next(c for c in contenders.contenders if c.events("command-start"))
    old.process.kill()
    wait_real(
        lambda: operator.command_result(command_id) is not None,
        SESSION_S + 8.0,
        "the command's result",
    )
    result = operator.command_result(command_id)
    assert result is not None and result.leader != old.instance
    assert old.events("command-done") == []
    state, _ = operator.desired("web")
    assert state is not None and state.epoch == 1 and state.active == "dc2"
    assert state.reason == f"switchover {command_id}"
    assert version_before == -1
    records = [e for e in operator.audit() if e.kind == "command"]
    assert [e.payload["id"] for e in records] == [command_id]
    assert operator.pending_commands() == []
