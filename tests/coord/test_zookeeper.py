"""ZooKeeper specifics: ACLs as the server enforces them, the server-side fence, the launcher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from failover.config.load import load_config
from failover.coord import (
    NO_NODE,
    AuditRecord,
    CoordinatorError,
    NotAuthorized,
    NotLeader,
    UntrustedNode,
)
from failover.coord.zklayout import Layout
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.core.model import Applied, Command, GroupState, Observation
from failover.testing.servers.zookeeper import ZooKeeperEnsemble
from tests.coord.harness import DAEMON, OPERATOR, SESSION_S, ZooKeeperHarness, wait_real
from tests.coord.test_contract import lead, member

pytestmark = pytest.mark.zookeeper
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"


def populate(harness: ZooKeeperHarness) -> ZooKeeperCoordinator:
    """Every kind of node: member, election, term, observations, state, applied, commands..."""
    daemon = harness.client("a")
    daemon.register(member("a"))
    leader = lead(harness, daemon)
    daemon.publish([Observation("a", "dc1", "dc1/app/x:1", "up", 1.0, 1.0)])
    daemon.report_applied(Applied("web", "dc1", 1, "primary", 1.0))
    command_id = harness.client("alice", role="operator").submit(Command("", "freeze", "alice"))
    from failover.coord import CommandResult

    daemon.commit(
        leader,
        desired=[(GroupState("web", "dc1"), NO_NODE)],
        results=[CommandResult(command_id, True, "frozen", "", 1.0, "a", leader.term)],
        audit=[AuditRecord("command", {"id": command_id}, 1.0)],
    )
    return daemon


def walk(client: KazooClient, path: str) -> list[str]:
    found = [path]
    for child in client.get_children(path):
        found += walk(client, f"{path}/{child}")
    return found


def test_anonymous_client_gets_no_auth_on_every_node(zk_harness: ZooKeeperHarness) -> None:
    populate(zk_harness)
    base = Layout(zk_harness.chroot, zk_harness.cluster).base
    nodes = [zk_harness.chroot, *walk(zk_harness.raw(), base)]
    assert len(nodes) >= 20, nodes
    anonymous = zk_harness.raw(identity=None)
    for path in nodes:
        with pytest.raises(NoAuthError):
            anonymous.get(path)
        with pytest.raises(NoAuthError):
            anonymous.get_children(path)
        with pytest.raises(NoAuthError):
            anonymous.set(path, b"x")
        with pytest.raises(NoAuthError):
            anonymous.create(f"{path}/intruder", b"")


def test_operator_may_submit_commands_but_not_write_desired_state(
    zk_harness: ZooKeeperHarness,
) -> None:
    populate(zk_harness)
    layout = Layout(zk_harness.chroot, zk_harness.cluster)
    operator = zk_harness.raw(identity=OPERATOR)
    assert operator.get(layout.state("web"))[0]
    created = operator.create(
        f"{layout.request_dir(OPERATOR.user)}/cmd-",
        b"{}",
        sequence=True,
        acl=zk_harness.clients[0].acls.node,
    )
    assert created.startswith(layout.dir("requests"))
    refused: list[Callable[[], object]] = [
        lambda: operator.create(layout.command("cmd-"), b"{}", sequence=True),  # daemons' queue
        lambda: operator.create(f"{layout.request_dir('alice')}/cmd-", b"{}", sequence=True),
        lambda: operator.create(layout.request_dir("mallory"), b""),
        lambda: operator.set(layout.state("web"), b"{}"),
        lambda: operator.create(layout.state("mail"), b"{}"),
        lambda: operator.create(layout.result("cmd-0000000099"), b"{}"),
        lambda: operator.set(layout.term, b"99"),
        lambda: operator.delete(created),
    ]
    for attempt in refused:
        with pytest.raises(NoAuthError):
            attempt()


def test_wrong_password_is_not_authorized(zk_harness: ZooKeeperHarness) -> None:
    populate(zk_harness)
    from failover.coord.zklayout import Identity

    intruder = ZooKeeperCoordinator(
        zk_harness.hosts,
        cluster=zk_harness.cluster,
        instance="x",
        role="operator",
        chroot=zk_harness.chroot,
        session_timeout_s=SESSION_S,
        daemon=DAEMON,
        operator=Identity(OPERATOR.user, "guessed"),
        op_timeout_s=2.0,
    )
    zk_harness.clients.append(intruder)
    intruder.connect(timeout_s=10.0)
    with pytest.raises(NotAuthorized):
        intruder.desired("web")


def test_the_server_refuses_a_stale_leaders_commit(zk_harness: ZooKeeperHarness) -> None:
    """The fence holds even when the client still believes it leads (a paused process)."""
    a, b = zk_harness.client("a"), zk_harness.client("b")
    old = lead(zk_harness, a)
    version = a.write_desired(old, GroupState("web", "dc1"), NO_NODE)
    stale_node = a._contender
    b.campaign()
    zk_harness.expire(a)
    new = lead(zk_harness, b)
    wait_real(
        lambda: a.session_state() == "connected" and a.leadership() is None,
        5.0,
        "a back with a new session",
    )
    a._leadership, a._contender = old, stale_node  # what a paused process still believes
    with pytest.raises(NotLeader):
        a.write_desired(old, GroupState("web", "dc2", epoch=2), version)
    with pytest.raises(NotLeader):
        a.commit(old, audit=[AuditRecord("decision", {"stale": True}, 1.0)])
    assert b.desired("web") == (GroupState("web", "dc1"), version)
    assert b.audit() == []
    assert new.term > old.term


def test_leader_learns_at_once_when_its_node_is_deleted(zk_harness: ZooKeeperHarness) -> None:
    a = zk_harness.client("a")
    wakes: list[str] = []
    a.subscribe(wakes.append)
    lead(zk_harness, a)
    node = a._contender
    assert node is not None
    zk_harness.raw().delete(node)
    wait_real(lambda: a.leadership() is None and "leadership" in wakes, 2.0, "a deposed")


def test_built_from_the_config(zk_harness: ZooKeeperHarness) -> None:
    config = load_config(EXAMPLE)
    zk = config.cluster.zookeeper.model_copy(
        update={
            "hosts": zk_harness.hosts.split(","),
            "chroot": zk_harness.chroot,
            "session_timeout_s": SESSION_S,
        }
    )
    config = config.model_copy(
        update={"cluster": config.cluster.model_copy(update={"zookeeper": zk})}
    )
    daemon = ZooKeeperCoordinator.from_config(config, "dc1-a")
    operator = ZooKeeperCoordinator.from_config(config, "alice", role="operator")
    zk_harness.clients += [daemon, operator]
    daemon.connect(timeout_s=10.0)
    operator.connect(timeout_s=10.0)
    leader = lead(zk_harness, daemon)
    daemon.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
    assert operator.desired("web")[0] == GroupState("web", "dc1")
    anonymous = zk_harness.raw(identity=None)
    with pytest.raises(NoAuthError):
        anonymous.get(Layout(zk_harness.chroot, config.cluster.name).state("web"))


def test_unreadable_credentials_are_named(tmp_path: Path) -> None:
    from failover.coord.zklayout import read_identity

    with pytest.raises(CoordinatorError, match=r"daemon credentials .*missing"):
        read_identity(tmp_path / "missing", "daemon")
    bad = tmp_path / "bad"
    bad.write_text("no-colon-here\n")
    with pytest.raises(CoordinatorError, match="expected one line `user:password`"):
        read_identity(bad, "operator")


def test_a_daemon_started_before_zookeeper_fails_fast_then_catches_up(tmp_path: Path) -> None:
    from failover.testing.servers.process import free_port

    port = free_port()
    client = ZooKeeperCoordinator(
        f"127.0.0.1:{port}",
        cluster="shop",
        instance="a",
        session_timeout_s=SESSION_S,
        daemon=DAEMON,
        operator=OPERATOR,
    )
    ensemble = ZooKeeperEnsemble(tmp_path / "zk", size=1, client_port=port)
    try:
        with pytest.raises(CoordinatorError, match="no ZooKeeper session"):
            client.connect(timeout_s=0.5)
        assert client.session_state() == "lost"
        with pytest.raises(CoordinatorError, match="session lost"):
            client.members()
        ensemble.start()
        wait_real(lambda: client.session_state() == "connected", 10.0, "the session")
        leader = client.campaign()  # the layout is made at the first write
        assert leader is not None and leader.term == 1
        client.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
    finally:
        client.close()
        ensemble.stop()


def test_standalone_launcher_restart_keeps_data(tmp_path: Path) -> None:
    ensemble = ZooKeeperEnsemble(tmp_path / "zk", size=1, tick_ms=200)
    with ensemble:
        assert ensemble.mode(0) == "standalone"
        raw = KazooClient(ensemble.connect_string, timeout=2.0)
        raw.start(timeout=10.0)
        try:
            raw.create("/kept", b"yes")
        finally:
            raw.stop()
            raw.close()
        ensemble.pause(0)
        assert ensemble.mode(0, timeout_s=0.3) is None
        ensemble.resume(0)
        ensemble.kill(0)
        assert not ensemble.alive(0)
        ensemble.restart(0)
        raw = KazooClient(ensemble.connect_string, timeout=2.0)
        raw.start(timeout=10.0)
        try:
            assert raw.get("/kept")[0] == b"yes"
        finally:
            raw.stop()
            raw.close()
        assert "zookeeper node 1" in ensemble.logs()
    assert not ensemble.alive(0)


def test_testcontainers_back_end(request: Any) -> None:
    """The official image through testcontainers, where a Docker engine exists."""
    from tests.coord.conftest import ContainerEnsemble

    container = ContainerEnsemble()  # skips here, with the reason, when there is no engine
    try:
        harness = ZooKeeperHarness(container.connect_string, Path("."))
        a = harness.client("a")
        assert lead(harness, a).instance == "a"
        harness.close()
    finally:
        container.stop()


def test_tls_to_zookeeper(tmp_path: Path) -> None:
    from failover.testing.servers.zookeeper import make_test_tls

    tls = make_test_tls(tmp_path / "tls", ["127.0.0.1"])
    ensemble = ZooKeeperEnsemble(tmp_path / "zk", size=1, tls=tls)
    with ensemble:
        config = load_config(EXAMPLE)
        zk = config.cluster.zookeeper.model_copy(
            update={
                "hosts": ensemble.secure_hosts,
                "chroot": "/tls",
                "session_timeout_s": SESSION_S,
                "tls": config.cluster.zookeeper.tls.model_copy(
                    update={"enabled": True, "ca_file": str(tls.ca_pem)}
                ),
            }
        )
        config = config.model_copy(
            update={"cluster": config.cluster.model_copy(update={"zookeeper": zk})}
        )
        daemon = ZooKeeperCoordinator.from_config(config, "dc1-a")
        try:
            daemon.connect(timeout_s=10.0)
            leader = daemon.campaign()
            assert leader is not None
            daemon.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
            assert daemon.desired("web") == (GroupState("web", "dc1"), 0)
        finally:
            daemon.close()
        untrusting = ZooKeeperCoordinator(
            ensemble.secure_hosts,
            cluster="shop",
            instance="x",
            session_timeout_s=SESSION_S,
            tls={"use_ssl": True, "ca": str(tmp_path / "tls" / "server.crt")},
        )
        try:
            with pytest.raises(CoordinatorError, match="no ZooKeeper session"):
                untrusting.connect(timeout_s=1.0)
        finally:
            untrusting.close()


def test_launcher_runs_a_node_inside_a_network_namespace(tmp_path: Path) -> None:
    import os
    import subprocess

    netns = f"fo-zk-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, timeout=10)
        ensemble = ZooKeeperEnsemble(tmp_path / "zk", size=1, netns=[netns])
        with ensemble:
            assert ensemble.mode(0) == "standalone"  # asked inside the namespace
            assert ensemble.nodes[0].netns == netns
            from failover.testing.servers.zookeeper import _four_letter

            node = ensemble.nodes[0]
            assert _four_letter(node.host, node.client_port, "srvr", 0.5) == ""  # not out here
        assert not ensemble.alive(0)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, timeout=10)


def test_an_operator_before_any_daemon_gets_a_clear_error(zk_harness: ZooKeeperHarness) -> None:
    operator = zk_harness.client("alice", role="operator")
    with pytest.raises(CoordinatorError, match="no daemon has run against this ensemble yet"):
        operator.submit(Command("", "freeze", "alice"))


def test_a_node_someone_else_created_first_is_not_trusted(zk_harness: ZooKeeperHarness) -> None:
    """Finding 9: whoever created the layout before the first daemon owned the tree."""
    squatter = zk_harness.raw(identity=None)
    base = Layout(zk_harness.chroot, zk_harness.cluster)
    squatter.create(base.dir("commands"), b"", makepath=True)  # open ACL: anyone may write
    with pytest.raises(UntrustedNode, match="shop exists with ACL \\[world:anyone=31\\]"):
        zk_harness.client("a")
    squatter.delete(base.dir("commands"))
    squatter.delete(base.base)
    a = zk_harness.client("b")  # the layout is made with this cluster's ACLs
    assert a.session_state() == "connected"
    zk_harness.client("c")  # and trusted on the next start


def test_adding_an_operator_updates_the_acls_of_an_existing_tree(
    zk_harness: ZooKeeperHarness,
) -> None:
    """Per-operator identities: each has its own folder, the others may only read it; a
    daemon started with one more operator brings every ACL up to date (not 'untrusted')."""
    from failover.coord.zklayout import Identity

    alice, bob = (Identity(n, f"{n}-Vx3kQ9rT2mW8zL5pN7bY") for n in ("alice", "bob"))

    def daemon(instance: str, *operators: Identity) -> ZooKeeperCoordinator:
        client = ZooKeeperCoordinator(
            zk_harness.hosts,
            cluster=zk_harness.cluster,
            instance=instance,
            chroot=zk_harness.chroot,
            session_timeout_s=SESSION_S,
            daemon=DAEMON,
            operator=OPERATOR,
            operators={o.user: o.acl_id for o in operators},
        )
        zk_harness.clients.append(client)
        return client.connect(timeout_s=10.0)

    daemon("a", alice)
    layout = Layout(zk_harness.chroot, zk_harness.cluster)
    assert sorted(zk_harness.raw().get_children(layout.dir("requests"))) == ["alice", OPERATOR.user]
    daemon("b", alice, bob)
    raw = zk_harness.raw()
    assert sorted(raw.get_children(layout.dir("requests"))) == ["alice", "bob", OPERATOR.user]
    acl, _ = raw.get_acls(layout.request_dir("alice"))
    rights = {str(entry.id.id): int(entry.perms) for entry in acl}
    assert rights == {DAEMON.acl_id: 31, alice.acl_id: 5, bob.acl_id: 1, OPERATOR.acl_id: 1}
    as_bob = zk_harness.raw(identity=bob)
    assert as_bob.get_children(layout.dir("state")) == []  # operators read
    with pytest.raises(NoAuthError):
        as_bob.create(f"{layout.request_dir('alice')}/cmd-", b"{}", sequence=True)
    assert as_bob.create(f"{layout.request_dir('bob')}/cmd-", b"{}", sequence=True)


def test_a_silent_server_in_the_list_does_not_cost_the_session(
    fresh_ensemble: ZooKeeperEnsemble,
) -> None:
    """A cut link drops packets silently: kazoo alone waits the whole session timeout for a TCP
    connect to such a server, so a client whose own server leaves the quorum lost its session
    although a reachable server of the quorum came next in its list (the inter-site cut of
    the live game-day). Each connect is bounded: the session moves to the next server."""
    import socket

    leader = fresh_ensemble.leader_index()
    assert leader is not None
    own, *others = [i for i in range(3) if i != leader] + [leader]
    silent: list[socket.socket] = []
    for _ in range(2):  # a listener whose backlog is full drops the SYNs: a silent server
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler = socket.create_connection(listener.getsockname(), timeout=1.0)
        silent += [listener, filler]
    dead = [f"127.0.0.1:{s.getsockname()[1]}" for s in silent[::2]]
    hosts = [fresh_ensemble.hosts[own], *dead, *(fresh_ensemble.hosts[i] for i in others)]
    client = ZooKeeperCoordinator(
        hosts, cluster="shop", instance="a", chroot="/silent", session_timeout_s=4.0
    )
    client._zk.randomize_hosts = False  # the silent servers before the reachable ones
    try:
        client.connect(timeout_s=10.0)
        session = client.session_id
        fresh_ensemble.kill(own)  # its server goes: the session must move on
        wait_real(
            lambda: client.session_state() == "connected" and client.session_id == session,
            8.0,
            "the same session on another server",
        )
    finally:
        client.close()
        for sock in silent:
            sock.close()
