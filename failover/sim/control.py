"""The leader in the simulated world: it calls `Engine.step` on every change of its inputs and
at `Step.wake_at`, and `Engine.command` for operator commands; desired state is written only
while it leads. Observers live in `failover.sim.observers`, agents in `failover.sim.agents`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.core.agent import sessions_gone
from failover.core.cycle import View
from failover.core.freshness import Arrival, restamp
from failover.core.model import (
    Applied,
    CheckResult,
    Command,
    Decision,
    GroupState,
    Step,
)

if TYPE_CHECKING:
    from failover.sim.world import Daemon, World

OK = CheckResult(True, 0.0, "")


class Leadership:
    """The leader's cycle: read the coordinator's snapshot, step the engine, write."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.desired: dict[str, GroupState] = {}
        self.applied: dict[tuple[str, str], Applied] = {}
        self.commands: list[Command] = []
        self.last_step: Step | None = None
        self._pending = False
        self._wake: float | None = None
        self._said: dict[str, str] = {}
        self._reader: tuple[str | None, int | None] = (None, None)
        self._gone_at: dict[str, float] = {}
        self._arrivals: dict[str, Arrival] = {}
        self.switches = 0
        self.switch_log: list[tuple[float, str]] = []  # (time, group) of every switch started
        self.decision_log: list[tuple[float, Decision]] = []  # as the audit trail keeps them
        self.command_log: list[tuple[float, Command, tuple[Decision, ...]]] = []
        self.history: list[tuple[float, str, GroupState]] = []  # (time, code, state)

    def bootstrap(self) -> None:
        for group in self.world.config.groups:
            self.desired[group] = self.world.engine.initial(group, 0.0)
            self.history.append((0.0, "initial", self.desired[group]))

    def acting(self) -> Daemon | None:
        world = self.world
        if world.leader is None:
            return None
        daemon = world.daemons[world.leader]
        if daemon.running and daemon.connected and daemon.session == world.leader_session():
            return daemon
        return None

    def changed(self) -> None:
        """An input of the leader's cycle changed: run a cycle soon (coalesced)."""
        if not self._pending:
            self._pending = True
            self.world.after(self.world.model.daemons.react_s, self._cycle, None)

    def _cycle(self, _: object) -> None:
        self._pending = False
        self.step()

    def _timer(self, when: float) -> None:
        if self._wake == when:
            self._wake = None
            self.step()

    def submit(self, command: Command) -> bool:
        """An operator queues a command; False when the coordinator cannot take it."""
        if not self.world.quorum_ready:
            self.world.log("command", f"{command.kind} by {command.by} refused: no quorum")
            return False
        self.commands.append(command)
        target = f" to {command.site}" if command.site else ""
        self.world.log("command", f"{command.kind}{target} queued by {command.by}")
        self.changed()
        return True

    def agents(self) -> frozenset[str]:
        """Serving sites whose agent holds a session (its ephemeral member node exists)."""
        world = self.world
        return frozenset(
            site
            for site, name in world.agents.owner.items()
            if world.daemons[name].session in world.sessions
        )

    def view(self) -> View:
        """What the acting leader reads: observations restamped on its own clock, and when it
        first saw each site's agent gone (both forgotten when another daemon leads)."""
        world = self.world
        now = world.now
        reader = (world.leader, world.leader_session())
        if reader != self._reader:
            self._reader, self._gone_at, self._arrivals = reader, {}, {}
        agents = self.agents()
        self._gone_at = sessions_gone(self._gone_at, agents, world.serving, now)
        self._arrivals, observations = restamp(
            self._arrivals, world.observers.observations(now), now
        )
        return View(now, observations, dict(self.applied), agents, dict(self._gone_at))

    def step(self) -> None:
        leader = self.acting()
        if leader is None:
            return
        engine = self.world.engine
        while self.commands:
            command = self.commands.pop(0)
            step = engine.command(self.desired, command, self.view())
            self.command_log.append((self.world.now, command, step.decisions))
            self._commit(step, leader.name)
        self._commit(engine.step(self.desired, self.view()), leader.name)

    def _commit(self, step: Step, leader: str) -> None:
        world = self.world
        self.last_step = step
        changed = False
        for decision in step.decisions:
            if decision.kind in ("info", "alert"):
                said = f"{decision.kind}:{decision.code}"
                if self._said.get(decision.group) == said:
                    continue
                self._said[decision.group] = said
            else:
                self._said.pop(decision.group, None)
            self.decision_log.append((world.now, decision))
            world.log(decision.kind, f"{decision.group}: [{decision.code}] {decision.sentence}")
        for group, state in step.states.items():
            old = self.desired.get(group)
            if state is old or state == old:
                continue
            self.desired[group] = state
            changed = True
            if old is None or state.epoch != old.epoch:
                world.log(
                    "desired",
                    f"{group}: {state.active} {state.phase} epoch {state.epoch}"
                    f" by {state.by} ({state.code}) [leader {leader}]",
                )
                self.history.append((world.now, state.code, state))
                world.checker.on_desired(old, state, step)
                if old is not None and state.last_switch_at != old.last_switch_at:
                    self.switches += 1
                    self.switch_log.append((world.now, group))
            elif state.phase != old.phase:
                self.history.append((world.now, state.code, state))  # suspect and back
        if changed:
            world.agents.desired_changed()
        self._schedule_wake(step)

    def _schedule_wake(self, step: Step) -> None:
        world = self.world
        # An observation going stale matters only while some group is not quiet: with no
        # policy timer pending, a lapsing vote alone cannot move anything.
        stale = None if all(_quiet(s) for s in self.desired.values()) else step.stale_at
        times = [t for t in (step.wake_at, stale) if t is not None]
        if not times:
            return
        wake = min(times)
        if self._wake is not None and self._wake <= wake and self._wake > world.now:
            return
        self._wake = wake
        world.at(wake, self._timer, wake)

    def write_applied(self, applied: Applied) -> None:
        key = (applied.group, applied.site)
        if self.applied.get(key) != applied:
            self.applied[key] = applied
            self.changed()


def _quiet(state: GroupState) -> bool:
    return (
        state.phase == "steady"
        and state.suspect_since is None
        and state.scheduled is None
        and state.preferred_healthy_since is None
        and (state.override is None or state.override.until is None)
    )
