"""Every attack of issue 14 against real daemons on loopback (ZooKeeper, BIND, three daemons;
see tests/operator/cluster.py), each attacker from its own 127.0.0.x address, while the
operator works from 127.0.0.1 and a monitor polls every daemon's /health.

Prints one JSON object as its last line:
  operator_ok_during_attacks  every signed operator request during the attacks was accepted
  max_health_gap_s            the longest time any daemon's /health went unanswered
  probe_false_downs           observer votes of `down` seen on the (healthy) services
  replays_accepted            captured requests accepted again (other daemon, restart, same)
  audit_decisions_lost        accepted commands of this run missing from the audit trail
  secrets_in_logs             configured secrets found in the daemons' logs (w logs at debug)
  fuzzed_requests             generated requests (bad headers, bodies, methods, sizes)
  tracebacks, 5xx             tracebacks in the daemons' logs; answers 500 and above

    .venv/bin/python benchmarks/api_abuse.py [--requests 10000] [--seed 14]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from failover.api.auth import signed_headers
from tests.operator.cluster import KEY_ID, KEY_SECRET, SCOPE, Cluster, start_cluster

WRITES = ["/switchover", "/freeze", "/unfreeze"]
CRAFTED = (
    "ESR-HMAC-A" + "Credential=a," * 200 + "SignedHeaders=a," * 200 + "Signature=0" * 200 + "x"
)


def raw_request(address: str, data: bytes, source: str, timeout_s: float = 5.0) -> int:
    """Send bytes, return the answer's status (0: closed without an answer)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection(
            (host, int(port)), timeout=timeout_s, source_address=(source, 0)
        ) as sock:
            sock.sendall(data)
            head = sock.recv(64)
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def http(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"),
    ]
    if "Content-Length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def fuzzed(rng: random.Random, cluster: Cluster, instance: str) -> bytes:
    address = cluster.api[instance]
    method = rng.choice(["POST"] * 6 + ["GET", "PUT", "DELETE", "OPTIONS", "HEAD", "FOO"])
    path = rng.choice(
        WRITES * 3
        + [
            "/status",
            "/health",
            "/metrics",
            "/",
            "/x" * 50,
            "/freeze?" + "a=b&" * rng.randint(1, 300),
        ]
    )
    body_kind = rng.randrange(8)
    body = [
        b"{}",
        b'{"site": "dc2", "expires": NaN}',
        b'{"at": 1e999}',
        b"[" * 5000,
        bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000))),
        json.dumps({"site": "dc2", "reason": "x" * rng.randint(0, 70_000)}).encode(),
        b'{"group": ' + b"9" * 5000 + b"}",
        b"",
    ][body_kind]
    signed = signed_headers(
        "POST",
        address,
        path,
        body.decode("utf-8", "replace"),
        KEY_ID,
        rng.choice(["wrong", "guess", KEY_SECRET[:-1]]),
        SCOPE,
    )
    auth = rng.choice(
        [
            signed["X-Escher-Auth"],
            CRAFTED,
            CRAFTED[: rng.randint(10, 4000)],
            "",
            signed["X-Escher-Auth"][: rng.randint(0, 200)],
            "ESR-HMAC-SHA256 " + "A" * 5000,
            signed["X-Escher-Auth"].replace("ops", rng.choice(["lockme", "nobody", "ops" * 30])),
            "\u00e9\u202e" * 20,
        ]
    )
    headers = {
        "Content-Type": rng.choice(["application/json", "text/plain", "x" * 100]),
        "X-Escher-Date": rng.choice(
            [signed["X-Escher-Date"], "yesterday", "20991231T000000Z", "9" * 300]
        ),
        "X-Escher-Auth": auth,
    }
    if rng.random() < 0.1:  # a body longer than announced is a pipelined request: refused
        headers["Content-Length"] = rng.choice(["-1", "abc", "0"])
    if rng.random() < 0.05:
        headers.update({f"X-Junk-{i}": "y" * 100 for i in range(rng.randint(1, 60))})
    host = rng.choice([address, address, "evil.example:80", "", address + ", " + address])
    return http(method, path, host, headers, body)


