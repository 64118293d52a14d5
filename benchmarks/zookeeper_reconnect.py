"""How kazoo clients with the daemon's settings ride through ZooKeeper faults in the lab, to set
the simulator's ZooKeeper model (failover/sim/zkclients.py) from measurements.

The lab's namespaces and the reference topology's 2+2+1 ensemble (as `LiveStack` writes it:
its tickTime, syncLimit, initLimit), no services or daemons. In each phase a few clients, each
attached to a chosen first server (hosts in a fixed order), run in the sites' namespaces; then:
- A: dc1's servers are cut from the ZooKeeper leader (the witness's server, the highest id);
- B: the leader's site goes silent (isolated from the isp): a silent loss of the leader;
- D: dc1 is cut from dc2 while a dc2 server leads (after B);
- C: the leader's process is killed (kill -9: its connections reset).
For each client: when it was dropped and when it was connected again (seconds after the fault),
and whether its session survived. Needs root; run it under `flock /tmp/failover-lab.lock`
(about 2.5 minutes); removes the lab afterwards.

The last line printed is one JSON object: {"tick_ms", "sync_limit", "phases": {...},
"model": {...}} (`model`: the simulator's figures for the same timers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PORT = 2181
ADDRESS = {"a1": "10.1.0.2", "a2": "10.1.0.3", "b1": "10.2.0.2", "b2": "10.2.0.3", "w": "10.3.0.2"}


def client(name: str, hosts: str, duration_s: float) -> None:
    """One kazoo client as the daemon builds it; prints `time event` lines."""
    from kazoo.client import KazooClient

    from failover.coord.zktimeouts import CONNECTION_RETRY, BoundedConnect, connect_timeout_s

    lock = threading.Lock()  # kazoo's listener thread and this one: whole lines only

    def say(text: str) -> None:
        with lock:
            sys.stdout.write(f"{time.time():.3f} {name} {text}\n")
            sys.stdout.flush()

    count = len(hosts.split(","))
    zk = KazooClient(
        hosts=hosts,
        timeout=4.0,
        handler=BoundedConnect(connect_timeout_s(4.0, count)),
        randomize_hosts=False,
        connection_retry=dict(CONNECTION_RETRY),
    )
    zk.add_listener(lambda state: say(f"state {state}"))
    zk.start(timeout=10)
    say(f"session {zk.client_id[0]:x}")
    end = time.time() + duration_s
    last = zk.client_id[0]
    while time.time() < end:
        time.sleep(0.05)
        cid = zk.client_id
        if cid and cid[0] != last:
            say(f"session {cid[0]:x}")
            last = cid[0]
    zk.stop()
    zk.close()


def _hosts(*keys: str) -> str:
    return ",".join(f"{ADDRESS[k]}:{PORT}" for k in keys)


def _figures(lines: list[str], fault_at: float) -> dict[str, Any]:
    dropped = back = None
    sessions = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        at, _, event = parts
        t = float(at) - fault_at
        if event.startswith("session "):
            sessions.append(event.split()[1])
        elif event == "state SUSPENDED" and dropped is None and t > 0:
            dropped = round(t, 3)
        elif event == "state CONNECTED" and dropped is not None and back is None:
            back = round(t, 3)
    return {"dropped_s": dropped, "back_s": back, "session_kept": len(set(sessions)) == 1}


def main() -> int:
    from failover.lab.topology import netns
    from failover.live.stack import LiveStack
    from failover.sim.topology import load_topology

    topology = load_topology(ROOT / "simulations" / "reference.yaml")
    timers = topology.world.zookeeper
    stack = LiveStack(topology)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="zk-reconnect-"))
    procs: list[subprocess.Popen[bytes]] = []
    phases: dict[str, dict[str, Any]] = {}

    def phase(name: str, clients: list[tuple[str, str, str]], fault: Any, heal: Any) -> None:
        runs = []
        for cname, site, hosts in clients:
            out = open(folder / f"{name}-{cname}.log", "w")  # noqa: SIM115
            command = [sys.executable, __file__, "--client", cname, hosts, "26"]
            ip = ["ip", "netns", "exec", netns(site)]
            procs.append(
                subprocess.Popen(ip + command, stdout=out, stderr=subprocess.DEVNULL, env=env)
            )
            runs.append((cname, out))
        time.sleep(4.0)
        fault_at = time.time()
        fault()
        time.sleep(18.0)
        heal()
        for proc in procs:
            proc.wait(timeout=30)
        phases[name] = {
            cname: _figures((folder / f"{name}-{cname}.log").read_text().splitlines(), fault_at)
            for cname, _ in runs
        }
        time.sleep(5.0)

    try:
        stack.lab.down()
        stack.lab.up()
        zookeeper = stack.zookeeper = stack._ensemble()
        zookeeper.start(60.0)
        time.sleep(2.0)
        lab = stack.lab
        phase(
            "A_follower_cut_from_leader",
            [
                ("a1-a2-b1", "dc1", _hosts("a1", "a2", "b1", "b2", "w")),
                ("a2-w-a1", "dc1", _hosts("a2", "w", "a1", "b1", "b2")),
                ("a1-w-a2", "dc1", _hosts("a1", "w", "a2", "b1", "b2")),
            ],
            lambda: lab.cut("dc1", "witness"),
            lambda: lab.heal("dc1", "witness"),
        )
        phase(
            "B_leader_silent",
            [
                ("a1", "dc1", _hosts("a1", "a2", "b1", "b2", "w")),
                ("b2", "dc2", _hosts("b2", "b1", "a1", "a2", "w")),
            ],
            lambda: lab.isolate("witness"),
            lambda: lab.heal("witness", "isp"),
        )
        phase(
            "D_inter_site_cut_leader_in_dc2",
            [
                ("a1-a2-b1-b2-w", "dc1", _hosts("a1", "a2", "b1", "b2", "w")),
                ("a2-b1-b2-w", "dc1", _hosts("a2", "b1", "b2", "w", "a1")),
                ("a1-w", "dc1", _hosts("a1", "w", "a2", "b1", "b2")),
            ],
            lambda: lab.cut("dc1", "dc2"),
            lambda: lab.heal("dc1", "dc2"),
        )
        leader = zookeeper.leader_index()
        assert leader is not None
        phase(
            "C_leader_killed",
            [
                ("a1", "dc1", _hosts("a1", "a2", "b1", "b2", "w")),
                ("b1", "dc2", _hosts("b1", "b2", "a1", "a2", "w")),
            ],
            lambda: zookeeper.kill(leader),
            lambda: zookeeper.restart(leader, wait=False),
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if stack.zookeeper is not None:
            stack.zookeeper.stop()
        stack.lab.down()
    from failover.coord.zktimeouts import connect_timeout_s

    session_s = topology.config.cluster.zookeeper.session_timeout_s
    model = {
        "follower_drops_clients_s": timers.silent_s,
        "silent_leader_replaced_s": timers.silent_s + timers.election_s,
        "killed_leader_replaced_s": timers.election_s,
        "silent_host_costs_s": connect_timeout_s(session_s, 5),
    }
    print(
        json.dumps(
            {
                "tick_ms": timers.tick_ms,
                "sync_limit": timers.sync_limit,
                "phases": phases,
                "model": model,
            }
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        client(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
