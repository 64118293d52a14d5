"""One daemon cycle over its roles, in their order; the runner and the simulator both drive it.

The agent goes first (its confirmation never waits behind the leader's). Then, on a live
session only, and unless the agent's call went unanswered in this cycle: the member node, the
observer's publish (a hook: the runner publishes beside the cycle), the election and the
leader's cycle. A coordinator error ends that part of the cycle and is reported; the next
cycle tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from failover.coord import (
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    Leadership,
    Member,
)
from failover.daemon.agent import Agent
from failover.daemon.leader import Leader

log = logging.getLogger("failover.daemon")


class Cycle:
    def __init__(
        self,
        coordinator: Coordinator,
        member: Member,
        leader: Leader | None,
        agent: Agent | None,
        *,
        publish: Callable[[float], None] | None = None,
        problem: Callable[[str], None] = log.warning,
        contain: bool = True,
    ) -> None:
        """`problem` hears each coordinator error; `contain` (the runner): a bug in the
        leader's part is logged, not raised, so that the agent's part keeps running."""
        self.coordinator = coordinator
        self.member = member
        self.leader = leader
        self.agent = agent
        self.publish = publish
        self.problem = problem
        self.contain = contain
        self.leadership: Leadership | None = None
        self.phases: dict[str, float] = {}  # the last cycle's seconds per part
        self.timers: dict[str, float | None] = {}  # the last cycle's timer per role

    def run(self, now: float) -> float | None:
        """One pass over the roles; returns the earliest timer any role asked for."""
        self.phases = {}
        self.timers = timers = {}
        if self.agent is not None:
            started = time.perf_counter()
            try:
                timers["agent"] = self.agent.cycle(self.coordinator, now)
            except CoordinatorError as exc:
                self.problem(f"agent: {exc}")
            self.phases["agent"] = time.perf_counter() - started
        if self.agent is not None and self.agent.unanswered:
            # Each call waits up to its own bound: after the cycle's sleep, a second call to a
            # server that stopped answering would reach the watchdog (1 s + 1 s + 1 s = 3 s)
            # and get the daemon killed, though nothing is stuck. The next cycle tries again.
            self.problem("coordinator unavailable: the agent's call went unanswered")
        elif self.coordinator.session_state() == "connected":
            try:
                timers["leader"] = self._coordinated(now)
            except CoordinatorUnavailable as exc:
                self.problem(f"coordinator unavailable: {exc}")
            except CoordinatorError as exc:
                self.problem(f"{type(exc).__name__}: {exc}")
            except Exception:  # a bug in the leader's part must not stop this site's agent
                if not self.contain:
                    raise
                log.exception("leader or observer cycle failed")
        elif self.leadership is not None:
            self.problem("session not connected: acting as leader no more")
            self.leadership = None
        times = [w for w in timers.values() if w is not None]
        return min(times) if times else None

    def _coordinated(self, now: float) -> float | None:
        self.coordinator.register(self.member)
        if self.publish is not None:
            self.publish(now)
        if self.leader is None:
            return None
        leadership = self.coordinator.campaign()
        if leadership != self.leadership:
            log.info(
                f"leading with term {leadership.term}" if leadership else "not leading",
                extra={"fields": {"term": leadership.term if leadership else None}},
            )
            self.leadership = leadership
        if leadership is None:
            return None
        wake_at = self.leader.cycle(self.coordinator, leadership, now)
        self.phases.update(self.leader.phases)
        return wake_at
