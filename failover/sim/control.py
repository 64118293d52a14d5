"""The daemons in the simulated world run the shipped roles: each process is a
`failover.daemon.roles.Cycle` over `failover.daemon.leader.Leader` and
`failover.daemon.agent.Agent`, publishing the verdicts of its
`failover.daemon.observer.Verdicts` (fed by `failover.sim.observers`), against its own
`SimClient` of the world's ZooKeeper, with simulated steerers (`failover.sim.steering`) and its
site's clock (`World.site_clock`, off while a `clock_skew` fault acts there; ZooKeeper's
sessions and the probe loop's monotonic clock keep the world's time).

Nothing here decides: a process cycles when its coordinator wakes it (a watch or a session
change), at the timers its roles return, and just before it is cut off or frozen (the worst
case of its periodic cycle: its agent confirmed at that very instant). The leader's DNS jobs
run as events `steering.apply_s` after they are submitted. What the leader committed (desired
states, audit records) is read back as history for the checker, the metrics and the trace.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from failover import __version__
from failover.coord.base import AuditRecord, CoordinatorError, Member
from failover.core.codec import from_dict
from failover.core.model import Announcement, Applied, Command, Decision, GroupState, Step
from failover.daemon.agent import Agent
from failover.daemon.leader import Leader
from failover.daemon.observer import Verdicts
from failover.daemon.roles import Cycle
from failover.sim.coordination import SimClient, StaleCommit
from failover.sim.jobs import SimWorker
from failover.sim.steering import SimRoute, SimZone

if TYPE_CHECKING:
    from failover.sim.world import Daemon, World

# The roles' log lines have no reader in the simulator (its trace is the record): without this,
# Python's last-resort handler would print their warnings.
logging.getLogger("failover").addHandler(logging.NullHandler())

TIMER_MARGIN_S = 0.001  # a process cycles this long after its roles' timer (as the runner)


class Process:
    """One incarnation of a daemon: a fresh client and fresh roles, as after a restart."""

    def __init__(self, control: Control, daemon: Daemon) -> None:
        world = control.world
        config = world.config
        steering = world.steering
        self.control = control
        self.world = world
        self.daemon = daemon
        self.gen = daemon.gen
        self.client = SimClient(
            world.store, daemon.name, config.cluster.zookeeper.session_timeout_s
        )
        site = daemon.site
        leader = None
        if "leader" in daemon.roles:
            zones = {
                g: SimZone(steering, g, site, self.soon)
                for g in steering.groups
                if not steering.bgp[g]
            }
            leader = Leader(
                config,
                zones,
                worker=SimWorker(self),
                clock=lambda: world.site_clock(site, world.now),
                engine=world.engine_factory(config),
            )
        agent = None
        if "agent" in daemon.roles and site in world.serving:
            routes = {
                g: SimRoute(steering, g, site, daemon.name, self.soon)
                for g in steering.groups
                if steering.bgp[g] and site in getattr(config.groups[g].steering, "sites", {})
            }
            agent = Agent(config, site, routes)
        self.verdicts: Verdicts | None = None
        if "observer" in daemon.roles:
            self.verdicts = Verdicts(
                config, daemon.name, world.observers.keys, self.soon, clock=lambda: world.now
            )
        member = Member(daemon.name, site, __version__, daemon.roles, world.now)
        self.cycle = Cycle(
            self.client,
            member,
            leader,
            agent,
            publish=self.publish,
            problem=_ignore,
            contain=False,
        )
        self.ready = True  # past the runner's first connect (`Control.started`)
        self.pending = False
        self.wake: float | None = None
        self.stale: StaleCommit | None = None  # a commit frozen on its way
        self.client.subscribe(self._woken)

    @property
    def alive(self) -> bool:
        return self.daemon.gen == self.gen and self.daemon.alive

    @property
    def live(self) -> bool:
        return self.alive and not self.daemon.paused

    def _woken(self, topic: str) -> None:
        if topic == "session":
            self.control.session_changed(self)
        self.soon()

    def soon(self) -> None:
        if not self.pending and self.live:
            self.pending = True
            self.world.after(self.world.model.daemons.react_s, self._soon, None)

    def _soon(self, _: object) -> None:
        self.pending = False
        self.run()

    def publish(self, now: float) -> None:
        """The cycle's publish hook, as the runner's (`Daemon._publish_due`), in the cycle."""
        verdicts = self.verdicts
        if verdicts is not None and verdicts.publish_due():
            verdicts.publish(self.client, now)
            world = self.world
            self.control.stamps[self.daemon.name] = world.now
            if world.observers.heartbeat_events:  # the next heartbeat's periodic cycle
                world.after(verdicts.heartbeat_s + 1e-9, self._periodic, verdicts.published_at)

    def _periodic(self, published_at: float) -> None:
        if self.verdicts is not None and self.verdicts.published_at == published_at:
            self.run()

    def heartbeat(self, last: bool = False) -> None:
        """What a periodic cycle would publish now, on a live session: the heartbeat if due
        (`failover.sim.observers` says when the simulator asks). `last`: the process is being
        killed; this was its last cycle (a frozen one has none: its client is paused)."""
        if self.verdicts is None or self.world.observers.heartbeat_events:
            return
        if not self.ready or not (self.live or (last and self.gen == self.daemon.gen)):
            return
        if self.client.session_state() != "connected":
            return
        with contextlib.suppress(CoordinatorError):  # as in a cycle: the next one tries again
            self.publish(self.world.site_clock(self.daemon.site, self.world.now))

    def _timer(self, when: float) -> None:
        if self.wake == when:
            self.wake = None
            self.run()

    def run(self) -> None:
        """One cycle of the roles, now (none before the runner's first connect ends)."""
        if not self.live or not self.ready:
            return
        world = self.world
        world.store.tick()  # the client's connection thread: what it sees now
        self.cycle.run(world.site_clock(self.daemon.site, world.now))
        # The agent's lease timer matters only once its session is not connected: until then
        # its periodic cycle confirms, and it cycles once more just before it is cut off or
        # frozen (`Control.before_cut`), the latest confirmation it can have.
        timers = self.cycle.timers
        wake = timers.get("leader")
        agent_wake = timers.get("agent")
        if agent_wake is not None and self.client.session_state() != "connected":
            wake = agent_wake if wake is None else min(wake, agent_wake)
        leader = self.cycle.leader
        if leader is not None and self.cycle.leadership is not None and leader.last_step:
            step = leader.last_step
            self.control.last_step = step
            # An observation going stale matters only while some group is not quiet: with
            # no policy timer pending, a lapsing vote alone cannot move anything (the
            # daemon's periodic cycle would find nothing to do).
            if step.stale_at is not None and not all(_quiet(s) for s in step.states.values()):
                wake = step.stale_at if wake is None else min(wake, step.stale_at)
        if wake is None:
            return
        # to the world's clock, and a little after, as the runner sleeps (`_sleep_until`): a
        # cycle at the very instant rounding may find its timer not quite due, and ask no more
        wake += world.now - world.site_clock(self.daemon.site, world.now) + TIMER_MARGIN_S
        if self.wake is not None and world.now < self.wake <= wake:
            return
        self.wake = wake
        world.at(wake, self._timer, wake)

    def stop(self) -> None:
        """The process ends (killed or powered off): its session is heard no more, its DNS
        jobs die with it; its routes stay as they are."""
        self.client.paused = True
        if self.client in self.world.store.clients:
            self.world.store.clients.remove(self.client)
        if self.cycle.leader is not None:
            self.cycle.leader.close()


class Control:
    """Every daemon's current process, and the history of what the leaders committed."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.processes: dict[str, Process] = {}
        self.operator: SimClient | None = None  # made at the first command
        self.last_step: Step | None = None
        self.leader: str | None = None  # the first contender of the election
        self.switches = 0
        self.switch_log: list[tuple[float, str]] = []  # (time, group) of every switch started
        self.decision_log: list[tuple[float, Decision]] = []  # as the audit trail keeps them
        self.command_log: list[tuple[float, Command, tuple[Decision, ...]]] = []
        self.history: list[tuple[float, str, GroupState]] = []  # (time, code, state)
        self.stamps: dict[str, float] = {}  # instance -> world time of its latest publish

    def bootstrap(self) -> None:
        """The cluster has run for long: desired state written, every site applied it."""
        world = self.world
        store = world.store
        for group in world.config.groups:
            state = world.engine.initial(group, 0.0)
            store.states[group] = (state, 0)
            self.history.append((0.0, "initial", state))
            for site in world.serving:
                announced = state.announcement(site, world.steering.backup[group])
                store.applied_states.setdefault(group, {})[site] = _applied(state, site, announced)
        world.steering.bootstrap(self.desired)
        for daemon in world.daemons.values():
            self.processes[daemon.name] = Process(self, daemon)

    # --- what the world asks -----------------------------------------------------------------

    @property
    def desired(self) -> dict[str, GroupState]:
        return {group: state for group, (state, _) in self.world.store.states.items()}

    def acting(self) -> Daemon | None:
        """The daemon that leads and can act: first in the election, on its live session."""
        store = self.world.store
        seq = store.leader_seq()
        if seq is None:
            return None
        name, sid = store.contenders[seq]
        process = self.processes.get(name)
        if (
            process is None
            or not process.live
            or process.client._session_id != sid
            or process.client.session_state() != "connected"
        ):
            return None
        return process.daemon

    def agents(self) -> frozenset[str]:
        """Serving sites whose agent holds a session (its ephemeral member node exists)."""
        serving = self.world.serving
        return frozenset(
            member.site
            for member, _ in self.world.store.members.values()
            if "agent" in member.roles and member.site in serving
        )

    def agent_owner(self, site: str) -> str | None:
        """The first instance that runs an agent at `site`."""
        for name, daemon in self.world.daemons.items():
            if daemon.site == site and "agent" in daemon.roles and site in self.world.serving:
                return name
        return None

    def agent_running(self, site: str) -> bool:
        """An agent of `site` runs its cycles (a process still waiting for its first session
        has not taken over its routes yet)."""
        return any(
            p.live and p.ready and p.cycle.agent is not None and p.daemon.site == site
            for p in self.processes.values()
        )

    def keep_alive_until(self, daemon: Daemon) -> float:
        agent = self.processes[daemon.name].cycle.agent
        return float("inf") if agent is None else agent.keep_alive_until()

    # --- wake-ups ----------------------------------------------------------------------------

    def session_changed(self, process: Process) -> None:
        daemon = process.daemon
        connected = process.client.session_state() == "connected"
        daemon.connected = connected
        if connected and not process.ready and process.live:
            process.ready = True  # the runner's connect returns; its first cycle follows

    def leader_changed(self) -> None:
        store = self.world.store
        seq = store.leader_seq()
        leader = None if seq is None else store.contenders[seq][0]
        if leader != self.leader:
            self.leader = leader
            self.world.log("leader", f"{leader} leads" if leader else "no leader")

    def start(self, first: str | None) -> None:
        """Every process has its first cycle now, `first` before the others (so it leads)."""
        world = self.world
        for process in self.processes.values():  # every member and observations node exists
            if process.live and process.client.session_state() == "connected":
                process.client.register(process.cycle.member)
                process.publish(world.site_clock(process.daemon.site, world.now))
        names = list(self.processes)
        if first is not None:
            names.remove(first)
            names.insert(0, first)
        for name in names:
            self.processes[name].run()

    # --- processes -------------------------------------------------------------------------

    def started(self, daemon: Daemon) -> None:
        """A new process, as the runner's `run`: it waits for its first session (`_connect`,
        bounded by the session timeout) before its first cycle; if none comes by then, it
        cycles without one and its client keeps trying."""
        process = Process(self, daemon)
        process.ready = False
        self.processes[daemon.name] = process
        timeout_s = self.world.config.cluster.zookeeper.session_timeout_s
        self.world.after(timeout_s, self._connect_ends, process)

    def _connect_ends(self, process: Process) -> None:
        if process.ready or not process.alive:
            return
        process.ready = True
        timeout_s = self.world.config.cluster.zookeeper.session_timeout_s
        self.world.log(
            "daemon",
            f"{process.daemon.name}: no ZooKeeper session within {timeout_s:g} s;"
            " cycling without one",
        )
        process.soon()

    def stopped(self, daemon: Daemon) -> None:
        """The process is killed: its periodic cycle may have published just before (that
        cycle's heartbeat is published now, a cycle late at most). The ensemble heard it last
        at its last packet (`Clients.last_packet`): its session runs out a session timeout
        after that."""
        process = self.processes[daemon.name]
        world = self.world
        client = process.client
        process.heartbeat(last=True)
        world.store.tick()  # heard until now, as things were
        if not client.paused and client.session_state() == "connected":
            last = world.zk.last_packet(daemon, client.connected_at, world.now)
            world.store.last_heard(client, last)
        process.stop()

    def resumed(self, daemon: Daemon) -> None:
        process = self.processes[daemon.name]
        process.client.paused = False
        process.client.before_commit = None
        if process.stale is not None:
            self.world.after(0.0, self._stale_commit, process)  # once its link is back
        process.soon()

    def stall(self, name: str) -> None:
        """`stale_writer`: the leader freezes at its next commit, between its read and the
        commit; once resumed, that commit reaches the coordinator as it was."""
        process = self.processes[name]
        process.client.before_commit = lambda commit: self._freeze(process, commit)
        self.world.log("daemon", f"{name} freezes at its next commit")

    def _freeze(self, process: Process, commit: StaleCommit) -> bool:
        process.client.before_commit = None
        if not process.live:
            return False
        process.stale = commit
        self.world.log(
            "daemon", f"{process.daemon.name} read the cluster; frozen before its commit"
        )
        self.world.pause(process.daemon.name)
        return True

    def _stale_commit(self, process: Process) -> None:
        """A resumed stale writer's commit, as it left before the freeze."""
        stale, process.stale = process.stale, None
        if stale is None or not process.live:
            return
        leadership, desired, results, audit = stale
        world = self.world
        world.store.tick()
        name = process.daemon.name
        try:
            process.client.commit(leadership, desired=desired, results=results, audit=audit)
        except CoordinatorError as exc:
            world.log("daemon", f"{name}'s stale commit refused: {type(exc).__name__}: {exc}")
            return
        world.log("daemon", f"{name}'s stale commit went through (term {leadership.term})")

    def before_cut(self, daemon: Daemon) -> None:
        """A connected process is about to be cut off or frozen: it just cycled (worst case)."""
        process = self.processes[daemon.name]
        if process.live and process.stale is None and process.client.session_state() == "connected":
            process.run()

    def submit(self, command: Command) -> bool:
        """An operator queues a command; False when the coordinator cannot take it."""
        world = self.world
        if self.operator is None:
            timeout_s = world.config.cluster.zookeeper.session_timeout_s
            self.operator = SimClient(world.store, "operator", timeout_s, "operator")
            self.operator.link_up = True
        world.store.tick()
        try:
            self.operator.submit(command)
        except CoordinatorError as exc:
            self.world.log("command", f"{command.kind} by {command.by} refused: {exc}")
            return False
        target = f" to {command.site}" if command.site else ""
        self.world.log("command", f"{command.kind}{target} queued by {command.by}")
        return True

    # --- what the leaders wrote --------------------------------------------------------------

    def committed(
        self,
        leader: str,
        before: dict[str, GroupState],
        desired: Sequence[tuple[GroupState, int]],
        audit: Sequence[AuditRecord],
    ) -> None:
        world = self.world
        now = world.now
        for record in audit:
            decision = from_dict(Decision, record.payload["decision"])
            self.decision_log.append((now, decision))
            world.log(decision.kind, f"{decision.group}: [{decision.code}] {decision.sentence}")
            raw = record.payload.get("command")
            if raw is not None:
                command = from_dict(Command, raw)
                last = self.command_log[-1] if self.command_log else None
                if last is not None and last[0] == now and last[1].id == command.id:
                    self.command_log[-1] = (now, command, (*last[2], decision))
                else:
                    self.command_log.append((now, command, (decision,)))
        for state, _ in desired:
            old = before.get(state.group)
            if old is None or state.epoch != old.epoch:
                world.log(
                    "desired",
                    f"{state.group}: {state.active} {state.phase} epoch {state.epoch}"
                    f" by {state.by} ({state.code}) [leader {leader}]",
                )
                self.history.append((now, state.code, state))
                world.checker.on_desired(old, state)
                if old is not None and state.last_switch_at != old.last_switch_at:
                    self.switches += 1
                    self.switch_log.append((now, state.group))
            elif state.phase != old.phase:
                self.history.append((now, state.code, state))  # suspect and back


def _applied(state: GroupState, site: str, announced: Announcement) -> Applied:
    return Applied(state.group, site, state.epoch, announced, 0.0, True, "bootstrap")


def _ignore(_: str) -> None:
    """A coordinator error ends that part of a cycle; the trace shows the session states."""


def _quiet(state: GroupState) -> bool:
    return (
        state.phase == "steady"
        and state.suspect_since is None
        and state.scheduled is None
        and state.preferred_healthy_since is None
        and (state.override is None or state.override.until is None)
    )
