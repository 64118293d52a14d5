"""A hundred groups: three daemons, a real 3-node ZooKeeper and a real BIND, all on loopback.

Every group is a DNS group (its own name in one zone, steered by RFC 2136 updates to a loopback
BIND) of `--services` services; every service has one TCP endpoint per serving site, on a
local asyncio server that accepts and closes (one listening port per endpoint), so each
observer runs groups x services x 2 checks. BGP groups are left out: they need BIRD in network
namespaces (the lab), and nothing in the leader's or the observer's cost depends on the method.
The first group's checks run every 0.5 s (fall 2, rise 1) so that its failover is measured
precisely; the others every `--interval` s. Hold-down 0, no cooldown.

Measured, with every group steady on dc1:
  leader_cycle_s         p50/p99 of the leading daemon's cycle (failover_cycle_seconds, over the
                         steady window; interpolated in the histogram's buckets)
  zk_writes_per_s_steady ZooKeeper write transactions a second (the ensemble's zxid) while
                         nothing changes
  observation_publish_bytes  the size of one observer's published observations node
  rss_mb                 resident memory of each daemon
  one_group_failover_s   a stopped service of the first group -> the name server answers the
                         other site, with the other groups steady (median of `--trials`)
  single_group_failover_s    the same with a cluster of that one group alone
The last line is one JSON object.

    .venv/bin/python benchmarks/scale.py [--groups 100] [--services 5] [--trials 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import dns.exception
import yaml
from kazoo.client import KazooClient

from failover.testing.servers.bind import LoopbackBind
from failover.testing.servers.process import Process, free_port, wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble

FAILOVER = str(Path(sys.executable).parent / "failover")
ZONE = "scale.test."
ADDRESSES = {"dc1": "10.1.0.1", "dc2": "10.2.0.1"}
INSTANCES = {"a": "dc1", "b": "dc2", "w": "witness"}
DAEMON_AUTH = "failover-daemon:daemon-Vx3kQ9rT2mW8zL5pN7bY"  # strong enough for `validate`
SETTLING = (OSError, dns.exception.DNSException, KeyError, ValueError)


class Targets:
    """Listening TCP ports on 127.0.0.1 that accept and close, each stoppable on its own."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self.loop = asyncio.new_event_loop()
        self.servers: dict[int, asyncio.Server] = {}
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> Targets:
        self.thread.start()
        for _ in range(self.count):
            port = free_port()
            self.ports.append(port)
            self.open(port)
        return self

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def open(self, port: int) -> None:
        async def serve() -> None:
            def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            self.servers[port] = await asyncio.start_server(
                accepted, "127.0.0.1", port, reuse_address=True
            )

        self._call(serve())

    def close(self, port: int) -> None:
        async def close() -> None:
            server = self.servers.pop(port)
            server.close()
            await server.wait_closed()

        self._call(close())

    def stop(self) -> None:
        for port in list(self.servers):
            self.close(port)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class ScaleCluster:
    def __init__(
        self,
        workdir: Path,
        name: str,
        zk: ZooKeeperEnsemble,
        bind: LoopbackBind,
        targets: Targets,
        groups: int,
        services: int,
        interval_s: float,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.zk = zk
        self.bind = bind
        self.groups = [f"{name}-g{i:03d}" for i in range(groups)]
        self.services = services
        self.interval_s = interval_s
        needed = groups * services * 2
        self.ports = targets.ports[:needed]
        self.api = {instance: f"127.0.0.1:{free_port()}" for instance in INSTANCES}
        self.daemons: dict[str, Process] = {}
        self.config_path = workdir / f"{name}.yaml"

    def endpoint_port(self, site: str, group: int, service: int) -> int:
        index = (group * self.services + service) * 2 + (0 if site == "dc1" else 1)
        return self.ports[index]

    def document(self) -> dict[str, Any]:
        fast = {"type": "tcp", "interval_s": 0.5, "timeout_s": 0.3, "rise": 1, "fall": 2}
        slow = {
            "type": "tcp",
            "interval_s": self.interval_s,
            "timeout_s": min(1.0, self.interval_s / 2),
        }
        sites: dict[str, Any] = {}
        for site in ("dc1", "dc2"):
            services = {}
            for g in range(len(self.groups)):
                for k in range(self.services):
                    port = self.endpoint_port(site, g, k)
                    services[f"g{g:03d}s{k}"] = {
                        "kind": "app",
                        "endpoints": [f"127.0.0.1:{port}"],
                        "check": fast if g == 0 else slow,
                    }
            sites[site] = {"services": services}
        sites["witness"] = {"role": "witness"}
        instances: dict[str, Any] = {
            n: {"site": s, "api": self.api[n]} for n, s in INSTANCES.items()
        }
        instances["w"]["roles"] = ["observer", "leader"]
        groups = {
            group: {
                "services": [f"g{g:03d}s{k}" for k in range(self.services)],
                "preferred_site": "dc1",
                "steering": {
                    "method": "dns",
                    "zone": ZONE,
                    "ttl": 5,
                    "servers": [f"127.0.0.1:{self.bind.port}"],
                    "tsig": {"name": "failover", "secret_file": "tsig.key"},
                    "names": {group: dict((s, [a]) for s, a in ADDRESSES.items())},
                    "timeout_s": 1,
                },
            }
            for g, group in enumerate(self.groups)
        }
        return {
            "cluster": {
                "name": self.name,
                "zookeeper": {
                    "hosts": self.zk.hosts,
                    "session_timeout_s": 4,
                    "daemon_auth": {"credentials_file": "daemon.digest"},
                    "operator_auth": {"credentials_file": "operator.digest"},
                },
                "api": {"keys_file": "api.keys"},
            },
            "sites": sites,
            "instances": instances,
            "groups": groups,
            "policy": {"hold_down_s": 0, "cooldown_s": 0, "max_switches_per_hour": 1000},
        }

    def start(self, timeout_s: float = 120.0) -> None:
        self.config_path.write_text(yaml.safe_dump(self.document()))
        for instance in INSTANCES:
            self.daemons[instance] = Process(
                f"daemon {self.name}-{instance}",
                [FAILOVER, "run", "--config", str(self.config_path), "--instance", instance],
                log_path=self.workdir / f"{self.name}-{instance}.log",
            ).start()
        wait_until(
            lambda: all(self.answer(g) == "dc1" for g in self.groups),
            timeout_s,
            f"{len(self.groups)} groups on dc1",
            0.5,
            retry_on=SETTLING,
        )

    def stop(self) -> None:
        for process in self.daemons.values():
            process.stop()

    def answers(self, group: str, site: str) -> bool:
        return self.answer(group) == site

    def answer(self, group: str) -> str | None:
        addresses = self.bind.answer(group)
        return next((s for s, a in ADDRESSES.items() if addresses == [a]), None)

    def metrics(self, instance: str) -> str:
        with urllib.request.urlopen(f"http://{self.api[instance]}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def leader(self) -> str:
        for instance in INSTANCES:
            for line in self.metrics(instance).splitlines():
                if line.startswith("failover_leader{") and line.endswith(" 1.0"):
                    return instance
        raise KeyError("no leader")

    def rss_mb(self) -> dict[str, float]:
        out = {}
        for instance, process in self.daemons.items():
            status = Path(f"/proc/{process.pid}/status").read_text()
            kb = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            out[instance] = round(kb / 1024, 1)
        return out

    def publish_bytes(self) -> dict[str, int]:
        client = KazooClient(hosts=",".join(self.zk.hosts), auth_data=[("digest", DAEMON_AUTH)])
        client.start(timeout=10)
        try:
            base = f"/failover/{self.name}/observations"
            return {
                child: len(client.get(f"{base}/{child}")[0]) for child in client.get_children(base)
            }
        finally:
            client.stop()
            client.close()

    def slow_cycles(self, instance: str) -> list[dict[str, Any]]:
        """What the daemon logged about its slow cycles (where their time went)."""
        out = []
        path = self.workdir / f"{self.name}-{instance}.log"
        for line in path.read_text(errors="replace").splitlines():
            if '"slow cycle' in line:
                record = json.loads(line)
                out.append({k: v for k, v in record.items() if k.endswith("_s")})
        return out

    def versions(self) -> dict[str, tuple[int, int]]:
        """Every node of the cluster: (data version, children version), to see who writes."""
        client = KazooClient(hosts=",".join(self.zk.hosts), auth_data=[("digest", DAEMON_AUTH)])
        client.start(timeout=10)
        out: dict[str, tuple[int, int]] = {}
        try:
            todo = [f"/failover/{self.name}"]
            while todo:
                path = todo.pop()
                children, stat = client.get_children(path, include_data=True)
                out[path] = (stat.version, stat.cversion)
                todo += [f"{path}/{child}" for child in children]
        finally:
            client.stop()
            client.close()
        return out

    def failover_trials(self, targets: Targets, trials: int) -> list[float]:
        group = self.groups[0]
        active = "dc1"
        samples = []
        phase = random.Random(7)
        for _ in range(trials):
            other = "dc2" if active == "dc1" else "dc1"
            port = self.endpoint_port(active, 0, 0)
            time.sleep(phase.uniform(0.5, 1.0))  # the fault at any point of the check cycle
            started = time.monotonic()
            targets.close(port)
            wait_until(
                functools.partial(self.answers, group, other),
                30.0,
                f"{group} on {other}",
                0.002,
                retry_on=SETTLING,
            )
            samples.append(time.monotonic() - started)
            print(
                f"{self.name}: {group} {active} -> {other} in {samples[-1]:.3f} s", file=sys.stderr
            )
            targets.open(port)
            time.sleep(2.0)  # the service is up again (rise 1) before the next fault
            active = other
        return samples


def zxid(zk: ZooKeeperEnsemble) -> int:
    leader = zk.leader_index()
    assert leader is not None
    line = next(x for x in zk.four_letter(leader, "srvr").splitlines() if x.startswith("Zxid"))
    return int(line.split(":")[1].strip(), 16) & 0xFFFFFFFF


def buckets(text: str) -> dict[float, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("failover_cycle_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of the observations made between two scrapes (linear in a bucket)."""
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in counts:
        if count >= rank:
            if le == float("inf"):
                return lower_le
            share = (rank - lower_count) / max(1e-9, count - lower_count)
            return lower_le + (le - lower_le) * share
        lower_le, lower_count = le, count
    return counts[-1][0]


def steady(cluster: ScaleCluster, window_s: float) -> dict[str, Any]:
    time.sleep(max(5.0, 3 * cluster.interval_s))  # every verdict has risen to up
    leader = cluster.leader()
    nodes0 = cluster.versions()
    before, zx0, t0 = buckets(cluster.metrics(leader)), zxid(cluster.zk), time.monotonic()
    time.sleep(window_s)
    after, zx1, t1 = buckets(cluster.metrics(leader)), zxid(cluster.zk), time.monotonic()
    nodes1 = cluster.versions()
    base = f"/failover/{cluster.name}/"
    changed: dict[str, int] = {}
    for path, (version, cversion) in nodes1.items():
        old = nodes0.get(path, (0, 0))
        writes = version - old[0] + cversion - old[1]
        if writes:
            kind = path.removeprefix(base).split("/")[0] or path
            changed[kind] = changed.get(kind, 0) + writes
    cycles = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    return {
        "leader_cycle_s": {
            "p50": round(quantile(before, after, 0.5), 4),
            "p99": round(quantile(before, after, 0.99), 4),
            "n": int(cycles),
        },
        "zk_writes_per_s_steady": round((zx1 - zx0) / (t1 - t0), 2),
        "zk_node_writes_steady_by_kind": changed,
        "observation_publish_bytes": cluster.publish_bytes(),
        "rss_mb": cluster.rss_mb(),
        "leader_slow_cycles": cluster.slow_cycles(leader)[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="check interval of every group but the first (seconds)",
    )
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fo-bench-scale-"))
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (workdir / "tsig.key").write_text(secret + "\n")
    (workdir / "daemon.digest").write_text(DAEMON_AUTH + "\n")
    (workdir / "operator.digest").write_text("failover-operator:operator-Hq4nR8sK2vX6cJ9wM3tZ\n")
    (workdir / "api.keys").write_text("ops:ops-secret-for-bench\n")
    zk = ZooKeeperEnsemble(workdir / "zk", 3, tick_ms=200)
    bind = LoopbackBind(
        workdir / "bind",
        ZONE,
        f"$ORIGIN {ZONE}\n$TTL 30\n@ IN SOA ns1 hostmaster ( 1 60 10 3600 30 )\n"
        "@ IN NS ns1\nns1 IN A 127.0.0.1\n",
        tsig=("failover", secret),
    )
    targets = Targets(args.groups * args.services * 2)
    clusters: list[ScaleCluster] = []
    load_before = os.getloadavg()[0]
    try:
        zk.start(timeout_s=60.0)
        bind.start()
        targets.start()
        many = ScaleCluster(
            workdir, "many", zk, bind, targets, args.groups, args.services, args.interval
        )
        clusters.append(many)
        many.start()
        figures = steady(many, args.window)
        print(f"steady: {json.dumps(figures)}", file=sys.stderr)
        many_failover = many.failover_trials(targets, args.trials)
        many.stop()
        one = ScaleCluster(workdir, "one", zk, bind, targets, 1, args.services, args.interval)
        clusters.append(one)
        one.start()
        one_failover = one.failover_trials(targets, args.trials)
    except Exception:
        for cluster in clusters:
            for process in cluster.daemons.values():
                print(f"--- {process.name} ---\n{process.log_tail(20)}", file=sys.stderr)
        raise
    finally:
        for cluster in clusters:
            cluster.stop()
        targets.stop()
        bind.stop()
        zk.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "groups": args.groups,
                "checks_per_observer": args.groups * args.services * 2,
                **figures,
                "one_group_failover_s": round(statistics.median(many_failover), 3),
                "one_group_failover_max_s": round(max(many_failover), 3),
                "single_group_failover_s": round(statistics.median(one_failover), 3),
                "single_group_failover_max_s": round(max(one_failover), 3),
                "trials": args.trials,
                "load_avg_1m_before": round(load_before, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
