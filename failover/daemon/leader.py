"""The leader role: read snapshots, run the core, write the outcome fenced, steer DNS.

One `cycle()` is: commands first (each consumed exactly once, with its effect, result and
audit in one fenced commit), then the policy step (changed desired states and the decisions
worth keeping, in one fenced commit), then DNS steering for groups whose epoch moved.
A deposed or suspended leader's commit fails in the coordinator; nothing here retries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from failover.config import Config
from failover.coord import (
    NO_NODE,
    AlreadyDone,
    AuditRecord,
    CommandResult,
    Coordinator,
    CoordinatorError,
    Leadership,
    malformed,
)
from failover.coord.snapshot import read_snapshot
from failover.core import Engine, View
from failover.core import agent as agent_rule
from failover.core.codec import to_dict
from failover.core.freshness import Arrival, restamp
from failover.core.model import Applied, Command, Decision, GroupState, SiteHealth, Step
from failover.daemon.second_factor import CommandSecondFactor
from failover.steer.base import Steerer

if TYPE_CHECKING:
    from failover.record.log import Recorder

log = logging.getLogger("failover.leader")
OK_CODES = {"accepted", "scheduled", "noted"}


class Job(Protocol):
    def done(self) -> bool: ...


class Worker(Protocol):
    """Runs the leader's DNS steering beside its cycle, one job at a time: a thread in the
    daemon (`ThreadWorker`), scheduled events in the simulator."""

    def submit(self, fn: Callable[..., None], /, *args: Any) -> Job: ...

    def close(self) -> None: ...


class ThreadWorker:
    """One worker thread; closing drops the jobs not started."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., None], /, *args: Any) -> Job:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Snapshot:
    """What the leader read at the start of a cycle."""

    now: float
    states: dict[str, GroupState]
    versions: dict[str, int]
    view: View
    commands: list[Command] = field(default_factory=list)


def health_summary(health: Mapping[str, Mapping[str, SiteHealth]]) -> dict[str, Any]:
    return {
        group: {
            site: {
                "situation": h.situation,
                "detail": h.detail,
                "down": list(h.down),
                "degraded": list(h.degraded),
                "votes": h.votes,
                "voters": h.voters,
            }
            for site, h in sites.items()
        }
        for group, sites in health.items()
    }


def decision_record(
    decision: Decision, step: Step, leadership: Leadership, now: float, **extra: Any
) -> AuditRecord:
    """An audit record that `failover explain` can read back: the decision and its inputs."""
    payload = {
        "decision": to_dict(decision),
        "leader": leadership.instance,
        "term": leadership.term,
        "health": health_summary(
            {decision.group: step.health[decision.group]} if decision.group in step.health else {}
        ),
        **extra,
    }
    return AuditRecord(kind=decision.kind, payload=payload, at=now)


