"""Attacks on the API by clients without credentials (issue 14), against real daemons.

Each attacker sends from its own loopback address (127.0.0.x), the operator from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from failover.coord import AuditEntry
from failover.coord.audit import entry_hash
from failover.coord.zklayout import Layout, dumps, encode_entry
from failover.testing.servers.process import wait_until
from tests.api.conftest import post, refusal_rows, send, sign, wait_noted, wait_refused
from tests.operator.cluster import FAILOVER, KEY_ID, Cluster

pytestmark = pytest.mark.zookeeper


def health_s(cluster: Cluster, instance: str) -> float:
    started = time.perf_counter()
    code, _ = cluster.get(instance, "/health")
    assert code == 200
    return time.perf_counter() - started


def test_forged_and_replayed_requests_do_not_lock_the_operator_out(steady: Cluster) -> None:
    """Finding 1: before, 5 forged requests naming `ops` locked it out for everyone."""
    for _ in range(8):
        code, _ = post(steady, "a", "/freeze", {"reason": "forged"}, "127.0.0.31", secret="guessed")
        assert code in (401, 429)
    data, headers = sign(steady, "a", "/unfreeze", {"reason": "captured"})
    assert send(steady, "a", "/unfreeze", data, headers)[0] == 202
    for _ in range(6):
        assert send(steady, "a", "/unfreeze", data, headers, "127.0.0.32")[0] in (403, 429)
    code, body = post(steady, "a", "/freeze", {"reason": "operator during an attack"})
    assert code == 202, body
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    code, body = post(steady, "a", "/unfreeze", {"reason": "over"})
    assert code == 202, body
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    wait_refused(steady, "127.0.0.31", KEY_ID, "too many failed requests")


def test_a_captured_request_does_not_replay_after_a_restart(steady: Cluster) -> None:
    """Finding 2: the replay memory was per process; now the coordinator keeps it."""
    data, headers = sign(steady, "b", "/freeze", {"group": "web", "reason": "captured"})
    code, body = send(steady, "b", "/freeze", data, headers)
    assert code == 202, body
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    assert post(steady, "b", "/unfreeze", {"reason": "undo"})[0] == 202
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    steady.restart("b")
    code, body = send(steady, "b", "/freeze", data, headers, "127.0.0.33")
    assert code == 403 and "replayed" in body["error"], body
    time.sleep(1.0)
    assert steady.status()["groups"]["web"]["frozen"] is False


def test_a_crafted_auth_header_does_not_stall_the_daemon(steady: Cluster) -> None:
    """Finding 3: escherauth's regular expression backtracks on such a header (8 KB: over
    a second of a held GIL here, each time)."""
    crafted = (
        "ESR-HMAC-A" + "Credential=a," * 200 + "SignedHeaders=a," * 200 + "Signature=0" * 200 + "x"
    )
    host, port = steady.api["w"].rsplit(":", 1)
    started = time.perf_counter()
    for header in (crafted, crafted, crafted, crafted[:4000], "a" * 60_000):
        with socket.create_connection(
            (host, int(port)), timeout=10, source_address=("127.0.0.34", 0)
        ) as attacker:
            attacker.sendall(
                f"POST /freeze HTTP/1.1\r\nHost: {steady.api['w']}\r\n"
                f"X-Escher-Auth: {header}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
            )
            answer = attacker.recv(200)
            assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer
    assert time.perf_counter() - started < 1.5
    assert health_s(steady, "w") < 1.0


def test_a_flood_of_refusals_does_not_flush_the_audit_trail(steady: Cluster) -> None:
    """Finding 5: 1,100 refused requests used to push accepted commands out of the trail."""
    code, body = post(steady, "a", "/freeze", {"reason": "before the flood"})
    assert code == 202, body
    command_id = body["command_id"]
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    host, port = steady.api["a"].rsplit(":", 1)
    sent = 0
    while sent < 1100:
        with socket.create_connection(
            (host, int(port)), timeout=5, source_address=("127.0.0.35", 0)
        ) as attacker:
            stream = attacker.makefile("rb")
            for _ in range(100):
                attacker.sendall(b"POST /freeze HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
                status = stream.readline()
                assert status.split()[1] in (b"401", b"429"), status
                length = 0
                while (line := stream.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                stream.read(length)
                sent += 1
    assert post(steady, "a", "/unfreeze", {"reason": "after the flood"})[0] == 202
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    wait_refused(steady, "127.0.0.35", "", "missing signature")
    wait_until(
        lambda: (
            sum(r["count"] for r in refusal_rows(steady) if r["source"] == "127.0.0.35") >= 1100
        ),
        10.0,
        "1,100 refusals counted",
    )
    kept = [
        e
        for e in steady.operator_audit()
        if (e.payload.get("command") or {}).get("id") == command_id
    ]
    assert kept, "the freeze's audit entries were pushed out"
    assert not any("127.0.0.35" in json.dumps(e.payload) for e in steady.operator_audit())


def test_a_malformed_command_node_is_refused_and_the_queue_moves_on(steady: Cluster) -> None:
    """Finding 8: one bad node under commands/ used to stop every leader's cycle."""
    workdir: Path = steady.workdir
    raw = KazooClient(
        ",".join(steady.zk.hosts),
        auth_data=[("digest", (workdir / "operator.digest").read_text().strip())],
    )
    raw.start(timeout=10)
    try:
        path = raw.create(  # the shared operator identity's own folder
            "/failover/ops/requests/failover-operator/cmd-",
            b'{"kind": "switchover", "at": NaN}',
            sequence=True,
        )
    finally:
        raw.stop()
        raw.close()
    bad_id = "failover-operator." + path.rsplit("/", 1)[1]
    code, body = post(steady, "w", "/freeze", {"reason": "after a bad node"})
    assert code == 202, body
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    assert post(steady, "w", "/unfreeze", {"reason": "done"})[0] == 202
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    client = steady.operator()
    try:
        result = client.command_result(bad_id)
    finally:
        client.close()
    assert result is not None and not result.ok and result.code == "refused"
    assert "is malformed" in result.sentence and "NaN" in result.sentence


