"""The simulated world: a virtual clock, an event heap, sites, services, links, ZooKeeper.

Everything here is *the world*, never a decision: services that serve or not, links that carry
packets or not, an ensemble that has a quorum or not, sessions that expire, processes that run,
freeze or die. The daemons run the shipped roles (`failover.sim.control`), against the
world's ZooKeeper (`failover.sim.coordination`), routers and name servers
(`failover.sim.steering`); the observers' probing is in `failover.sim.observers`.
The same seed and code give a byte-identical trace: one seeded `random.Random`, no wall clock,
no iteration over hashed sets.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from failover.core.policy import Engine
from failover.sim.parts import Daemon as Daemon
from failover.sim.parts import FaultRecord as FaultRecord
from failover.sim.parts import Link, Service
from failover.sim.topology import CLIENTS, ISP, Topology, router_name, zookeeper_names

EngineFactory = Callable[..., Engine]
# A lost quorum's leader: when it steps down, the servers that follow it until then, and the
# sessions it hears meanwhile (`World._old_leader_window`).
Closing = tuple[float, frozenset[int], frozenset[int]]


class ClockError(RuntimeError):
    """The virtual clock went backwards, or stood still for an endless storm of events:
    a bug in the simulator."""


STORM = 200_000  # events at one instant that mean the world loops instead of moving on


class World:
    """The whole situation at `now`; `run_until` advances it event by event."""

    def __init__(
        self,
        topology: Topology,
        seed: int,
        engine_factory: EngineFactory = Engine,
        leader: str | None = None,
    ) -> None:
        """`leader`: the daemon that campaigns first at the start (else the first in the
        config's order), as a playbook's `leader:` says."""
        from failover.sim.control import Control
        from failover.sim.coordination import SimStore
        from failover.sim.invariants import Checker
        from failover.sim.observers import Observers
        from failover.sim.steering import Steering
        from failover.sim.traffic import Traffic
        from failover.sim.zkclients import Clients

        self.topology = topology
        self.config = topology.config
        self.model = topology.world
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.lines: list[str] = []
        self.watchers: list[Callable[[], None]] = []
        self.engine_factory = engine_factory
        self.engine = engine_factory(self.config)
        self.serving = list(self.config.serving_sites)
        self.sites = list(self.config.sites)
        self.power = {site: True for site in self.sites}
        self.services = {
            (site, name): Service(site, name)
            for site in self.serving
            for name in self.config.sites[site].services
        }
        pairs = self.model.network.pairs()
        locations = self.sites + [CLIENTS]
        default_s = self.model.network.default_latency_s
        self.links = {  # (a, a): within a site, where only probe loss applies
            (a, b): Link(pairs.get(frozenset((a, b)), default_s) if a != b else 0.0)
            for a in locations
            for b in locations
        }
        self.links_of = set(locations)  # locations joined by `links` (sites and clients)
        servers = zookeeper_names(self.model.zookeeper)
        self.zk_names = [name for name, _ in servers]
        self.zk_servers: list[tuple[str, bool]] = [(site, True) for _, site in servers]
        # Finer locations: every daemon and ZooKeeper server stands in its site; a cut can
        # join any two locations (`cuts`), on top of the sites' links.
        self.place: dict[str, str] = {loc: loc for loc in locations}
        self.place.update(servers)
        self.place.update({name: inst.site for name, inst in self.config.instances.items()})
        # each serving site's edge router, and the isp it peers with (on the clients' side)
        self.routers = {site: router_name(site) for site in self.serving}
        self.place.update({name: site for site, name in self.routers.items()})
        self.place[ISP] = CLIENTS
        self.cuts: dict[frozenset[str], int] = {}
        self.quorum_sites: tuple[str, ...] = ()  # sites holding the serving quorum
        self.quorum_ready = False
        self._members: tuple[int, ...] = ()  # servers of the majority component
        self.zk_leader = -1
        self.silent_s = self.model.zookeeper.silent_s
        self._notice_at = 0.0  # when the servers left notice their leader is gone
        self._closing: Closing | None = None  # the old leader's expiries after a quorum loss
        self.daemons = {
            name: Daemon(name, inst.site, tuple(inst.roles))
            for name, inst in self.config.instances.items()
        }
        self.faults: list[FaultRecord] = []
        # site -> (offset s, drift s/s, since): how far its wall clock is off (clock_skew)
        self.clock_skew: dict[str, tuple[float, float, float]] = {}
        self._fault_ids = 0
        self.first_leader = leader
        self.store = SimStore(self)
        self.zk = Clients(self)  # each daemon's ZooKeeper connection
        self.observers = Observers(self)
        self.steering = Steering(self)
        self.control = Control(self)
        self.traffic = Traffic(self)
        self.checker = Checker(self)
        self._bootstrap()

    # --- clock, events, trace ----------------------------------------------------------

    def at(self, when: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        if when < self.now:
            when = self.now
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn, arg))

    def after(self, delay_s: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        self.at(self.now + delay_s, fn, arg)

    def run_until(self, end: float) -> None:
        heap = self._heap
        pop = heapq.heappop
        same = 0
        while heap and heap[0][0] <= end:
            when, _, fn, arg = pop(heap)
            if when < self.now:
                raise ClockError(f"event at {when} is before now ({self.now})")
            same = same + 1 if when == self.now else 0
            if same > STORM:
                raise ClockError(f"{STORM} events at {when} s without the clock moving")
            self.now = when
            fn(arg)
            self.after_event()
        if end > self.now:
            self.now = end

    def after_event(self) -> None:
        self.traffic.refresh()
        self.checker.check()
        for watcher in self.watchers:
            watcher()

    def log(self, kind: str, text: str) -> None:
        self.lines.append(f"{self.now:11.3f} {kind:<9} {text}")

    def trace(self) -> str:
        return "\n".join(self.lines) + "\n"

    def site_clock(self, site: str, t: float) -> float:
        """What `site`'s wall clock reads at true time `t`."""
        skew = self.clock_skew.get(site)
        if skew is None:
            return t
        offset, drift, since = skew
        return t + offset + drift * (t - since)

    # --- the network ---------------------------------------------------------------------

    def reach(self, a: str, b: str) -> bool:
        """A round trip between two locations works (both powered, both directions up)."""
        if a == b:
            return self.power.get(a, True)
        if not self.power.get(a, True) or not self.power.get(b, True):
            return False
        return not self.links[(a, b)].cut and not self.links[(b, a)].cut

    def connected(self, a: str, b: str) -> bool:
        """A round trip between two locations of any kind works: their sites reach each
        other and no cut joins the two (nor one of them and the other's site)."""
        sa, sb = self.place[a], self.place[b]
        if self.cuts and (
            frozenset((a, b)) in self.cuts
            or frozenset((sa, b)) in self.cuts
            or frozenset((a, sb)) in self.cuts
        ):
            return False
        return self.reach(sa, sb)

    def rtt_s(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        return self.links[(a, b)].delay_s() + self.links[(b, a)].delay_s()

    def loss_p(self, a: str, b: str) -> float:
        if a == b:  # a site's own checks
            return self.links[(a, a)].loss_p()
        there, back = self.links[(a, b)].loss_p(), self.links[(b, a)].loss_p()
        return 1 - (1 - there) * (1 - back)

    # --- ZooKeeper: quorum, sessions, election -----------------------------------------

    def refresh_coordination(self) -> None:
        """Recompute the quorum and every daemon's connection after a change in the world."""
        members = self._quorum()
        ready = self.quorum_ready and (members == self._members or members[:1] == (self.zk_leader,))
        zk = self.zk
        for daemon in self.daemons.values():  # who loses its session cycles just before
            client = self.control.processes[daemon.name].client
            if client.link_up and not zk.would_be_heard(daemon, members, ready):
                self.control.before_cut(daemon)
        if members != self._members:
            lost = [i for i in self._members if i not in members]
            before = self._members
            self._members = members
            self.quorum_sites = tuple(dict.fromkeys(self.zk_servers[i][0] for i in members))
            if not (self.quorum_ready and members[:1] == (self.zk_leader,)):
                if self.quorum_ready:
                    self.quorum_ready = False
                    self.log("zk", "quorum lost" if not members else "quorum re-electing")
                    # The servers left learn it at once when the ones gone were killed (their
                    # connections reset), after tickTime x syncLimit when they went silent.
                    self._notice_at = self.now + (0.0 if self._all_killed(lost) else self.silent_s)
                    self._closing = self._old_leader_window(before)
                if members:
                    delay = max(0.0, self._notice_at - self.now) + self.model.zookeeper.election_s
                    self.after(delay, self._quorum_up, members)
        notice_s = self.silent_s if self.quorum_ready else max(0.0, self._notice_at - self.now)
        zk.update(notice_s)
        self._connections()

    def _old_leader_window(self, before: tuple[int, ...]) -> Closing | None:
        """The quorum is lost: its leader, if it still runs, goes on expiring sessions until it
        steps down (`MemoryStore.restore_quorum` says what becomes of those closes). Returns
        when it steps down (at once when the followers it lost were all killed, else after
        tickTime x syncLimit), the servers that follow it until then (they log its closes too),
        and the sessions it hears meanwhile (of clients attached to those servers)."""
        leader = self.zk_leader
        if (
            leader < 0
            or not self.zk_servers[leader][1]
            or not self.power[self.zk_servers[leader][0]]
        ):
            return None  # killed or powered off: it expires nothing more
        names = self.zk_names
        side = frozenset(
            i
            for i, (site, on) in enumerate(self.zk_servers)
            if i == leader or (on and self.power[site] and self.connected(names[leader], names[i]))
        )
        gone = [i for i in before if i not in side]
        until = self.now + (0.0 if self._all_killed(gone) else self.silent_s)
        spared = set()
        for name, daemon in self.daemons.items():
            server = self.zk.state[name].server
            sid = self.control.processes[name].client._session_id
            if (
                daemon.running
                and server in side
                and sid is not None
                and self.connected(name, names[server])
            ):
                spared.add(sid)
        return until, side, frozenset(spared)

    def _old_closes(self) -> tuple[float | None, frozenset[int]]:
        """A new quorum serves: the old leader's closes are committed if it holds a server
        that logged them (`_old_leader_window`)."""
        closing, self._closing = self._closing, None
        if closing is None or not closing[1] & set(self._members):
            return None, frozenset()
        return closing[0], closing[2]

    def _all_killed(self, servers: list[int]) -> bool:
        """Every one of `servers` is down by a kill -9 while its site has power."""
        return all(not self.zk_servers[i][1] and self.power[self.zk_servers[i][0]] for i in servers)

    @property
    def zk_members(self) -> tuple[int, ...]:
        """The servers of the serving (or electing) quorum, its leader first."""
        return self._members

    def coordination_changed(self) -> None:
        """A client's connection opened or ended: the store's sessions follow."""
        self._connections()

    def _quorum(self) -> tuple[int, ...]:
        """The servers that follow a leader which reaches a majority of the ensemble (the
        current leader while it still does, else the one with the highest id that does, as
        ZooKeeper's election picks among servers that hold the same history), the leader
        first; or none."""
        up = [i for i, (site, on) in enumerate(self.zk_servers) if on and self.power[site]]
        total = len(self.zk_servers)
        names = self.zk_names
        order = ([self.zk_leader] if self.zk_leader in up else []) + up[::-1]
        for leader in order:
            members = (leader,) + tuple(
                i for i in up if i != leader and self.connected(names[leader], names[i])
            )
            if len(members) * 2 > total:
                return members
        return ()

    def _quorum_up(self, members: tuple[int, ...]) -> None:
        if members != self._members or self.quorum_ready:
            return
        self.quorum_ready = True
        self.zk_leader = members[0]
        self.log("zk", f"quorum serving in {', '.join(self.quorum_sites)}")
        self.zk.update(self.silent_s)
        self._connections()

    def _connections(self) -> None:
        """Each process's client is heard by the ensemble or not; the store's sessions follow."""
        store = self.store
        store.tick()  # every client heard up to now, as things were
        for daemon in self.daemons.values():
            client = self.control.processes[daemon.name].client
            client.link_up = self.zk.heard(daemon)
        if self.quorum_ready and not store.quorum:
            store.restore_quorum(*self._old_closes())  # a new leader: sessions renewed or closed
        elif not self.quorum_ready and store.quorum:
            store.lose_quorum()  # no leader: no session expires
        else:
            store.tick()
        store.arm_expiries()

    @property
    def leader(self) -> str | None:
        """The first in the election (whether it can act or not)."""
        return self.control.leader

    # --- processes -----------------------------------------------------------------------

    def crash(self, name: str, why: str, restart: bool = True, hook: bool = True) -> None:
        daemon = self.daemons[name]
        if not daemon.alive:
            return
        daemon.alive = False
        daemon.paused = False
        self.control.stopped(daemon)
        self.zk.stopped(name)
        daemon.gen += 1
        daemon.connected = False
        self.log("daemon", f"{name} {why}")
        if hook and "agent" in daemon.roles and daemon.site in self.serving:
            self.steering.stop_hook(daemon.site, name)
        self.refresh_coordination()
        if restart:
            self.after(self.model.daemons.restart_s, self._restart, (name, daemon.gen))

    def _restart(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        daemon = self.daemons[name]
        if daemon.alive or daemon.gen != gen or daemon.held_down or not self.power[daemon.site]:
            return
        self.start(name)

    def start(self, name: str, launched: bool = False) -> None:
        """The process starts: its client connects `startup_s` later (`launch_s` more when
        `launched`: a supervisor started from outside, which then starts the process), and
        it runs its roles once that has a session (`Control.started`), unless it is
        meanwhile crashed, held down or without power again."""
        daemon = self.daemons[name]
        daemon.gen += 1
        model = self.model.daemons
        delay = model.startup_s + (model.launch_s if launched else 0.0)
        self.after(delay, self._started, (name, daemon.gen))

    def _started(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        daemon = self.daemons[name]
        if daemon.alive or daemon.gen != gen or daemon.held_down or not self.power[daemon.site]:
            return
        daemon.alive = True
        daemon.paused = False
        daemon.gen += 1
        self.log("daemon", f"{name} started")
        self.control.started(daemon)
        self.zk.started(name)
        self.observers.started(daemon)
        self.refresh_coordination()

    def pause(self, name: str) -> None:
        daemon = self.daemons[name]
        if not daemon.running:
            return
        self.control.before_cut(daemon)
        last_keep_alive = min(self.now, self.control.keep_alive_until(daemon))
        self.store.tick()
        self.control.processes[name].client.paused = True
        daemon.paused = True
        daemon.connected = False  # frozen: it is heard no more (its client cannot tell)
        daemon.paused_at = self.now
        self.log("daemon", f"{name} frozen")
        self.refresh_coordination()
        self.at(
            last_keep_alive + self.config.cluster.daemon.watchdog_s,
            self._watchdog,
            (name, daemon.gen),
        )

    def _watchdog(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        daemon = self.daemons[name]
        if daemon.paused and daemon.gen == gen:
            self.crash(
                name,
                "killed by the watchdog after "
                f"{self.config.cluster.daemon.watchdog_s:g} s without a keep-alive",
            )

    def resume(self, name: str) -> None:
        daemon = self.daemons[name]
        if daemon.alive and not daemon.paused:
            self.control.processes[name].client.before_commit = None  # a stall never reached
        if not daemon.alive or not daemon.paused:
            return
        daemon.paused = False
        self.log("daemon", f"{name} resumed")
        self.control.resumed(daemon)
        self.observers.resumed(daemon)
        self.refresh_coordination()

    # --- faults' ground truth ------------------------------------------------------------

    def open_fault(
        self,
        kind: str,
        label: str,
        sites: tuple[str, ...] = (),
        inter_site_cut: bool = False,
        places: tuple[str, ...] = (),
        service: str | None = None,
    ) -> FaultRecord:
        self._fault_ids += 1
        record = FaultRecord(
            self._fault_ids, kind, label, self.now, None, sites, inter_site_cut, places, service
        )
        self.faults.append(record)
        self.log(
            "operator" if kind == "operator" else "fault",
            label if kind == "operator" else f"#{record.id} {label}",
        )
        return record

    def close_fault(self, record: FaultRecord) -> None:
        if record.end is None:
            record.end = self.now
            if record.kind != "operator":
                self.log("fault", f"#{record.id} ends: {record.label}")

    def set_power(self, site: str, on: bool) -> None:
        if self.power[site] == on:
            return
        self.power[site] = on
        self.log("power", f"{site} {'on' if on else 'off'}")
        for daemon in self.daemons.values():
            if daemon.site != site:
                continue
            if not on:
                daemon.down_until_power = True
                self.crash(daemon.name, "lost power", restart=False, hook=False)
            elif daemon.down_until_power:
                daemon.down_until_power = False
                if not daemon.held_down:
                    self.start(daemon.name, launched=True)
        self.steering.power_changed(site, on)
        self.world_changed(sites=(site,))

    def world_changed(self, sites: tuple[str, ...] = ()) -> None:
        """Services, links or power changed: probes, coordination and traffic follow."""
        self.refresh_coordination()
        self.observers.poke(sites)
        self.traffic.uplinks_changed()
        self.traffic.dirty = True

    # --- start ---------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        self._members = self._quorum()
        self.quorum_sites = tuple(dict.fromkeys(self.zk_servers[i][0] for i in self._members))
        self.quorum_ready = bool(self._members)
        self.zk_leader = self._members[0] if self._members else -1
        self.store.quorum = self.quorum_ready
        for daemon in self.daemons.values():
            daemon.gen = 1
        self.control.bootstrap()
        self.observers.bootstrap()
        self.traffic.bootstrap()
        self.zk.bootstrap()
        self._connections()
        self.control.start(self.first_leader)
        self.log("world", f"topology {self.topology.name}, seed {self.seed}")