class Leader:
    """`worker` runs the DNS steering (a thread unless given); `clock` stamps what it reports
    (wall time unless given); `engine`: the policy (the shipped one unless given: tests)."""

    def __init__(
        self,
        config: Config,
        dns: Mapping[str, Steerer] | None = None,
        *,
        worker: Worker | None = None,
        clock: Callable[[], float] = time.time,
        engine: Engine | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine = engine or Engine(config)
        self.dns = dict(dns or {})
        self.second_factor = CommandSecondFactor(config)
        self.recorded: dict[str, tuple[str, str]] = {}  # group -> (kind, code) last audited
        self.last_step: Step | None = None
        self.recorder: Recorder | None = None  # given each cycle's inputs and step, if set
        self.phases: dict[str, float] = {}  # the last cycle's seconds: read, decide, commit
        # On this leader's own clock: when it first saw each observer's latest stamp, and
        # when it first saw each serving site without an agent session.
        self.arrivals: dict[str, Arrival] = {}
        self.gone_at: dict[str, float] = {}
        # DNS updates run beside the cycle (they retry for seconds); one at a time.
        self._dns_worker: Worker | None = worker
        self._dns_job: Job | None = None

    def read(self, coordinator: Coordinator, now: float) -> Snapshot:
        cluster = read_snapshot(coordinator, list(self.config.groups))
        serving = self.config.serving_sites
        agents = cluster.agents(serving)
        self.gone_at = agent_rule.sessions_gone(self.gone_at, agents, serving, now)
        self.arrivals, observations = restamp(self.arrivals, cluster.observations, now)
        view = View(now, observations, cluster.applied, agents, dict(self.gone_at))
        return Snapshot(now, cluster.states, cluster.versions, view, cluster.commands)

    def cycle(self, coordinator: Coordinator, leadership: Leadership, now: float) -> float | None:
        """One leader cycle (`read`, then `act`); returns when a timer wants the next one
        (None: no timer)."""
        started = time.perf_counter()
        snap = self.read(coordinator, now)
        self.phases = {"read": time.perf_counter() - started}
        return self.act(coordinator, leadership, snap)

    def act(self, coordinator: Coordinator, leadership: Leadership, snap: Snapshot) -> float | None:
        """Everything after the read: commands, the policy step, its fenced commit, DNS. A
        leader deposed since it read `snap` (a stale writer) has its commit refused."""
        now = snap.now
        began = time.perf_counter()
        start = dict(snap.states)
        for command in snap.commands:
            self._command(coordinator, leadership, snap, command)
        step = self.engine.step(snap.states, snap.view)
        decided = time.perf_counter()
        self.phases["decide"] = decided - began
        self.last_step = step
        changed = [g for g, s in step.states.items() if snap.states.get(g) != s]
        recorded = dict(self.recorded)
        keep = [d for d in step.decisions if self._worth_keeping(d, recorded)]
        if changed or keep:
            result = coordinator.commit(
                leadership,
                desired=[(step.states[g], snap.versions[g]) for g in changed],
                audit=[decision_record(d, step, leadership, now) for d in keep],
            )
            snap.versions.update(result.versions)
            self.phases["commit"] = time.perf_counter() - decided
        self.recorded = recorded  # only once the decisions are in the audit trail
        for decision in keep:
            _log_decision(decision, epoch=decision.epoch)
        if self.dns and (self._dns_job is None or self._dns_job.done()):
            if self._dns_worker is None:
                self._dns_worker = ThreadWorker("dns")
            self._dns_job = self._dns_worker.submit(
                self._steer_dns, coordinator, dict(step.states), snap.view, now
            )
        if self.recorder is not None:
            self.recorder.record(start, snap.view, snap.commands, step, leadership)
        return step.wake_at

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self._dns_worker is not None:
            self._dns_worker.close()

    @staticmethod
    def _worth_keeping(decision: Decision, recorded: dict[str, tuple[str, str]]) -> bool:
        """Desired changes always; alerts and info once per change of code (no audit spam).
        `recorded` (group -> last audited kind and code) is updated as if this were kept."""
        key = (decision.kind, decision.code)
        if decision.kind != "desired" and recorded.get(decision.group) == key:
            return False
        recorded[decision.group] = key
        return True

    def _command(
        self, coordinator: Coordinator, leadership: Leadership, snap: Snapshot, command: Command
    ) -> None:
        problem = malformed(command)
        if problem is None:  # an operator's code checked (once only) and dropped
            command, problem = self.second_factor.check(coordinator, command, snap.now)
        if problem is not None:  # consumed as refused, so that it never blocks the queue
            self._refuse_malformed(coordinator, leadership, snap.now, command, problem)
            return
        step = self.engine.command(snap.states, command, snap.view)
        changed = [g for g, s in step.states.items() if snap.states.get(g) != s]
        outcomes = [d for d in step.decisions if d.kind == "command"]
        ok = bool(outcomes) and all(d.code in OK_CODES for d in outcomes)
        sentence = "; ".join(
            f"{d.group}: {d.sentence}" if d.group else d.sentence for d in outcomes
        )
        result = CommandResult(
            command.id,
            ok,
            outcomes[0].code if outcomes else "refused",
            sentence,
            snap.now,
            leadership.instance,
            leadership.term,
        )
        records = [
            decision_record(d, step, leadership, snap.now, command=to_dict(command))
            for d in step.decisions
        ]
        try:
            done = coordinator.commit(
                leadership,
                desired=[(step.states[g], snap.versions.get(g, NO_NODE)) for g in changed],
                results=[result],
                audit=records,
            )
        except AlreadyDone:
            return
        snap.versions.update(done.versions)
        for group in changed:
            snap.states[group] = step.states[group]
        for decision in step.decisions:
            _log_decision(decision, command=command.id, by=command.by)

    def _refuse_malformed(
        self,
        coordinator: Coordinator,
        leadership: Leadership,
        now: float,
        command: Command,
        problem: str,
    ) -> None:
        result = CommandResult(
            command.id, False, "refused", problem, now, leadership.instance, leadership.term
        )
        decision = Decision("", "command", "refused", problem, 0, command_id=command.id)
        record = AuditRecord(
            "command",
            {
                "decision": to_dict(decision),
                "leader": leadership.instance,
                "term": leadership.term,
                "command": to_dict(command),
            },
            now,
        )
        try:
            coordinator.commit(leadership, results=[result], audit=[record])
        except AlreadyDone:
            return
        log.warning(problem, extra={"fields": {"command": command.id, "code": "refused"}})

    def _steer_dns(
        self, coordinator: Coordinator, states: Mapping[str, GroupState], view: View, now: float
    ) -> None:
        try:
            self._steer_dns_now(coordinator, states, view)
        except CoordinatorError as exc:  # the report of what was applied: the next try reports
            log.warning(f"DNS steering: {exc}")
        except Exception:  # a worker's failure must be seen, and must not stop the next try
            log.exception("DNS steering failed")

    def _steer_dns_now(
        self, coordinator: Coordinator, states: Mapping[str, GroupState], view: View
    ) -> None:
        for group, steerer in self.dns.items():
            state = states.get(group)
            if state is None:
                continue
            done = [a for (g, _), a in view.applied.items() if g == group]
            if done and min(a.epoch for a in done) >= state.epoch and all(a.verified for a in done):
                continue
            result = steerer.apply(state)
            log.info(
                f"DNS for {group}: {result.outcome} at epoch {state.epoch}"
                + (f" ({result.detail})" if result.detail else ""),
                extra={"fields": {"group": group, "epoch": state.epoch, "outcome": result.outcome}},
            )
            if result.outcome in ("verified", "unverified"):
                for site in self.config.serving_sites:
                    coordinator.report_applied(
                        Applied(
                            group,
                            site,
                            state.epoch,
                            state.announcement(site),
                            self.clock(),
                            result.verified,
                            result.detail or result.outcome,
                        )
                    )


def _log_decision(decision: Decision, **fields: Any) -> None:
    """One decision as a log line: its sentence, with group, kind and code as fields."""
    log.info(
        decision.sentence,
        extra={
            "fields": {
                "group": decision.group,
                "kind": decision.kind,
                "code": decision.code,
                **fields,
            }
        },
    )