def test_connections_are_limited_and_idle_ones_closed(steady: Cluster) -> None:
    """Finding 4: idle connections were held without limit (descriptors the probes need)."""
    host, port = steady.api["a"].rsplit(":", 1)
    held: list[socket.socket] = []
    try:
        for _ in range(30):
            held.append(
                socket.create_connection(
                    (host, int(port)), timeout=5, source_address=("127.0.0.36", 0)
                )
            )
        time.sleep(0.3)
        closed = 0
        for sock in held:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 30 - 8, closed  # at most a quarter of max_connections per source
        assert health_s(steady, "a") < 1.0  # another source is still served
        time.sleep(2.5)  # header_timeout_s: 2
        for sock in held:
            sock.setblocking(True)
            sock.settimeout(1.0)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
    finally:
        for sock in held:
            sock.close()
    assert steady.every_vote_up()


def test_status_shows_no_key_ids(steady: Cluster) -> None:
    """Finding 11: the unauthenticated status named the key ids of those who acted."""
    code, body = post(
        steady, "a", "/freeze", {"reason": "who am i"}, key_id="lockme", secret="lockme-secret"
    )
    assert code == 202, body
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    for path in ("/status", "/metrics"):
        code, text = steady.get("a", path)
        assert code == 200 and "lockme" not in text, path
    assert post(steady, "a", "/unfreeze", {"reason": "done"})[0] == 202
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    wait_noted(steady, "api:lockme", "accepted as")


def test_no_secret_in_any_daemon_log(steady: Cluster) -> None:
    """Finding 6: at debug level kazoo logged its auth packet with the daemon's credential."""
    logs = {name: process.log_path.read_text() for name, process in steady.daemons.items()}
    assert '"level": "debug"' in logs["w"]  # w runs at debug level: kazoo's packets included
    for name, text in logs.items():
        for what, secret in steady.secrets().items():
            assert secret not in text, f"the {what} secret is in daemon {name}'s log"


def test_clients_that_leave_mid_request_leave_no_traceback(steady: Cluster) -> None:
    log = steady.daemons["a"].log_path
    before = log.read_text().count("Traceback")
    host, port = steady.api["a"].rsplit(":", 1)
    for body in (b"{", b"", b'{"reason": "half'):
        with socket.create_connection(
            (host, int(port)), timeout=5, source_address=("127.0.0.37", 0)
        ) as leaver:
            leaver.sendall(
                b"POST /freeze HTTP/1.1\r\nHost: "
                + steady.api["a"].encode()
                + b"\r\nContent-Length: 100\r\n\r\n"
                + body
            )
            time.sleep(0.2)
    time.sleep(1.0)
    assert health_s(steady, "a") < 1.0
    assert log.read_text().count("Traceback") == before, log.read_text()[-3000:]


def test_a_rewritten_and_rehashed_audit_chain_is_caught_by_the_logged_heads(
    steady: Cluster,
) -> None:
    """Finding 10: whoever holds the daemon credential can rewrite an entry and rehash the
    rest; the chain then verifies. The heads the daemons logged as they appended do not move."""
    code, body = post(steady, "a", "/freeze", {"reason": "to be rewritten"})
    assert code == 202, body
    wait_until(lambda: steady.status()["groups"]["web"]["frozen"], 10.0, "frozen")
    assert post(steady, "a", "/unfreeze", {"reason": "done"})[0] == 202
    wait_until(lambda: not steady.status()["groups"]["web"]["frozen"], 10.0, "unfrozen")
    workdir: Path = steady.workdir
    raw = KazooClient(
        ",".join(steady.zk.hosts),
        auth_data=[("digest", (workdir / "daemon.digest").read_text().strip())],
    )
    raw.start(timeout=10)
    try:
        layout = Layout("/failover", "ops")
        for _attempt in range(5):
            data, stat = raw.get(layout.audit)
            entries = steady.operator_audit()
            if json.loads(data)["seq"] != entries[-1].seq:
                continue
            victim = next(
                e
                for e in entries
                if (e.payload.get("command") or {}).get("id") == body["command_id"]
            )
            transaction = raw.transaction()
            prev = victim.prev_hash
            for entry in entries[entries.index(victim) :]:
                payload = (
                    {
                        **entry.payload,
                        "command": {**entry.payload["command"], "reason": "nothing to see"},
                    }
                    if entry is victim
                    else entry.payload
                )
                digest = entry_hash(entry.seq, entry.at, entry.kind, payload, prev)
                forged = AuditEntry(entry.seq, entry.at, entry.kind, payload, prev, digest)
                transaction.set_data(layout.audit_entry(entry.seq), encode_entry(forged))
                prev = digest
            transaction.set_data(
                layout.audit, dumps({"seq": entries[-1].seq, "hash": prev}), stat.version
            )
            if not any(isinstance(r, Exception) for r in transaction.commit()):
                break
        else:
            pytest.fail("the audit trail kept moving")
    finally:
        raw.stop()
        raw.close()
    history = [FAILOVER, "history", "--verify", "--config", str(steady.config_path)]
    plain = subprocess.run(history, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr  # the unkeyed chain alone cannot tell
    logs = [str(process.log_path) for process in steady.daemons.values()]
    checked = subprocess.run(
        [*history, *(f"--heads={log}" for log in logs)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "the chain was rewritten" in checked.stderr