class HealthMonitor(threading.Thread):
    """Polls /health of every daemon; records the longest gap between answers, and votes."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()
        self.last_ok = {name: time.monotonic() for name in cluster.api}
        self.max_gap_s = 0.0
        self.false_downs = 0
        self.restarting: set[str] = set()  # a daemon restarted on purpose: its gap not counted

    def run(self) -> None:
        rounds = 0
        while not self.stopping.is_set():
            for name in self.cluster.api:
                try:
                    ok = self.cluster.get(name, "/health")[0] == 200
                except OSError:
                    ok = False
                now = time.monotonic()
                if name in self.restarting:
                    self.last_ok[name] = now
                elif ok:
                    self.max_gap_s = max(self.max_gap_s, now - self.last_ok[name])
                    self.last_ok[name] = now
            rounds += 1
            if rounds % 10 == 0:
                try:
                    services = self.cluster.status("w")["services"]
                    self.false_downs += sum(
                        vote == "down"
                        for site in ("dc1", "dc2")
                        for vote in services[site]["app"]["votes"].values()
                    )
                except Exception:  # a status read may fail during a restart
                    pass
            time.sleep(0.05)


def operator_write(
    cluster: Cluster, instance: str, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    text = json.dumps(body)
    headers = signed_headers("POST", cluster.api[instance], path, text, KEY_ID, KEY_SECRET, SCOPE)
    data = http("POST", path, cluster.api[instance], {**headers}, text.encode())
    host, port = cluster.api[instance].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ")[1]), json.loads(payload or b"{}")
    except ValueError:
        return int(head.split(b" ")[1]), {"raw": payload[:200].decode(errors="replace")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="failover-bench-abuse-") as folder:
        cluster = start_cluster(Path(folder))
        monitor = HealthMonitor(cluster)
        monitor.start()
        figures: dict[str, Any] = {}
        try:
            figures = attack(cluster, monitor, rng, args.requests)
        finally:
            monitor.stopping.set()
            monitor.join(5)
            logs = "\n".join(
                p.log_path.read_text(errors="replace") for p in cluster.daemons.values()
            )
            secrets = cluster.secrets()
            cluster.stop()
    figures.update(
        {
            "max_health_gap_s": round(monitor.max_gap_s, 3),
            "probe_false_downs": monitor.false_downs,
            "secrets_in_logs": sum(logs.count(secret) for secret in secrets.values()),
            "tracebacks": logs.count("Traceback"),
        }
    )
    print(json.dumps(figures))


def attack(
    cluster: Cluster, monitor: HealthMonitor, rng: random.Random, requests: int
) -> dict[str, Any]:
    operator: list[int] = []
    accepted: list[str] = []

    def work(path: str, body: dict[str, Any], instance: str = "a") -> None:
        code, answer = operator_write(cluster, instance, path, body)
        operator.append(code)
        if code == 202:
            accepted.append(answer["command_id"])

    # 1. lockout as a weapon: forged and replayed requests naming the operator's key id
    for index in range(50):
        raw_request(cluster.api["a"], fuzzed(random.Random(index), cluster, "a"), "127.0.0.31")
    captured = http(
        "POST",
        "/unfreeze",
        cluster.api["a"],
        signed_headers(
            "POST",
            cluster.api["a"],
            "/unfreeze",
            '{"reason": "captured"}',
            KEY_ID,
            KEY_SECRET,
            SCOPE,
        ),
        b'{"reason": "captured"}',
    )
    first = raw_request(cluster.api["a"], captured, "127.0.0.1")
    replays = [
        raw_request(cluster.api[name], captured, "127.0.0.32")
        for name in cluster.api
        for _ in range(5)
    ]
    work("/freeze", {"reason": "operator during the lockout attack"})
    # 2. slow bodies: announced, never sent (answered 408 after body_timeout_s), in the background
    slow = threading.Thread(
        target=lambda: [
            raw_request(
                cluster.api["b"],
                http("POST", "/freeze", cluster.api["b"], {"Content-Length": "100"}, b"{"),
                "127.0.0.38",
                timeout_s=7.0,
            )
            for _ in range(10)
        ]
    )
    slow.start()
    # 3. a stalling header, idle connections, an audit flood and the fuzz, with the operator
    idle = []
    for _ in range(300):
        try:
            idle.append(
                socket.create_connection(
                    tuple(cluster.api["a"].rsplit(":", 1)),  # type: ignore[arg-type]
                    timeout=2,
                    source_address=("127.0.0.33", 0),
                )
            )
        except OSError:
            break
    for _ in range(20):
        raw_request(
            cluster.api["w"],
            http("POST", "/freeze", cluster.api["w"], {"X-Escher-Auth": CRAFTED}, b"{}"),
            "127.0.0.34",
        )
    for index in range(1100):
        raw_request(cluster.api["b"], http("POST", "/freeze", "x", {}, b"{}"), "127.0.0.35")
        if index % 500 == 0:
            work("/unfreeze" if index % 1000 else "/freeze", {"reason": f"flood {index}"}, "b")
    statuses: dict[int, int] = {}
    names = list(cluster.api)
    for index in range(requests):
        source = f"127.0.0.{50 + index % 40}"
        code = raw_request(
            cluster.api[names[index % 3]], fuzzed(rng, cluster, names[index % 3]), source
        )
        statuses[code] = statuses.get(code, 0) + 1
        if index % 2000 == 0:
            work("/unfreeze", {"reason": f"during the fuzz {index}"}, names[index % 3])
    for sock in idle:
        sock.close()
    slow.join()
    # 4. replays after a restart
    monitor.restarting.add("a")
    cluster.restart("a")
    monitor.restarting.discard("a")
    replays.append(raw_request(cluster.api["a"], captured, "127.0.0.36"))
    work("/unfreeze", {"reason": "after the attacks"})
    time.sleep(2.0)
    trail = {(e.payload.get("command") or {}).get("id") for e in cluster.operator_audit()}
    return {
        "operator_ok_during_attacks": all(code == 202 for code in operator) and first == 202,
        "operator_requests": len(operator),
        "replays_accepted": sum(code == 202 for code in replays),
        "audit_decisions_lost": sum(command_id not in trail for command_id in accepted),
        "fuzzed_requests": requests,
        "5xx": sum(n for code, n in statuses.items() if code >= 500),
        "answers": {str(code): n for code, n in sorted(statuses.items())},
        "idle_connections_tried": len(idle),
    }


if __name__ == "__main__":
    main()
