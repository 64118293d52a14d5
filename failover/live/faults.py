"""The playbooks' faults injected into the lab with real means, and what the lab cannot do.

    service_down          the site's real server stops (the firewall: its forwarding goes)
    service_flap          the server stops and starts again on the flap's timers
    site_power_loss       the site's link to the isp is cut first (silence, as a dead site
                          gives), then every process of it is killed: services, the daemon and
                          its supervisor (no stop hook runs), ZooKeeper servers, BIRD; on the
                          way back the kernel's steering tables are empty, as after a reboot
    link_cut              nftables drops in the isp's forwarding (one way: one rule), or on the
                          location's uplink when one end is the isp; between a site's router
                          and the isp: the isp drops the router's BGP session and what it
                          forwards between the clients and the site
    probe_loss            nftables `numgen random mod 100 < N drop` on the same path
    zookeeper_server_down kill -9 of `count` ZooKeeper servers of the site
    daemon_crash/pause    kill -9 / SIGSTOP of the daemon (its supervisor stays), restart / SIGCONT
    switchover, freeze,   the operator CLI (`failover switchover --to ...`), from the client
    unfreeze              namespace

Not in the lab: `link_latency` and `service_slow` (this kernel has no netem), `clock_skew`
(namespaces share the host's clock), `service_partial` (a real server fails all or nothing).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from failover.config import Config
from failover.config.model import BgpSteering, DnsSteering
from failover.lab import firewall
from failover.lab import netns as nets
from failover.lab.bird import HOLD_S
from failover.lab.topology import ROUTER_SITES, netns
from failover.live.stack import LiveStack
from failover.sim.faults import (
    ClockSkew,
    DaemonFault,
    FaultSpec,
    Freeze,
    LinkFault,
    PowerLoss,
    ServiceFault,
    Switchover,
    ZooKeeperFault,
)
from failover.sim.playbook import Playbook
from failover.sim.topology import CLIENTS, ISP, Topology, router_name

# A site's servers (services, BIRD) take a few seconds to start; they start this
# long before the power comes back, while the site is still cut off, so that it is back at once
# at the fault's end, as in the simulator (measured: 4.5 s when they started at the end).
POWER_PREPARE_S = 5.0
NOT_LIVE = {
    "link_latency": "added latency needs netem, which this kernel lacks",
    "service_slow": "a slow service needs added latency (netem), which this kernel lacks",
    "service_partial": "a real server here fails every request or none",
    "clock_skew": "network namespaces share the host's clock",
}


def fault_kinds(playbook: Playbook) -> list[str]:
    spec = playbook.spec
    kinds: list[str] = [step.fault.kind for step in spec.method]
    return kinds + [item.kind for item in spec.rollbacks]


def not_live(playbook: Playbook) -> list[str]:
    """Why the playbook cannot run in the lab (one sentence per reason), or []."""
    spec = playbook.spec
    found = [fault_not_live(step.fault, playbook.topology) for step in spec.method]
    found += [fault_not_live(item, playbook.topology) for item in spec.rollbacks]
    for step in spec.method:
        if step.when is not None and "phase" in step.when:
            found.append(
                f"when: {step.when}: the live recorder samples the desired state every 0.2 s "
                "and the lab's switching phase can last 30 ms (the old site's agent in the "
                "leader's own daemon confirms at once); a trigger on it would need a watch"
            )
            break
    reasons: dict[str, str] = {}  # the first fault for each reason
    for why in found:
        if why:
            reasons.setdefault(why.split(": ", 1)[1], why)
    return [*reasons.values()] + topology_not_live(playbook.topology)


def fault_not_live(fault: FaultSpec, topology: Topology) -> str | None:
    """Why the lab cannot inject this fault, or None."""
    if fault.kind in NOT_LIVE:
        return f"{fault.kind}: {NOT_LIVE[fault.kind]}"
    if not isinstance(fault, LinkFault):
        return None
    whole = {*topology.config.sites, CLIENTS, "active", "standby"}
    if fault.between[0] == fault.between[1]:
        return (
            f"{fault.kind} between {fault.between[0]} and itself: a site's daemon probes its "
            "services inside the site's namespace, where the services also talk to each "
            "other (the load balancer to the app, the front door to the load balancer); "
            "nftables there cannot drop the daemon's packets alone"
        )
    if set(fault.between) <= whole or _router_cut(fault) is not None:
        return None
    finer = ", ".join(end for end in fault.between if end not in whole)
    return (
        f"{fault.kind} between {finer}: the lab cuts between namespaces (sites, client); a "
        "daemon, ZooKeeper server or router shares its site's namespace (a router is cut "
        "only from the isp)"
    )


def _router_cut(fault: LinkFault) -> str | None:
    """The site whose edge router a `link_cut` cuts from the isp, if it is one (a playbook's
    cut that reaches a router is two-way)."""
    if fault.kind != "link_cut" or ISP not in fault.between:
        return None
    other = fault.between[1 - fault.between.index(ISP)]
    return next((s for s in ROUTER_SITES if router_name(s) == other), None)


def served(config: Config, site: str) -> list[str]:
    """What the clients reach in `site`: the BGP groups' prefixes, the DNS groups' addresses
    (not the ZooKeeper servers and daemons, which the operator reaches)."""
    found: set[str] = set()
    for group in config.groups.values():
        steering = group.steering
        if isinstance(steering, BgpSteering):
            found.add(steering.prefix)
        elif isinstance(steering, DnsSteering):
            found.update(a for per_site in steering.names.values() for a in per_site.get(site, []))
    return sorted(found)


def topology_not_live(topology: Topology) -> list[str]:
    """Why the lab cannot be this topology's world: what the lab fixes and the topology
    models otherwise (the lab takes ZooKeeper's timers from the topology)."""
    found = []
    if len(topology.config.serving_sites) != 2:
        found.append("the lab has two serving sites")
    hold_s = topology.world.steering.bgp_hold_s
    if hold_s != HOLD_S:
        found.append(
            f"world.steering.bgp_hold_s: {hold_s:g} s, and the lab's BIRD has a hold time of "
            f"{HOLD_S} s: the prediction would not be the lab's"
        )
    return found


def operator_args(spec: Switchover | Freeze, site: str, now: float) -> list[str]:
    """The operator CLI's arguments for the step, injected at `now` (epoch seconds). A
    scheduled switchover names its moment (`--at` an ISO 8601 time), not `+30s`: the CLI reads
    its clock after its own start-up (0.6-0.9 s in the lab), which would move the moment."""
    if not isinstance(spec, Switchover):
        args = [spec.kind, "--reason", spec.reason]
        return args + (["--group", spec.group] if spec.group else [])
    args = ["switchover", "--to", site, "--reason", spec.reason]
    if spec.group:
        args += ["--group", spec.group]
    if spec.force:
        args.append("--force")
    if spec.in_s is not None:
        at = datetime.datetime.fromtimestamp(now + spec.in_s, datetime.UTC)
        args += ["--at", at.isoformat(timespec="milliseconds")]
    if spec.expires_s is not None:
        args += ["--expires", f"{spec.expires_s:g}s"]
    if spec.graceful is not None:
        args.append("--graceful" if spec.graceful else "--abrupt")
    return args


def cli_refusal(output: str) -> list[str] | None:
    """The pre-checks the operator CLI refused a switchover on (it refuses before submitting:
    `switchover refused: web: target: dc1 is already active; ...`), None if it did not."""
    for line in output.splitlines():
        if "switchover refused: " in line:
            items = line.split("switchover refused: ", 1)[1].split(" (--force")[0]
            return [part.split(": ")[1] for part in items.split("; ") if part.count(": ") >= 1]
    return None


@dataclass
class LiveFault:
    """One injected fault: when, what it touched (as the simulator's ground truth)."""

    kind: str
    label: str
    start: float
    end: float | None = None
    sites: tuple[str, ...] = ()  # serving sites whose service to clients it hurts
    places: tuple[str, ...] = ()  # every site it touches
    zookeeper_down: tuple[int, ...] = ()
    undo: Callable[[], None] = field(default=lambda: None, repr=False)
    # what of the undo may run `prepare_s` before the end, unseen (a dark site's servers
    # start): so that at the end the fault is over at once, as in the simulator
    prepare: Callable[[], None] | None = field(default=None, repr=False)
    prepare_s: float = 0.0


class Injector:
    """Injects faults into a `LiveStack`; `resolve` names the current active site of a group."""

    def __init__(
        self,
        stack: LiveStack,
        now: Callable[[], float],
        active: Callable[[str | None], str],
        leader: Callable[[], str | None],
        log: Callable[[str, str], None],
    ) -> None:
        self.stack = stack
        self.now = now
        self.active = active
        self.leader = leader
        self.log = log
        self.faults: list[LiveFault] = []
        self.refusals: list[tuple[float, str, str, list[str]]] = []  # the CLI's own
        self.restart_s = stack.topology.world.daemons.restart_s
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def site(self, name: str, group: str | None) -> str:
        if name not in ("active", "standby"):
            return name
        active = self.active(group)
        if name == "active":
            return active
        return next(s for s in self.stack.config.serving_sites if s != active)

    def zookeeper_down(self) -> set[int]:
        return {i for f in self.faults if f.end is None for i in f.zookeeper_down}

    def inject(self, spec: FaultSpec, label: str = "") -> LiveFault:
        if spec.kind in NOT_LIVE:
            raise ValueError(f"{spec.kind} is not supported live: {NOT_LIVE[spec.kind]}")
        fault = LiveFault(spec.kind, label, self.now())
        if isinstance(spec, Switchover | Freeze):
            self._operator(spec, fault)
        elif isinstance(spec, ServiceFault):
            self._service(spec, fault)
        elif isinstance(spec, PowerLoss):
            self._power(spec, fault)
        elif isinstance(spec, LinkFault):
            self._link(spec, fault)
        elif isinstance(spec, ZooKeeperFault):
            self._zookeeper(spec, fault)
        elif isinstance(spec, DaemonFault):
            self._daemon(spec, fault)
        else:
            assert not isinstance(spec, ClockSkew)
        self.faults.append(fault)
        self.log("fault", f"#{len(self.faults)} {fault.label}")
        return fault

    def get_ready(self, fault: LiveFault) -> None:
        """Run the fault's `prepare` (once), ahead of its end."""
        prepare, fault.prepare = fault.prepare, None
        if prepare is not None:
            prepare()

    def end(self, fault: LiveFault) -> None:
        if fault.end is not None:
            return
        self.get_ready(fault)
        fault.end = self.now()
        self.log("fault", f"#{self.faults.index(fault) + 1} ends: {fault.label}")
        fault.undo()

    def end_all(self) -> None:
        self._stop.set()
        for fault in self.faults:
            with contextlib.suppress(Exception):  # keep ending the others; reset heals all
                self.end(fault)
        for thread in self._threads:
            thread.join(30.0)

    # --- each kind -------------------------------------------------------------------------

    def _operator(self, spec: Switchover | Freeze, fault: LiveFault) -> None:
        fault.end = fault.start
        if isinstance(spec, Switchover):
            site = self.site(spec.site, spec.group)
            fault.label = fault.label or f"operator: switchover to {site}"
        else:
            site = ""
            fault.label = fault.label or f"operator: {spec.kind}"
        args = operator_args(spec, site, time.time())

        def run() -> None:  # the CLI waits for the leader's answer: not on the sampling path
            done = self.stack.cli(*args, timeout_s=60.0)
            failed = cli_refusal(done.stdout + done.stderr)
            if done.returncode != 0 and failed is not None and isinstance(spec, Switchover):
                self.refusals.append((fault.start, "switchover", args[2], failed))
            words = (done.stdout.strip().splitlines() or [""])[-1]
            self.log("operator", f"`failover {' '.join(args)}` exit {done.returncode}: {words}")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _service(self, spec: ServiceFault, fault: LiveFault) -> None:
        site = self.site(spec.site, spec.group)
        fault.sites = fault.places = (site,)
        stack = self.stack
        if spec.kind == "service_down":
            fault.label = fault.label or f"{site} {spec.service} stops"
            stack.stop_service(site, spec.service)
            fault.undo = lambda: stack.start_service(site, spec.service)
            return
        fault.label = fault.label or f"{site} {spec.service} flaps"
        period = spec.period_s or stack.topology.world.services.flap_period_s
        up_s, down_s = spec.up_s or period / 2, spec.down_s or period / 2
        done = threading.Event()

        def flap() -> None:
            stack.stop_service(site, spec.service)
            while not done.wait(down_s):
                stack.start_service(site, spec.service)
                self.log("flap", f"{site} {spec.service} up")
                if done.wait(up_s):
                    return
                stack.stop_service(site, spec.service)
                self.log("flap", f"{site} {spec.service} down")

        thread = threading.Thread(target=flap, daemon=True)
        thread.start()
        self._threads.append(thread)

        def undo() -> None:
            done.set()
            thread.join(30.0)
            stack.start_service(site, spec.service)

        fault.undo = undo

    def _power(self, spec: PowerLoss, fault: LiveFault) -> None:
        site = self.site(spec.site, spec.group)
        stack = self.stack
        fault.label = fault.label or f"{site} loses power"
        fault.places = (site,)
        fault.sites = (site,) if site in stack.config.serving_sites else ()
        stack.lab.cut(site, "isp")  # silence first: nothing a dying site sends gets out
        instances = [i for i, d in stack.daemons.items() if d.site == site]
        for instance in instances:
            daemon = stack.daemons[instance]
            pid = daemon.child_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            daemon.process.kill()
        servers = [i for i, s in enumerate(stack.zookeeper_sites()) if s == site]
        assert stack.zookeeper is not None
        for index in servers:
            if stack.zookeeper.alive(index):
                stack.zookeeper.kill(index)
        fault.zookeeper_down = tuple(servers)
        if site in stack.sites:
            stack.lab.stop(f"{site}-bird")
            stack.sites[site].kill_all()

        def prepare() -> None:  # the site is still cut off: nobody sees its servers start
            if site in stack.sites:
                stack.flush_steering(site)
                stack.lab.start(f"{site}-bird")
                stack.start_site(site)

        def undo() -> None:
            stack.lab.heal(site, "isp")
            # ZooKeeper at the end, not ahead: a site holding the ensemble's majority would
            # form a quorum alone in the dark and expire the sessions of its dead daemons
            # before its power is back (no-witness: the leader changed 3.5 s early). Its
            # servers start in about half a second, not waited for.
            assert stack.zookeeper is not None
            for index in servers:
                stack.zookeeper.restart(index, wait=False)
            for instance in instances:
                stack.daemons[instance].start()

        fault.prepare, fault.prepare_s, fault.undo = prepare, POWER_PREPARE_S, undo

    def _link(self, spec: LinkFault, fault: LiveFault) -> None:
        router_site = _router_cut(spec)
        if router_site is not None:
            router = router_name(router_site)
            fault.label = fault.label or f"link {router}<->{ISP} cut"
            fault.sites = fault.places = (router_site,)
            self.stack.lab.cut(router, ISP, served(self.stack.config, router_site))
            fault.undo = lambda: self.stack.lab.heal(router, ISP)
            return
        a, b = (self.site(end, spec.group) if end != CLIENTS else end for end in spec.between)
        la, lb = ("client" if x == CLIENTS else x for x in (a, b))
        arrow = "->" if spec.one_way else "<->"
        what = "cut" if spec.kind == "link_cut" else f"{spec.loss:.0%} loss"
        fault.label = fault.label or f"link {a}{arrow}{b} {what}"
        serving = self.stack.config.serving_sites
        fault.sites = tuple(s for s in (a, b) if s in serving) if CLIENTS in (a, b) else ()
        fault.places = tuple(end for end in (a, b) if end != CLIENTS)
        if spec.kind == "link_cut" and not spec.one_way:
            self.stack.lab.cut(la, lb)
            fault.undo = lambda: self.stack.lab.heal(la, lb)
            return
        # one way, or a random loss: rules in the isp's forwarding, marked as cuts so that
        # `heal` and the lab's reset remove them
        first, second = sorted((la, lb))
        directions = [(la, lb)] if spec.one_way else [(la, lb), (lb, la)]
        drop = (
            "drop"
            if spec.kind == "link_cut"
            else f"numgen random mod 100 < {round(spec.loss * 100)} drop"
        )
        rules = [
            f'add rule inet {firewall.TABLE} forward iifname "{one}" oifname "{other}" {drop} '
            f'comment "cut {first} {second}"'
            for one, other in directions
        ]
        firewall._ensure_table(netns("isp"))
        nets.run(
            ["ip", "netns", "exec", netns("isp"), "nft", "-f", "-"],
            input_text="\n".join(rules) + "\n",
        )
        fault.undo = lambda: firewall.heal(first, second)

    def _zookeeper(self, spec: ZooKeeperFault, fault: LiveFault) -> None:
        site = self.site(spec.site, spec.group)
        stack = self.stack
        assert stack.zookeeper is not None
        down = self.zookeeper_down()
        servers = [
            i
            for i, s in enumerate(stack.zookeeper_sites())
            if s == site and i not in down and stack.zookeeper.alive(i)
        ][: spec.count]
        fault.label = fault.label or f"{len(servers)} ZooKeeper server(s) in {site} stop"
        fault.places = (site,)
        for index in servers:
            stack.zookeeper.kill(index)
        fault.zookeeper_down = tuple(servers)

        def undo() -> None:
            assert stack.zookeeper is not None
            for index in servers:
                stack.zookeeper.restart(index, wait=False)

        fault.undo = undo

    def _daemon(self, spec: DaemonFault, fault: LiveFault) -> None:
        stack = self.stack
        if spec.instance == "leader":
            name = self.leader()
        elif spec.instance.startswith("agent:"):
            name = stack.instance_of(spec.instance.removeprefix("agent:"))
        else:
            name = spec.instance
        if name is None:
            fault.label = f"{spec.kind}: no leader to hit"
            fault.end = fault.start
            return
        daemon = stack.daemons[name]
        if daemon.child_pid() is None:  # powered off, crashed, or its supervisor restarting
            fault.label = f"{spec.kind}: {name} is not running (nothing to hit, as in the model)"
            fault.end = fault.start
            return
        agent = "agent" in stack.config.instances[name].roles
        fault.sites = (daemon.site,) if agent and daemon.site in stack.config.serving_sites else ()
        fault.places = (daemon.site,)
        if spec.kind == "daemon_crash":
            fault.label = fault.label or f"{name} crashes"
            stack.kill_daemon(name)
            # held down for the fault's duration, as in the model: the supervisor runs its
            # stop hook and then ends instead of restarting the daemon
            supervisor = daemon.process.pid
            if supervisor is not None:  # the supervisor only: its stop hook must run
                with contextlib.suppress(ProcessLookupError):
                    os.kill(supervisor, signal.SIGTERM)
            fault.undo = lambda: stack.restart_daemon(name)
        else:
            fault.label = fault.label or f"{name} freezes"
            pid = stack.freeze_daemon(name)

            def resume() -> None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

            fault.undo = resume
