"""A real little cluster for the operator and API tests, all on loopback.

One ZooKeeper server (tickTime 200, digest ACLs for the daemon and operator identities), a
real BIND primary on 127.0.0.1 that accepts TSIG-signed updates (so DNS steering is applied
and verified), an HTTP service per serving site, and three `failover run` processes: a (dc1),
b (dc2) and w (witness: observer and leader only). Every process has a known PID and is
stopped by it.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dns.exception
import yaml
from kazoo.security import make_digest_acl_credential

from failover.config import Config, load_config
from failover.coord import AuditEntry, CoordinatorError
from failover.coord.zookeeper import ZooKeeperCoordinator
from failover.testing.servers.bind import LoopbackBind
from failover.testing.servers.http import HttpServer
from failover.testing.servers.process import Process, ProcessError, free_port, wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble

FAILOVER = str(Path(sys.executable).parent / "failover")
ZONE = "example.test."
KEY_ID = "ops"
KEY_SECRET = "ops-secret-for-tests"
LOCK_KEY_ID = "lockme"
LOCK_KEY_SECRET = "lockme-secret"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the second factor of KEY_ID
# Operators with their own ZooKeeper identities: alice's password file is in the config
# (daemons and the CLI's --identity alice read it), bob's only as a digest.
ALICE_PASSWORD = "alice-Pz7fW2kQ9vX4mR8tL3nB"
BOB_PASSWORD = "bob-Jd5hT8wN2qZ6xV9cK4rM7y"
ALICE_TOTP = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"  # alice's second factor (the CLI's)
SCOPE = "failover/api/escher_request"
# ZooKeeper passwords strong enough for `validate` (their digests are readable by operators)
DAEMON_PASSWORD = "daemon-Vx3kQ9rT2mW8zL5pN7bY"
OPERATOR_PASSWORD = "operator-Hq4nR8sK2vX6cJ9wM3tZ"
ADDRESSES = {"dc1": "10.1.0.1", "dc2": "10.2.0.1"}
INSTANCES = {"a": "dc1", "b": "dc2", "w": "witness"}

# What a read raises while the cluster settles: no answer yet (OSError, a name server's timeout,
# no coordinator session), a status other than 200 (`status()` asserts it), a key not there yet.
SETTLING = (
    OSError,
    http.client.HTTPException,
    dns.exception.DNSException,
    CoordinatorError,
    AssertionError,
    KeyError,
)


class Cluster:
    """ZooKeeper, BIND, two HTTP services and three daemons; `start()` waits for steady."""

    def __init__(
        self,
        workdir: Path,
        *,
        max_failures: int = 3,
        lockout_s: float = 2.0,
        clock_offsets: dict[str, float] | None = None,
    ) -> None:
        self.clock_offsets = clock_offsets or {}
        self.workdir = workdir
        self.zk = ZooKeeperEnsemble(workdir / "zk", 1, tick_ms=200)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        (workdir / "tsig.key").parent.mkdir(parents=True, exist_ok=True)
        (workdir / "tsig.key").write_text(secret + "\n")
        (workdir / "daemon.digest").write_text(f"failover-daemon:{DAEMON_PASSWORD}\n")
        (workdir / "operator.digest").write_text(f"failover-operator:{OPERATOR_PASSWORD}\n")
        (workdir / "api.totp").write_text(f"{KEY_ID}:{TOTP_SECRET}\nalice:{ALICE_TOTP}\n")
        (workdir / "alice.digest").write_text(f"alice:{ALICE_PASSWORD}\n")
        (workdir / "bob.digest").write_text(f"bob:{BOB_PASSWORD}\n")  # bob's own copy
        (workdir / "api.keys").write_text(
            f"# test keys\n{KEY_ID}:{KEY_SECRET}\n{LOCK_KEY_ID}:{LOCK_KEY_SECRET}\n"
        )
        self.bind = LoopbackBind(
            workdir / "bind",
            ZONE,
            f"$ORIGIN {ZONE}\n$TTL 30\n@ IN SOA ns1 hostmaster ( 1 60 10 3600 30 )\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\n",
            tsig=("failover", secret),
        )
        self.http = {
            site: HttpServer(workdir / f"http-{site}", name=f"app-{site}")
            for site in ("dc1", "dc2")
        }
        self.api = {name: f"127.0.0.1:{free_port()}" for name in INSTANCES}
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.config_path = workdir / "cluster.yaml"
        self.daemons: dict[str, Process] = {}
        self.config: Config | None = None

    def document(self) -> dict[str, Any]:
        check = {
            "type": "http",
            "path": "/health",
            "interval_s": 0.5,
            "timeout_s": 0.3,
            "rise": 1,
            "fall": 2,
        }
        sites: dict[str, Any] = {
            site: {
                "services": {"app": {"kind": "app", "endpoints": [server.endpoint], "check": check}}
            }
            for site, server in self.http.items()
        }
        sites["witness"] = {"role": "witness"}
        instances: dict[str, Any] = {
            name: {"site": site, "api": self.api[name]} for name, site in INSTANCES.items()
        }
        instances["w"]["roles"] = ["observer", "leader"]
        return {
            "cluster": {
                "name": "ops",
                "zookeeper": {
                    "hosts": self.zk.hosts,
                    "session_timeout_s": 2,
                    "daemon_auth": {"credentials_file": "daemon.digest"},
                    "operator_auth": {"credentials_file": "operator.digest"},
                    "operators": {
                        "alice": {"credentials_file": "alice.digest"},
                        "bob": {"digest": make_digest_acl_credential("bob", BOB_PASSWORD)},
                    },
                },
                "api": {
                    "keys_file": "api.keys",
                    "max_failures": self.max_failures,
                    "backoff_s": 0.5,
                    "lockout_s": self.lockout_s,
                    "refusal_interval_s": 1,
                    "header_timeout_s": 2,
                    "max_connections": 32,
                    "totp_file": "api.totp",
                    "totp_actions": [],
                },  # a forced switchover still needs one
                "daemon": {"heartbeat_s": 1, "watchdog_s": 3, "cycle_s": 0.5},
            },
            "sites": sites,
            "instances": instances,
            "groups": {
                "web": {
                    "services": ["app"],
                    "preferred_site": "dc1",
                    "steering": {
                        "method": "dns",
                        "zone": ZONE,
                        "ttl": 5,
                        "servers": [f"127.0.0.1:{self.bind.port}"],
                        "tsig": {"name": "failover", "secret_file": "tsig.key"},
                        "names": {"www": {site: [address] for site, address in ADDRESSES.items()}},
                        "timeout_s": 1,
                    },
                }
            },
            "policy": {
                "hold_down_s": 1,
                "stale_after_s": 3,
                "cooldown_s": 0,
                "max_switches_per_hour": 30,
                "graceful_ttl_s": 1,  # www's TTL is 5 s
                "drain_s": 1,
            },
        }

    def start(self) -> Cluster:
        self.zk.start(timeout_s=60.0)
        self.bind.start()
        for server in self.http.values():
            server.start()
        self.config_path.write_text(yaml.safe_dump(self.document()))
        self.config = load_config(self.config_path)
        for name in INSTANCES:
            self.daemons[name] = Process(
                f"daemon {name}",
                [
                    FAILOVER,
                    "run",
                    "--config",
                    str(self.config_path),
                    "--instance",
                    name,
                    "--clock-offset-s",
                    str(self.clock_offsets.get(name, 0.0)),
                    *(["--log-level", "DEBUG"] if name == "w" else []),
                ],
                log_path=self.workdir / f"daemon-{name}.log",
            ).start()
        for name in INSTANCES:
            wait_until(
                functools.partial(self.serves_health, name),
                20.0,
                f"daemon {name} serves /health",
                retry_on=SETTLING,
            )
        self.wait_steady("dc1", 30.0)
        return self

    def restart(self, name: str) -> None:
        """Stop one daemon and start it again (a new process: nothing kept in memory)."""
        self.daemons[name].stop()
        self.daemons[name].start()
        wait_until(
            lambda: self.connected(name),
            20.0,
            f"daemon {name} serves /health again, with a ZooKeeper session",
        )

    def secrets(self) -> dict[str, str]:
        """Every secret the cluster's config names, by where it comes from."""
        found = {
            "tsig": (self.workdir / "tsig.key").read_text().strip(),
            "totp": TOTP_SECRET,
            "alice totp": ALICE_TOTP,
        }
        for name in ("daemon.digest", "operator.digest", "alice.digest", "bob.digest"):
            user, _, password = (self.workdir / name).read_text().strip().partition(":")
            found[name] = password
            found[f"{name} digest"] = make_digest_acl_credential(user, password).partition(":")[2]
        for line in (self.workdir / "api.keys").read_text().splitlines():
            if line and not line.startswith("#"):
                key_id, _, secret = line.partition(":")
                found[f"api key {key_id}"] = secret
        return found

    def stop(self) -> None:
        for process in self.daemons.values():
            process.stop()
        for server in self.http.values():
            server.stop()
        self.bind.stop()
        self.zk.stop()

    def logs(self) -> str:
        parts = [f"--- {p.name} ---\n{p.log_tail(30)}" for p in self.daemons.values()]
        return "\n".join(parts + [f"--- zookeeper ---\n{self.zk.logs(20)}"])

    # --- helpers for tests ----------------------------------------------------------------

    def url(self, instance: str, path: str) -> str:
        return f"http://{self.api[instance]}{path}"

    def serves_health(self, instance: str) -> bool:
        """The daemon answers /health. One that could not bind its API address (it keeps
        running without one, and whatever holds the port answers there) ends a wait at once."""
        for line in self.daemons[instance].log_tail(200).splitlines():
            if "API not served" in line:
                raise ProcessError(f"daemon {instance}: {line}")
        return self.get(instance, "/health")[0] == 200

    def connected(self, instance: str) -> bool:
        """The daemon answers /health and holds a ZooKeeper session."""
        code, body = self.get(instance, "/health")
        return code == 200 and json.loads(body).get("session") == "connected"

    def get(self, instance: str, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(instance, path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def status(self, instance: str = "a") -> dict[str, Any]:
        code, body = self.get(instance, "/status")
        assert code == 200, body
        doc: dict[str, Any] = json.loads(body)
        return doc

    def steady_on(self, site: str) -> bool:
        web = self.status()["groups"]["web"]
        return (
            web["active"] == site
            and web["phase"] == "steady"
            and all(s["in_sync"] for s in web["sites"].values())
            and self.bind.answer("www") == [ADDRESSES[site]]
        )

    def wait_steady(self, site: str, timeout_s: float = 15.0) -> None:
        wait_until(
            lambda: self.steady_on(site), timeout_s, f"web steady on {site}", retry_on=SETTLING
        )

    def situation(self, site: str) -> str:
        return str(self.status()["groups"]["web"]["sites"][site]["health"]["situation"])

    def every_vote_up(self) -> bool:
        """Every observer site votes up on both sites' services."""
        services = self.status()["services"]
        return all(
            vote == "up"
            for site in ("dc1", "dc2")
            for vote in services[site]["app"]["votes"].values()
        )

    def healthy(self, site: str) -> bool:
        return self.situation(site) == "healthy"

    def operator(self) -> ZooKeeperCoordinator:
        assert self.config is not None
        return ZooKeeperCoordinator.from_config(
            self.config, "test-operator", role="operator"
        ).connect(timeout_s=10.0)

    def operator_audit(self) -> list[AuditEntry]:
        client = self.operator()
        try:
            return client.audit()
        finally:
            client.close()

    def daemon_client(self) -> ZooKeeperCoordinator:
        """A client with the daemon identity (for tampering with the audit trail)."""
        assert self.config is not None
        return ZooKeeperCoordinator.from_config(
            self.config, "test-daemon-client", role="daemon"
        ).connect(timeout_s=10.0)


def start_cluster(workdir: Path, **options: Any) -> Cluster:
    cluster = Cluster(workdir, **options)
    try:
        return cluster.start()
    except BaseException:
        print(cluster.logs())
        cluster.stop()
        shutil.rmtree(workdir / "zk", ignore_errors=True)
        raise


_used_codes: set[str] = set()


def alice_code() -> str:
    """A TOTP code of alice's the leader will take and that no test used yet (a code is
    used once; the leader accepts the previous, current and next one)."""
    import pyotp

    totp = pyotp.TOTP(ALICE_TOTP)
    while True:
        for offset in (0, 30, -30):
            code = totp.at(time.time() + offset)
            if code not in _used_codes:
                _used_codes.add(code)
                return code
        time.sleep(30 - time.time() % 30 + 0.1)


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    wait_until(predicate, timeout_s, what, interval_s=0.1, retry_on=SETTLING)


def now() -> float:
    return time.time()
