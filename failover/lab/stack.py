"""The whole system in the lab: ZooKeeper, real services in both sites, three daemons.

On top of `Lab` (namespaces, BIRD, BIND):
- a ZooKeeper ensemble (the example's: three, one node in each of dc1, dc2 and witness, at
  10.x.0.2:2181);
- in each serving site the services of `failover.lab.sites` (nginx, HAProxy, PostgreSQL with
  dc2 a standby of dc1, SMTP, an nftables edge firewall);
- one daemon per site (`dc1-a`, `dc2-a`, `witness-a`) inside its site's namespace, under
  `failover supervise` with the stop hook `failover demote`, as systemd would run it.

The config is the example's (`examples/two-dc.yaml`) with `overrides` merged in, written to the
run dir for the daemons. By default the `mail` group also needs the database (a mail platform
that keeps its mailboxes there), so one database failure moves both the BGP and the DNS group.
The test process reaches the ensemble from inside the `client` namespace through one thread
that lives there (`operator`; the readers are in `failover.lab.view`). `down()` leaves
nothing: every process is stopped by its PID and the lab removes what is left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import functools
import ipaddress
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from failover.config import Config, parse_config
from failover.config.load import resolve_files
from failover.config.model import split_host_port
from failover.coord import Coordinator
from failover.core.model import GroupState
from failover.daemon.supervisor import Priority
from failover.lab.daemons import SupervisedDaemon
from failover.lab.lab import EXAMPLE_CONFIG, Lab
from failover.lab.netns import LabError
from failover.lab.sites import FRONT_PORT, SERVICES, SiteServices, check_layout
from failover.lab.topology import RUN_DIR, UPLINKS, netns
from failover.lab.view import DNS_ERRORS as DNS_ERRORS  # the readers' names, re-exported
from failover.lab.view import OPERATOR_ERRORS as OPERATOR_ERRORS
from failover.lab.view import OPERATOR_LOCATION as OPERATOR_LOCATION
from failover.lab.view import STATUS_ERRORS as STATUS_ERRORS
from failover.lab.view import StackView
from failover.testing.servers.process import attempt, wait_until
from failover.testing.servers.zookeeper import ZooKeeperEnsemble

STACK_OVERRIDES: dict[str, Any] = {"groups": {"mail": {"services": ["mail", "db"]}}}


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Stack(StackView):
    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        run_dir: str | Path = RUN_DIR,
        base_config: str | Path = EXAMPLE_CONFIG,
        zookeeper_tick_ms: int = 200,
        priority: Priority | None = None,
        agents_first: bool = False,
        log_level: str = "INFO",  # the daemons'
    ) -> None:
        base = Path(base_config).resolve()
        raw = yaml.safe_load(base.read_text())
        data = merged(merged(raw, STACK_OVERRIDES), overrides or {})
        self.data = resolve_files(data, base.parent)
        self.text = yaml.safe_dump(self.data, sort_keys=False)
        self.config: Config = parse_config(self.text, source=f"{base} (with overrides)")
        problems = check_layout(self.config)
        if problems:
            raise LabError("the config does not match the lab's services: " + "; ".join(problems))
        self.lab = Lab(self.config, run_dir)
        self.dir = self.lab.run_dir / "stack"
        self.config_path = self.dir / "failover.yaml"
        self.tick_ms = zookeeper_tick_ms
        self.priority = priority  # the daemons' scheduling priority (None: the supervisor's)
        # Start the preferred site's daemon first (it leads), then the other's, then the
        # witness, each once registered: with timers shorter than a daemon's start-up, a leader
        # that starts alone sees the preferred site without an agent and fails it over.
        self.agents_first = agents_first
        self.log_level = log_level
        self.restart_s: float | None = None  # the supervisor restarts a dead daemon after it
        self.sites: dict[str, SiteServices] = {}
        self.zookeeper: ZooKeeperEnsemble | None = None
        self.daemons: dict[str, SupervisedDaemon] = {}
        self._operator: concurrent.futures.ThreadPoolExecutor | None = None
        self._coordinator: Coordinator | None = None

    # --- up ------------------------------------------------------------------------------------

    def up(self, timeout_s: float = 90.0, say: Callable[[str], None] = lambda _: None) -> None:
        """Build everything from scratch (whatever an earlier run left is removed first) and
        wait until every group is steady on its preferred site, applied and verified."""
        started = time.monotonic()
        self.lab.down()
        say("lab: namespaces, BIRD (isp, dc1, dc2), BIND (primary, secondary)")
        self.lab.up()
        self.lab.add_service_addresses()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.text)
        self.zookeeper = self._ensemble()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            say("zookeeper: 3 nodes in dc1, dc2 and witness")
            zk_ready = pool.submit(self.zookeeper.start, 60.0)
            primary = None
            for site in self.config.serving_sites:
                say(
                    f"{site}: app (nginx), lb (HAProxy), db (PostgreSQL"
                    f"{', standby of dc1' if primary else ''}), mail (SMTP), firewall (nftables), "
                    f"front door {self.front}:{FRONT_PORT} (HAProxy)"
                )
                services = SiteServices(site, self.dir / site, primary, front=self.front)
                self.sites[site] = services
                services.start_all()
                primary = primary or services.db
            zk_ready.result(timeout=90.0)
        watchdog_s = self.config.cluster.daemon.watchdog_s
        for instance, placed in self.config.instances.items():
            self.daemons[instance] = SupervisedDaemon(
                self.lab,
                instance,
                placed.site,
                self.config_path,
                watchdog_s,
                self.priority,
                self.log_level,
                self.restart_s,
            )
        preferred = self.config.preferred_site(self.bgp_group)
        if self.agents_first:  # the preferred site's daemon leads, each agent there in turn
            order = sorted(
                self.daemons,
                key=lambda i: (
                    self.config.instances[i].site == "witness",
                    self.config.instances[i].site != preferred,
                ),
            )
        else:  # the witness first: it usually leads, away from the agents
            order = sorted(self.daemons, key=lambda i: self.config.instances[i].site != "witness")
        say(
            f"daemons: {', '.join(order)} under `failover supervise` "
            f"(watchdog {watchdog_s:g} s, stop hook `failover demote`)"
        )
        for instance in order:
            self.daemons[instance].start()
            if self.agents_first or self.config.instances[instance].site == "witness":
                with contextlib.suppress(TimeoutError):
                    wait_until(
                        functools.partial(self._registered, instance),
                        10.0,
                        f"{instance} registered and a leader",
                        0.05,
                    )
        left = max(10.0, timeout_s - (time.monotonic() - started))
        self.wait_steady(self.config.preferred_site(self.bgp_group), left)
        self.wait_healthy(timeout_s=max(10.0, timeout_s - (time.monotonic() - started)))

    def _ensemble(self) -> ZooKeeperEnsemble:
        """The config's ZooKeeper hosts, each node inside the site whose LAN holds it."""
        hosts, spaces, ports = [], [], set()
        for entry in self.config.cluster.zookeeper.hosts:
            host, port = split_host_port(entry)
            site = next(
                (
                    name
                    for name, uplink in UPLINKS.items()
                    if uplink.lan and ipaddress.ip_address(host) in ipaddress.ip_network(uplink.lan)
                ),
                None,
            )
            if site is None:
                raise LabError(f"cluster.zookeeper.hosts: {entry} is in no site's LAN")
            hosts.append(host)
            spaces.append(netns(site))
            ports.add(port)
        if len(hosts) not in (1, 3) or len(ports) != 1:
            raise LabError("cluster.zookeeper.hosts: the lab runs 1 or 3 nodes on one port")
        return ZooKeeperEnsemble(
            self.dir / "zookeeper",
            len(hosts),
            tick_ms=self.tick_ms,
            hosts=hosts,
            netns=list(spaces),
            client_port=ports.pop(),
        )

    def _registered(self, instance: str) -> bool:
        return bool(
            self.leader() is not None
            and attempt(
                lambda: instance in self.operator(lambda c: c.members(), 5.0),
                OPERATOR_ERRORS,
                False,
            )
        )

    # --- down ----------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop everything by PID (daemons first, so their stop hooks run), then the lab."""
        problems: list[str] = []
        for daemon in self.daemons.values():
            with contextlib.suppress(OSError):  # SIGCONT to a process that may be gone
                daemon.process.resume()
        stoppers = [threading.Thread(target=d.stop) for d in self.daemons.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(30.0)
        self.close_operator()
        for services in self.sites.values():
            try:
                services.stop_all()
            except Exception as exc:  # keep going: the lab removes what is left
                problems.append(f"{services.site}: {exc}")
        if self.zookeeper is not None:
            self.zookeeper.stop()
        removed = self.lab.down()
        self.sites.clear()
        self.daemons.clear()
        self.zookeeper = None
        return problems + removed

    # --- faults --------------------------------------------------------------------------------

    def stop_service(self, site: str, service: str) -> None:
        self.sites[site].stop(service)

    def start_service(self, site: str, service: str) -> None:
        self.sites[site].start(service)

    def kill_daemon(self, instance: str) -> int:
        """kill -9 the daemon (its supervisor stays and runs the stop hook); its PID."""
        return self.daemons[instance].signal_daemon(signal.SIGKILL)

    def freeze_daemon(self, instance: str) -> int:
        """SIGSTOP the daemon: silent, so the supervisor's watchdog ends it."""
        return self.daemons[instance].signal_daemon(signal.SIGSTOP)

    def restart_daemon(self, instance: str, timeout_s: float = 15.0) -> None:
        """Start the supervised daemon again once its supervisor has finished."""
        daemon = self.daemons[instance]
        if daemon.process.wait(timeout_s) is None:
            daemon.stop()
        daemon.start()

    def reset(self, site: str | None = None, timeout_s: float = 60.0) -> None:
        """Back to a known state: no cuts, every server, ZooKeeper node and daemon running,
        automation not frozen, and every group steady on `site` (default: the preferred)."""
        site = site or self.config.preferred_site(self.bgp_group)
        started = time.monotonic()
        self.lab.heal_all()
        for services in self.sites.values():
            for name in SERVICES:
                services.start(name)
        if self.zookeeper is not None:
            down = [i for i in range(self.zookeeper.size) if not self.zookeeper.alive(i)]
            for index in down:
                self.zookeeper.restart(index, wait=False)
            self.zookeeper.wait_ready(down, timeout_s=30.0)
        for daemon in self.daemons.values():
            pid = daemon.child_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            if not daemon.alive:
                daemon.start()

        def left() -> float:
            return max(5.0, timeout_s - (time.monotonic() - started))

        wait_until(
            lambda: len(self.operator(lambda c: c.members())) == len(self.daemons),
            left(),
            "every daemon a member",
            0.2,
            retry_on=OPERATOR_ERRORS,
        )
        self.wait_healthy(timeout_s=left())
        if any((self.desired(g) or GroupState(g, site)).frozen for g in self.config.groups):
            self._must(self.cli("unfreeze", "--reason", "reset"))
        if not self.steady_on(site):
            with contextlib.suppress(TimeoutError):  # a switch in flight ends by itself
                wait_until(
                    lambda: all(
                        (self.desired(g) or GroupState(g, site)).phase != "switching"
                        for g in self.config.groups
                    ),
                    left(),
                    "no switch in flight",
                    0.2,
                    retry_on=OPERATOR_ERRORS,
                )
            if any(
                (self.desired(g) or GroupState(g, site)).active != site for g in self.config.groups
            ):
                self._must(
                    self.cli(
                        "switchover",
                        "--to",
                        site,
                        "--reason",
                        "reset",
                        "--wait",
                        "--timeout",
                        f"{left():.0f}s",
                    )
                )
        self.wait_steady(site, left())

    @staticmethod
    def _must(done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise LabError(f"`{' '.join(done.args[4:])}` failed: {done.stdout}{done.stderr}")

    # --- reports -------------------------------------------------------------------------------

    def log_tails(self, lines: int = 25) -> str:
        """The end of every daemon's, ZooKeeper node's and server's log."""
        parts = [
            f"--- {d.instance} ({d.log_path}) ---\n{d.log_tail(lines)}"
            for d in self.daemons.values()
        ]
        if self.zookeeper is not None:
            parts.append(self.zookeeper.logs(lines))
        for path in sorted(self.lab.run_dir.glob("*/*.log")):
            if path.name.startswith("daemon-"):
                continue
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)
