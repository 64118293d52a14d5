"""The `Coordinator` contract, run against both back ends (in memory and a real ensemble)."""

from __future__ import annotations

from typing import Any

import pytest

from failover.coord import (
    NO_NODE,
    AlreadyDone,
    AlreadyUsed,
    AuditRecord,
    CommandResult,
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    DuplicateInstance,
    Leadership,
    Member,
    NotAuthorized,
    NotLeader,
    VersionConflict,
    malformed,
    verify_chain,
)
from failover.core.model import Applied, Command, GroupState, Observation
from failover.testing.servers.process import wait_until


def member(instance: str, site: str = "dc1") -> Member:
    return Member(instance, site, "0.1.0", ("observer", "leader", "agent"), 1700000000.0)


def lead(harness: Any, client: Coordinator) -> Leadership:
    found: list[Leadership] = []

    def won() -> bool:
        result = client.campaign()
        if result is not None:
            found.append(result)
        return result is not None

    harness.settle(won, 5.0, f"{client.instance} leads")
    return found[-1]


def test_members_are_ephemeral(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    a.register(member("a"))
    b.register(member("b", "dc2"))
    a.register(member("a"))  # idempotent
    assert a.members() == {"a": member("a"), "b": member("b", "dc2")}
    b.close()
    harness.settle(lambda: set(a.members()) == {"a"}, 3.0, "b's member node gone")


def test_an_instance_name_is_held_by_one_session(harness: Any) -> None:
    first, second = harness.client("a"), harness.client("a")
    first.register(member("a"))
    with pytest.raises(DuplicateInstance):
        second.register(member("a"))


def test_expired_session_is_lost_and_comes_back_empty(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    states: list[str] = []
    a.subscribe(lambda topic: states.append(a.session_state()) if topic == "session" else None)
    a.register(member("a"))
    assert lead(harness, a).instance == "a"
    harness.expire(a)
    harness.settle(lambda: "a" not in b.members(), 3.0, "a's member node gone")
    harness.settle(
        lambda: a.session_state() == "connected" and "lost" in states,
        5.0,
        "a connected again after lost",
    )
    assert a.leadership() is None
    a.register(member("a"))
    assert "a" in b.members()


def test_one_leader_and_terms_only_grow(harness: Any) -> None:
    clients = [harness.client(name) for name in ("a", "b", "c")]
    results = [client.campaign() for client in clients]
    assert [r is not None for r in results] == [True, False, False]
    first = results[0]
    assert first is not None and first.instance == "a"
    for client in clients:
        assert client.leader() == first
    terms = [first.term]
    clients[0].resign()
    assert clients[0].leadership() is None
    second = lead(harness, clients[1])
    terms.append(second.term)
    harness.expire(clients[1])
    third = lead(harness, clients[2])
    terms.append(third.term)
    assert terms == sorted(set(terms)), terms
    assert clients[2].leader() == third
    assert clients[1].leadership() is None


def test_deposed_leader_learns_at_once_and_its_write_is_refused(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    wakes: list[str] = []
    a.subscribe(wakes.append)
    old = lead(harness, a)
    version = a.write_desired(old, GroupState("web", "dc1", epoch=1), NO_NODE)
    b.campaign()
    harness.expire(a)
    harness.settle(lambda: a.leadership() is None, 3.0, "a learns it is deposed")
    assert "session" in wakes or "leadership" in wakes
    new = lead(harness, b)
    assert new.term > old.term
    with pytest.raises((NotLeader, CoordinatorUnavailable)):
        a.write_desired(old, GroupState("web", "dc2", epoch=2), version)
    b.write_desired(new, GroupState("web", "dc2", epoch=2), version)
    assert b.desired("web")[0] == GroupState("web", "dc2", epoch=2)


def test_desired_state_writes_are_fenced_by_version_and_epoch(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    leader = lead(harness, a)
    assert a.desired("web") == (None, NO_NODE)
    v1 = a.write_desired(leader, GroupState("web", "dc1", epoch=1), NO_NODE)
    assert b.desired("web") == (GroupState("web", "dc1", epoch=1), v1)
    with pytest.raises(VersionConflict):
        a.write_desired(leader, GroupState("web", "dc1", epoch=2), NO_NODE)
    with pytest.raises(VersionConflict):
        a.write_desired(leader, GroupState("web", "dc1", epoch=3), v1 + 5)
    v2 = a.write_desired(leader, GroupState("web", "dc2", epoch=2, reason="failover"), v1)
    assert v2 > v1
    with pytest.raises(VersionConflict):
        a.write_desired(leader, GroupState("web", "dc1", epoch=1), v2)
    follower = Leadership("b", leader.term)
    with pytest.raises(NotLeader):
        b.write_desired(follower, GroupState("web", "dc1", epoch=3), v2)
    assert b.desired("web")[0] == GroupState("web", "dc2", epoch=2, reason="failover")


def test_reads_arm_wakeups(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    wakes: list[str] = []
    b.subscribe(wakes.append)
    leader = lead(harness, a)
    b.desired("web")
    b.members()
    a.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
    a.register(member("a"))
    harness.settle(lambda: {"desired", "members"} <= set(wakes), 3.0, "b woken")


def test_observations_are_published_per_instance_and_vanish_with_it(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    seen_a = [Observation("a", "dc1", "dc1/app/10.1.0.10:8080", "up", 1.0, 2.0)]
    seen_b = [Observation("b", "dc2", "dc1/app/10.1.0.10:8080", "down", 1.5, 2.5, "timeout")]
    a.publish(seen_a)
    b.publish(seen_b)
    assert a.observations() == seen_a + seen_b
    later = [Observation("a", "dc1", "dc1/app/10.1.0.10:8080", "up", 1.0, 3.0)]
    a.publish(later)
    assert b.observations() == later + seen_b
    a.close()
    harness.settle(lambda: b.observations() == seen_b, 3.0, "a's observations gone")


def test_applied_state_per_group_and_site(harness: Any) -> None:
    a, b = (
        harness.client("a"),
        harness.client(
            "b",
        ),
    )
    a.report_applied(Applied("web", "dc1", 3, "primary", 10.0, verified=True))
    b.report_applied(Applied("web", "dc2", 3, "backup", 10.5))
    b.report_applied(Applied("web", "dc2", 4, "backup", 11.0))
    assert a.applied("web") == {
        "dc1": Applied("web", "dc1", 3, "primary", 10.0, verified=True),
        "dc2": Applied("web", "dc2", 4, "backup", 11.0),
    }
    assert a.applied("mail") == {}


def test_groups_reads_many_groups_as_desired_and_applied_do(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    leader = lead(harness, a)
    v1 = a.write_desired(leader, GroupState("web", "dc1", epoch=1), NO_NODE)
    a.report_applied(Applied("web", "dc1", 1, "primary", 10.0, verified=True))
    b.report_applied(Applied("mail", "dc2", 2, "backup", 10.5))
    names = ["web", "mail", "db"]
    read = b.groups(names)
    assert list(read) == names
    assert read == {name: (*b.desired(name), b.applied(name)) for name in names}
    assert read["web"] == (
        GroupState("web", "dc1", epoch=1),
        v1,
        {"dc1": Applied("web", "dc1", 1, "primary", 10.0, verified=True)},
    )
    assert read["db"] == (None, NO_NODE, {})
    c = harness.client("c")  # a client that read nothing else: the watches are groups()'s
    wakes: list[str] = []
    c.subscribe(wakes.append)
    c.groups(["db"])  # arms the watches of absent nodes too
    a.write_desired(leader, GroupState("db", "dc2", epoch=1), NO_NODE)
    harness.settle(lambda: "desired" in wakes, 3.0, "c woken by the new state")
    c.groups(["db"])
    a.report_applied(Applied("db", "dc2", 1, "primary", 11.0))
    harness.settle(lambda: "applied" in wakes, 3.0, "c woken by the new applied state")


def test_groups_sees_every_change_its_own_at_once(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    leader = lead(harness, a)
    names = ["web", "mail"]
    v1 = a.write_desired(leader, GroupState("web", "dc1", epoch=1), NO_NODE)
    assert a.groups(names)["web"][:2] == (GroupState("web", "dc1", epoch=1), v1)
    b.groups(names)
    # the leader's own writes: seen by its next read, without waiting for a watch
    v2 = a.write_desired(leader, GroupState("web", "dc2", epoch=2), v1)
    assert a.groups(names)["web"][:2] == (GroupState("web", "dc2", epoch=2), v2)
    a.report_applied(Applied("web", "dc2", 2, "primary", 12.0, verified=True))
    assert a.groups(names)["web"][2] == {
        "dc2": Applied("web", "dc2", 2, "primary", 12.0, verified=True)
    }
    # another client's writes: seen once its watches fire
    b.report_applied(Applied("mail", "dc1", 1, "primary", 13.0))
    harness.settle(
        lambda: a.groups(names)["mail"][2] == {"dc1": Applied("mail", "dc1", 1, "primary", 13.0)},
        3.0,
        "a sees b's report",
    )
    harness.settle(
        lambda: b.groups(names)["web"][:2] == (GroupState("web", "dc2", epoch=2), v2),
        3.0,
        "b sees a's commit",
    )
    cache = getattr(a, "_group_cache", None)
    if cache is not None:  # ZooKeeper: what nothing changed is not read again
        before = cache.reads
        for _ in range(5):
            a.groups(names)
        assert cache.reads == before


def test_command_is_consumed_exactly_once_with_its_effect(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    operator = harness.client("alice", role="operator")
    leader = lead(harness, a)
    v0 = a.write_desired(leader, GroupState("web", "dc1", epoch=1), NO_NODE)
    first = operator.submit(Command("", "switchover", "alice", "maintenance", "web", "dc2"))
    second = operator.submit(Command("", "freeze", "alice", "change window"))
    assert first < second
    pending = a.pending_commands()
    assert [c.id for c in pending] == [first, second]
    assert pending[0] == Command(first, "switchover", "alice", "maintenance", "web", "dc2")
    result = CommandResult(first, True, "switched", "dc2 active", 20.0, "a", leader.term)
    a.commit(leader, desired=[(GroupState("web", "dc2", epoch=2), v0)], results=[result])
    assert [c.id for c in b.pending_commands()] == [second]
    assert operator.command_result(first) == result
    assert operator.command_result(second) is None
    with pytest.raises(AlreadyDone):
        a.commit(leader, desired=[(GroupState("web", "dc1", epoch=3), v0 + 1)], results=[result])
    assert b.desired("web") == (GroupState("web", "dc2", epoch=2), v0 + 1)  # all or nothing


def test_a_command_is_by_the_identity_that_queued_it(harness: Any) -> None:
    """Finding 10: `who` was what the CLI claimed ($LOGNAME); now it is the identity whose
    folder the command is in, and a different claim is kept beside it, never instead."""
    a = harness.client("a")
    lead(harness, a)
    alice, bob = harness.client("alice", role="operator"), harness.client("bob", role="operator")
    honest = alice.submit(Command("", "freeze", "alice", "change window"))
    spoofed = alice.submit(Command("", "unfreeze", "bob", "pretending"))
    own = bob.submit(Command("", "freeze", "bob"))
    daemon = a.submit(Command("", "note", "api:ops", "accepted"))
    pending = {c.id: c.by for c in a.pending_commands()}
    assert pending == {
        honest: "alice",
        spoofed: "alice (says bob)",
        own: "bob",
        daemon: "api:ops",
    }
    assert [c.id for c in a.pending_commands()] == [honest, spoofed, own, daemon]


def test_a_dead_leaders_command_is_executed_by_the_next_one_once(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    operator = harness.client("alice", role="operator")
    old = lead(harness, a)
    b.campaign()
    command_id = operator.submit(Command("", "switchover", "alice", "test", "web", "dc2"))
    assert [c.id for c in a.pending_commands()] == [command_id]  # a starts on it, then dies
    harness.expire(a)
    new = lead(harness, b)
    with pytest.raises((NotLeader, CoordinatorUnavailable)):
        a.complete_command(old, CommandResult(command_id, True, "ok", "", 1.0, "a", old.term))
    assert [c.id for c in b.pending_commands()] == [command_id]
    b.complete_command(new, CommandResult(command_id, True, "ok", "", 2.0, "b", new.term))
    assert b.pending_commands() == []
    recorded = b.command_result(command_id)
    assert recorded is not None and recorded.leader == "b"


def test_audit_chain_verifies_and_detects_tampering(harness: Any) -> None:
    a = harness.client("a")
    leader = lead(harness, a)
    for index in range(3):
        a.commit(
            leader,
            audit=[
                AuditRecord("decision", {"n": index, "why": "test"}, 10.0 + index),
                AuditRecord("note", {"n": index}, 10.5 + index),
            ],
        )
    entries = a.audit()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e.kind for e in entries[:2]] == ["decision", "note"]
    assert verify_chain(entries, a.audit_head()) == []
    assert a.audit(limit=2) == entries[-2:]
    harness.tamper_audit(3, {"n": 99, "why": "rewritten"})
    problems = verify_chain(a.audit(), a.audit_head())
    assert problems == ["entry 3: content does not match its hash"]
    truncated = a.audit()[:-1]
    assert any("head names entry 6" in p for p in verify_chain(truncated, a.audit_head()))


def test_audit_retention_keeps_the_newest_and_still_verifies(harness: Any) -> None:
    a = harness.client("a", audit_keep=5)
    leader = lead(harness, a)
    for index in range(40):
        a.commit(leader, audit=[AuditRecord("decision", {"n": index}, float(index))])
    entries = a.audit()
    assert entries[-1].seq == 40
    assert 5 <= len(entries) <= 5 + 32  # pruned in batches at most this far behind
    assert verify_chain(entries, a.audit_head()) == []


def test_operator_may_read_and_submit_but_not_write(harness: Any) -> None:
    a = harness.client("a")
    leader = lead(harness, a)
    a.write_desired(leader, GroupState("web", "dc1"), NO_NODE)
    operator = harness.client("alice", role="operator")
    assert operator.desired("web")[0] == GroupState("web", "dc1")
    operator.submit(Command("", "freeze", "alice"))
    with pytest.raises(NotAuthorized):
        operator.register(member("alice"))
    with pytest.raises(NotAuthorized):
        operator.campaign()
    with pytest.raises(NotAuthorized):
        operator.report_applied(Applied("web", "dc1", 1, "primary", 1.0))


def test_anonymous_gets_nothing(harness: Any) -> None:
    a = harness.client("a")
    a.write_desired(lead(harness, a), GroupState("web", "dc1"), NO_NODE)
    anonymous = harness.client("nobody", role="anonymous")
    for call in (
        anonymous.members,
        anonymous.observations,
        anonymous.pending_commands,
        anonymous.audit,
        lambda: anonymous.desired("web"),
        lambda: anonymous.submit(Command("", "freeze", "nobody")),
    ):
        with pytest.raises(NotAuthorized):
            call()


def test_without_quorum_nothing_changes_and_then_everything_comes_back(
    quorum_harness: Any,
) -> None:
    harness = quorum_harness
    a, b = harness.client("a"), harness.client("b")
    a.register(member("a"))
    leader = lead(harness, a)
    assert b.campaign() is None
    version = a.write_desired(leader, GroupState("web", "dc1", epoch=1), NO_NODE)
    harness.lose_quorum()
    harness.settle(
        lambda: a.session_state() == b.session_state() == "suspended",
        2 * harness.session_timeout_s,
        "both suspended",
    )
    assert a.leadership() is None  # suspended: the leader issues no writes
    assert a.disconnected_since() is not None
    with pytest.raises(CoordinatorUnavailable):
        a.write_desired(leader, GroupState("web", "dc2", epoch=2), version)
    with pytest.raises(CoordinatorUnavailable):
        b.members()
    harness.wait(harness.session_timeout_s + 0.5)  # no session expires without a quorum
    harness.restore_quorum()
    harness.settle(
        lambda: a.session_state() == b.session_state() == "connected", 20.0, "both connected again"
    )
    assert a.leadership() == leader and a.disconnected_since() is None
    assert b.campaign() is None
    assert set(b.members()) == {"a"}
    assert a.write_desired(leader, GroupState("web", "dc2", epoch=2), version) == version + 1


def test_finished_commands_are_dropped_beyond_retention(harness: Any) -> None:
    a = harness.client("a", commands_keep=2)
    leader = lead(harness, a)
    ids = []
    for index in range(33):
        command_id = a.submit(Command("", "freeze", "alice", f"#{index}"))
        a.complete_command(leader, CommandResult(command_id, True, "ok", "", 1.0, "a", 1))
        ids.append(command_id)
    pending = a.submit(Command("", "unfreeze", "alice"))
    assert [c.id for c in a.pending_commands()] == [pending]  # never dropped while pending
    assert a.command_result(ids[-1]) is not None
    assert a.command_result(ids[0]) is None  # dropped with its command


def test_a_once_only_id_queues_one_command_across_clients(harness: Any) -> None:
    a, b = harness.client("a"), harness.client("b")
    signature = "ab" * 32
    first = a.submit(Command("", "freeze", "ops", "once"), once=signature, once_until=1e12)
    with pytest.raises(AlreadyUsed):  # another daemon of the cluster
        b.submit(Command("", "freeze", "ops", "again"), once=signature, once_until=1e12)
    with pytest.raises(AlreadyUsed):  # a new session of the same daemon (a restart)
        harness.client("a2").submit(
            Command("", "freeze", "ops", "again"), once=signature, once_until=1e12
        )
    assert [c.id for c in a.pending_commands()] == [first]  # the refused ones queued nothing
    stale = "cd" * 32
    a.submit(Command("", "freeze", "ops", "old"), once=stale, once_until=1.0)  # already past
    b.submit(Command("", "freeze", "ops", "later"), once=stale, once_until=1e12)
    operator = harness.client("alice", role="operator")
    with pytest.raises(NotAuthorized):
        operator.submit(Command("", "freeze", "alice"), once="ef" * 32, once_until=1e12)
    with pytest.raises(ValueError):
        a.submit(Command("", "freeze", "ops"), once="../../x", once_until=1e12)


def test_a_malformed_command_node_is_a_note_naming_the_problem(harness: Any) -> None:
    a = harness.client("a")
    lead(harness, a)
    good = a.submit(Command("", "freeze", "ops", "fine"))
    gentle = a.submit(Command("", "switchover", "ops", "", "web", "dc2", graceful=True))
    bad = [
        harness.submit_raw(data)
        for data in (
            b"not json",
            b"[1]",
            b'{"kind": "reboot", "by": "x"}',
            b'{"kind": "switchover", "by": "x", "site": "dc2", "at": NaN}',
            b'{"kind": "freeze", "by": 7}',
            b'{"kind": "switchover", "by": "x", "force": "yes"}',
            b'{"kind": "switchover", "by": "x", "graceful": 1}',
        )
    ]
    pending = a.pending_commands()
    assert [c.id for c in pending] == [good, gentle, *bad]
    assert malformed(pending[0]) is None and pending[0].graceful is None
    assert malformed(pending[1]) is None and pending[1].graceful is True
    problems = [malformed(c) for c in pending[2:]]
    assert all(p is not None and "is malformed" in p for p in problems), problems
    assert "NaN is not a number" in str(problems[3])
    assert "graceful must be true or false" in str(problems[-1])


def test_refusal_summaries_have_their_own_retention(harness: Any) -> None:
    a = harness.client("a", audit_keep=5, refusals_keep=3)
    leader = lead(harness, a)
    a.commit(leader, audit=[AuditRecord("decision", {"n": "kept"}, 1.0)])
    for index in range(40):
        a.record_refusals({"interval": index, "counts": [["10.0.0.1", "wrong signature", 9]]})
    assert [r["interval"] for r in a.refusals()][-3:] == [37, 38, 39]
    assert len(a.refusals()) <= 3 + 32
    assert a.refusals(limit=1) == [{"interval": 39, "counts": [["10.0.0.1", "wrong signature", 9]]}]
    assert [e.payload for e in a.audit()] == [{"n": "kept"}]
    with pytest.raises(NotAuthorized):
        harness.client("alice", role="operator").record_refusals({"n": 1})


def test_a_shadow_is_announced_by_an_operator_and_goes_with_its_session(harness: Any) -> None:
    a = harness.client("a")
    a.write_desired(lead(harness, a), GroupState("web", "dc1"), NO_NODE)
    shadow = harness.client("alice-shadow", role="operator")
    shadow.announce_shadow("candidate", {"agree": True, "divergences": 0})
    shadow.announce_shadow("candidate", {"agree": False, "divergences": 2})
    assert a.shadows() == {"candidate": {"agree": False, "divergences": 2}}
    other = harness.client("bob", role="operator")
    with pytest.raises(CoordinatorError):
        other.announce_shadow("candidate", {"agree": True})  # someone else's
    anonymous = harness.client("nobody", role="anonymous")
    with pytest.raises(NotAuthorized):
        anonymous.announce_shadow("x", {})
    harness.expire(shadow)
    wait_until(
        lambda: a.shadows() == {},
        10.0,
        "the shadow gone with its session",
        retry_on=(CoordinatorError,),
    )
