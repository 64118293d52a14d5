"""Each daemon's ZooKeeper connection, as kazoo keeps it with the daemon's settings.

A client is attached to one server at a time. It is heard (its session kept) only while that
server serves in the quorum and the two reach each other; being near another quorum server
does not help until the client has moved there. It moves when its connection ends:
- its server's process is killed: the connection resets, the client notices at once;
- its server leaves the quorum (cut from the ZooKeeper leader, or its leader gone): the server
  drops its clients once it notices, `tickTime x syncLimit` after a silent loss, at once after
  its leader's process was killed;
- its server is silently lost (a cut between the two, a power loss): kazoo would notice an
  unanswered ping, but sends pings only while no request goes out, and a daemon calls every
  cycle; the daemon's coordinator notices instead: its next call (within `cycle_s`) gets no
  answer within the call timeout (`call_timeout_s`), and it drops the connection.
Then it tries the hosts in a shuffled order, one connect each: a server that serves takes a
round trip (and the session goes on, or turns out expired); one that refuses (its process
dead, or not serving: electing, out of the quorum) costs about nothing; a silent one
(unreachable) costs the whole bounded connect timeout (`BoundedConnect`: session timeout /
(2 x hosts)). After a round without success kazoo sleeps (`CONNECTION_RETRY`) and shuffles
again. Measured in the lab (5 servers, tick 200 ms, syncLimit 5, session 4 s): a follower cut
from its leader drops its clients after 0.95-1.03 s, they are back 0.01-0.8 s later with
their sessions; after a kill -9 of the leader clients are back in 0.40-0.70 s.

When a process is killed (kill -9, a power loss), the ensemble last heard its client at the
last packet it sent (`last_packet`): its session runs out a session timeout after that, not
after the kill. kazoo sends a ping only when nothing went out for a third of the session
timeout less a jitter (`connection.py`: `read_timeout / 2 - randint(1, 40) / 100`, a request
counting as a ping), and a daemon with a leader or an agent calls every cycle (the election's
read, the agent's confirmation), at least every `cycle_s`: its last packet is its last cycle
before the kill, or a ping after it.

Draws come from generators of their own (seeded from the run's seed), so the rest of the
world draws as it did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from failover.coord.zktimeouts import CONNECTION_RETRY, call_timeout_s, connect_timeout_s

if TYPE_CHECKING:
    from failover.sim.world import Daemon, World

RETRY_JITTER = 0.4  # kazoo's KazooRetry: each sleep x uniform(1 - 0.4, 1 + 0.4)
PING_JITTER = (1, 40)  # kazoo's connection loop: a ping is due randint(1, 40) / 100 s early


@dataclass(slots=True)
class Attachment:
    server: int | None = None  # the server its connection is open to
    gen: int = 0  # bumped whenever a pending event of this client must be dropped
    searching: bool = False
    order: list[int] = field(default_factory=list)  # this round's hosts, shuffled
    pos: int = 0  # the next host of the round to try
    sleep_s: float = 0.0  # kazoo's current retry delay
    drop_at: float | None = None  # when the open connection ends (noticed), if it will


class Clients:
    """Where each daemon's ZooKeeper client is attached, and its reconnect attempts."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = random.Random(f"zookeeper-clients-{world.seed}")
        self.pings = random.Random(f"zookeeper-pings-{world.seed}")
        session_s = world.config.cluster.zookeeper.session_timeout_s
        self.ping_s = session_s / 3  # kazoo: read timeout (2/3 of the session) / 2
        daemon = world.config.cluster.daemon
        self.connect_s = connect_timeout_s(session_s, len(world.zk_names))
        self.call_s = call_timeout_s(session_s, daemon.watchdog_s)
        self.cycle_s = daemon.cycle_s
        self.state = {name: Attachment() for name in world.daemons}

    # --- what the world asks ---------------------------------------------------------------

    def serving(self, server: int) -> bool:
        world = self.world
        return world.quorum_ready and server in world.zk_members

    def heard(self, daemon: Daemon) -> bool:
        """The daemon's client is heard by the ensemble: it runs, and its server serves and
        reaches it."""
        server = self.state[daemon.name].server
        return (
            daemon.running
            and server is not None
            and self.serving(server)
            and self.world.connected(daemon.name, self.world.zk_names[server])
        )

    def would_be_heard(self, daemon: Daemon, members: tuple[int, ...], ready: bool) -> bool:
        server = self.state[daemon.name].server
        return (
            daemon.running
            and ready
            and server in members
            and self.world.connected(daemon.name, self.world.zk_names[server])
        )

    def last_packet(self, daemon: Daemon, connected_at: float, now: float) -> float:
        """When the ensemble last heard `daemon`'s client, if its process dies at `now` on a
        session connected since `connected_at`. A daemon with a leader or an agent calls every
        cycle, at least every `cycle_s`; an observer alone only publishes; kazoo pings after
        `ping_s` less its jitter without a packet. The simulator does not keep the phase of
        the periodic cycles (nor, with lazy heartbeats, of every cycle a watch causes): the
        last packet is drawn in the last such interval before the kill."""
        jitter = self.pings.randint(*PING_JITTER) / 100
        ping_s = max(self.ping_s - jitter, jitter)  # kazoo's select waits at least the jitter
        every_s = self.cycle_s if {"leader", "agent"} & set(daemon.roles) else ping_s
        last = max(now - self.pings.uniform(0.0, every_s), connected_at)
        while last + ping_s <= now:
            last += ping_s
        return last

    # --- changes -----------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """The cluster has run for long: each client sits on a serving server it reaches."""
        for name, daemon in self.world.daemons.items():
            if not daemon.running:
                continue
            order = self._shuffled()
            for server in order:
                if self.serving(server) and self._reachable(name, server):
                    self.attach(name, server, quiet=True)
                    break
            else:
                self._search(name)  # no server it can reach serves: it keeps trying

    def attach(self, name: str, server: int, quiet: bool = False) -> None:
        """`name`'s client is connected to `server` (tests may place it so)."""
        state = self.state[name]
        state.gen += 1
        state.server = server
        state.searching = False
        state.drop_at = None
        if not quiet:
            self.world.log("zk", f"{name} connected to {self.world.zk_names[server]}")

    def stopped(self, name: str) -> None:
        """The process is gone: so is its connection."""
        state = self.state[name]
        state.gen += 1
        state.server = None
        state.searching = False
        state.drop_at = None

    def started(self, name: str) -> None:
        """A new process: its client starts connecting now."""
        self.stopped(name)
        self._search(name)

    def update(self, notice_s: float) -> None:
        """Something changed (servers, quorum, links, processes): each running client whose
        connection is now broken learns it when kazoo would. `notice_s`: how long a server
        that left the quorum takes to drop its clients this time."""
        world = self.world
        for name, daemon in world.daemons.items():
            if not daemon.running:
                continue
            state = self.state[name]
            server = state.server
            if server is None:
                if not state.searching:
                    self._search(name)
                continue
            if self.heard(daemon):
                if state.drop_at is not None:  # healed before anyone noticed
                    state.drop_at = None
                    state.gen += 1
                continue
            if state.drop_at is not None:
                continue
            if not self._reachable(name, server):
                delay = self._silence_noticed_s()
            elif not world.zk_servers[server][1]:
                delay = 0.0  # its process was killed: the connection resets
            else:
                delay = notice_s  # out of the quorum: it drops its clients once it knows
            state.drop_at = world.now + delay
            world.at(state.drop_at, self._drop, (name, state.gen))

    # --- kazoo's connection thread -------------------------------------------------------

    def _silence_noticed_s(self) -> float:
        """A silent server: the daemon's next call (its cycle) goes unanswered."""
        return self.rng.uniform(0.0, self.cycle_s) + self.call_s

    def _drop(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        state = self.state[name]
        if state.gen != gen or state.server is None:
            return
        world = self.world
        daemon = world.daemons[name]
        if self.heard(daemon):
            state.drop_at = None
            return
        world.log("zk", f"{name}'s connection to {world.zk_names[state.server]} dropped")
        state.server = None
        state.drop_at = None
        if daemon.running:
            self._search(name)
        world.coordination_changed()

    def _search(self, name: str) -> None:
        state = self.state[name]
        state.gen += 1
        state.searching = True
        state.sleep_s = CONNECTION_RETRY["delay"]
        self._round((name, state.gen))

    def _round(self, arg: tuple[str, int]) -> None:
        name, gen = arg
        state = self.state[name]
        if state.gen != gen:
            return
        state.order = self._shuffled()
        state.pos = 0
        self._walk(arg)

    def _walk(self, arg: tuple[str, int]) -> None:
        """Try the round's hosts from `pos` on, now: connect or move on; a silent host ends
        this walk until its connect times out."""
        name, gen = arg
        state = self.state[name]
        world = self.world
        if state.gen != gen:
            return
        if not world.daemons[name].running:  # frozen: it searches again once resumed
            state.searching = False
            return
        while state.pos < len(state.order):
            server = state.order[state.pos]
            state.pos += 1
            if not self._reachable(name, server):
                world.after(self.connect_s, self._walk, arg)
                return
            rtt_s = world.rtt_s(world.daemons[name].site, world.zk_servers[server][0])
            if world.zk_servers[server][1] and self.serving(server):
                world.after(rtt_s, self._connected, (name, gen, server))
                return
        delay = state.sleep_s * self.rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
        state.sleep_s = min(
            state.sleep_s * CONNECTION_RETRY["backoff"], CONNECTION_RETRY["max_delay"]
        )
        world.after(delay, self._round, arg)

    def _connected(self, arg: tuple[str, int, int]) -> None:
        name, gen, server = arg
        state = self.state[name]
        if state.gen != gen:
            return
        if not self.world.daemons[name].running:
            state.searching = False
            return
        if not (self.serving(server) and self._reachable(name, server)):
            self._walk((name, gen))  # it stopped serving meanwhile: on to the next host
            return
        self.attach(name, server)
        self.world.coordination_changed()

    def _reachable(self, name: str, server: int) -> bool:
        world = self.world
        return world.connected(name, world.zk_names[server])

    def _shuffled(self) -> list[int]:
        order = list(range(len(self.world.zk_names)))
        self.rng.shuffle(order)
        return order
