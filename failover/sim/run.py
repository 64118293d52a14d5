"""Run a playbook in the simulated world and judge it: a timeline and a verdict per line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from failover.core.policy import Engine
from failover.sim.faults import DaemonFault, inject
from failover.sim.playbook import Expr, Playbook
from failover.sim.world import EngineFactory, World

ROLLBACK_S = 60.0  # how long the world runs after the rollbacks
TIMELINE_KINDS = (
    "fault",
    "desired",
    "bgp",
    "clients",
    "alert",
    "command",
    "leader",
    "route",
    "dns",
    "zk",
    "VIOLATION",
    "false",
    "daemon",
    "power",
    "abort",
    "rollback",
    "step",
    "info",
    "operator",
)


@dataclass
class Verdict:
    name: str
    passed: bool
    observed: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "observed": self.observed}


@dataclass
class Outcome:
    title: str
    seed: int
    passed: bool
    expectations: list[Verdict]
    steady_state: list[Verdict]
    switches: int
    rto_s: float | None
    availability: float
    unavailable_s: float
    violations: list[dict[str, Any]]
    aborted: str | None
    timeline: list[str]
    trace: str
    series: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seed": self.seed,
            "passed": self.passed,
            "expectations": [v.as_dict() for v in self.expectations],
            "steady_state": [v.as_dict() for v in self.steady_state],
            "switches": self.switches,
            "rto_s": None if self.rto_s is None else round(self.rto_s, 3),
            "availability": round(self.availability * 100, 4),
            "unavailable_s": round(self.unavailable_s, 3),
            "violations": self.violations,
            "aborted": self.aborted,
        }


class Metrics:
    """The values expressions speak of, read from the world at its `now`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.first = next(iter(world.config.groups))
        self.leader_changes = 0
        self._leader = self.acting()
        self._last_leader = self._leader
        self.alerts: list[str] = []
        self.series: dict[str, list[tuple[float, Any]]] = {"leader": [(0.0, self._leader)]}
        # what routers announce and name servers answer, as it changed: key -> [(t, value)]
        self.steering: dict[tuple[str, ...], list[tuple[float, str]]] = {}
        self._sample_steering()

    def _sample_steering(self) -> None:
        steering = self.world.steering
        now = self.world.now
        seen: dict[tuple[str, ...], str] = {
            ("announced", g, s): a for (g, s), a in steering.route.items() if steering.bgp[g]
        }
        seen.update({("dns", g): site for g, (site, _) in steering.dns.items()})
        for key, value in seen.items():
            series = self.steering.setdefault(key, [])
            if not series or series[-1][1] != value:
                series.append((now, value))

    def acting(self) -> str | None:
        daemon = self.world.control.acting()
        return daemon.name if daemon else None

    def watch(self) -> None:
        world = self.world
        self._sample_steering()
        leader = self.acting()
        if leader != self._leader:
            self._leader = leader
            self.series["leader"].append((world.now, leader))
            if leader is not None and leader != self._last_leader:
                self.leader_changes += 1
                self._last_leader = leader

    def value(self, expr: Expr) -> Any:
        world = self.world
        group = expr.group or self.first
        metric = expr.metric
        if metric == "active":
            state = world.control.desired[group]
            return state.active if state.phase != "switching" else "switching"
        if metric == "phase":
            return world.control.desired[group].phase
        if metric == "graceful":
            plan = world.control.desired[group].graceful
            return plan.stage if plan else "none"
        if metric == "traffic":
            return world.traffic.top(group)
        if metric == "leader":
            return self.acting() or "none"
        if metric == "switches":
            log = world.control.switch_log
            return len([g for _, g in log if expr.group in (None, g)])
        if metric == "leader_changes":
            return self.leader_changes
        if metric == "availability":
            return round(world.traffic.availability(expr.group) * 100, 4)
        if metric == "unavailable":
            return round(world.traffic.lost_s(expr.group), 3)
        if metric == "rto":
            return round(max((e.rto_s(world.now) for e in world.traffic.episodes), default=0.0), 3)
        if metric == "violations":
            return len(world.checker.violations)
        if metric == "false_failovers":
            return world.checker.false_failovers
        if metric == "announced":
            return world.steering.route[(group, expr.args[0])]
        if metric == "dns":
            return world.steering.dns[group][0]
        if metric == "dual_primary_s":
            return round(world.checker.dual_primary_s(expr.group), 3)
        if metric in ("alerts", "decisions", "switches"):
            return len(self.counted(expr))
        raise AssertionError(metric)

    def counted(self, expr: Expr, window: tuple[float, float] | None = None) -> list[float]:
        """When each counted event happened (switches, alerts, decisions of a kind), only
        those in `window` (absolute times) if given."""
        control = self.world.control
        if expr.metric == "switches":
            times = [t for t, g in control.switch_log if expr.group in (None, g)]
        else:
            kind = "alert" if expr.metric == "alerts" else expr.args[0]
            times = [
                t
                for t, d in control.decision_log
                if d.kind == kind and expr.group in (None, d.group)
            ]
        if window is not None:
            times = [t for t in times if window[0] - 1e-9 <= t <= window[1] + 1e-9]
        return times

    def refused(self, expr: Expr) -> tuple[bool, str]:
        """`refused(switchover to dc2) [naming CHECK, ...]`: such a command was refused, and
        its failed pre-checks include every check named."""
        kind, wanted = expr.args[0], set(expr.args[1:])
        seen = []
        for _, command, decisions in self.world.control.command_log:
            if command.kind != kind or (expr.value and command.site != expr.value):
                continue
            for decision in decisions:
                if decision.code != "refused":
                    continue
                failed = {c.name for c in decision.checks if not c.passed}
                seen.append(", ".join(sorted(failed)) or decision.sentence)
                if wanted <= failed:
                    return True, f"refused: {seen[-1]}"
        return False, ("refused only for " + "; ".join(seen)) if seen else "not refused"

    def holds(self, expr: Expr) -> tuple[bool, str]:
        """Whether an expression without `within` holds now, and what was observed."""
        world = self.world
        if expr.metric == "no_dual_primary":
            bad = [
                v for v in world.checker.violations if v.name in ("primary_overlap", "dual_active")
            ]
            return not bad, f"{len(bad)} dual-primary violation(s)"
        if expr.metric == "no_violations":
            names = [v.name for v in world.checker.violations]
            return not names, ", ".join(names) or "none"
        if expr.metric == "alert":
            raised = expr.value in self.alerts
            return raised != expr.negate, "raised" if raised else "not raised"
        if expr.metric == "refused":
            return self.refused(expr)
        if expr.metric.startswith("stays:"):
            values = self._history(expr.metric[6:], expr.group)
            seen = list(dict.fromkeys(v for _, v in values))
            return seen == [expr.value], " -> ".join(str(v) for v in seen)
        value = self.value(expr)
        if expr.number is not None:
            ok = _compare(float(value), expr.op, expr.number)
        else:
            ok = (value == expr.value) == (expr.op == "==")
        unit = (
            " %"
            if expr.metric == "availability"
            else (" s" if expr.metric in ("unavailable", "rto", "dual_primary_s") else "")
        )
        return ok, f"{value}{unit}"

    def timed(self, expr: Expr, since: float) -> tuple[bool, str]:
        """`within N s`, `not before N s` (from `since`), or a count `between A s and B s`."""
        if expr.window is not None:
            window = (since + expr.window[0], since + expr.window[1])
            count = len(self.counted(expr, window))
            assert expr.number is not None
            return _compare(count, expr.op, expr.number), f"{count} in the window"
        first = next(
            (
                when
                for when, value in self._history(expr.metric, expr.group, expr.args)
                if value == expr.value and when >= since - 1e-9
            ),
            None,
        )
        if first is None:
            return False, f"not by the end (now {self.value(expr)})"
        took = first - since
        ok = (expr.within_s is None or took <= expr.within_s + 1e-9) and (
            expr.not_before_s is None or took >= expr.not_before_s - 1e-9
        )
        return ok, f"after {took:.1f} s"

    def _history(
        self, metric: str, group: str | None, args: tuple[str, ...] = ()
    ) -> list[tuple[float, Any]]:
        world = self.world
        group = group or self.first
        if metric == "announced":
            return list(self.steering.get(("announced", group, args[0]), []))
        if metric == "dns":
            return list(self.steering.get(("dns", group), []))
        if metric in ("active", "phase", "graceful"):
            out: list[tuple[float, Any]] = []
            for when, _, state in world.control.history:
                if state.group != group:
                    continue
                if metric == "phase":
                    out.append((when, state.phase))
                elif metric == "graceful":
                    out.append((when, state.graceful.stage if state.graceful else "none"))
                else:
                    out.append((when, state.active if state.phase != "switching" else "switching"))
            return out
        if metric == "traffic":
            return list(world.traffic.top_series[group])
        return [(t, v or "none") for t, v in self.series["leader"]]


@dataclass
class RunState:
    aborted: str | None = None
    done: bool = False


def _compare(left: float, op: str, right: float) -> bool:
    return {
        "==": left == right,
        "!=": left != right,
        "<=": left <= right,
        ">=": left >= right,
        "<": left < right,
        ">": left > right,
    }[op]


def _expectations(
    playbook: Playbook, metrics: Metrics, started: dict[str, float], base: float
) -> list[Verdict]:
    """Each expectation's verdict; `within` counts from its `from:` step (else the first
    fault)."""
    verdicts = []
    for name, expr, since in playbook.expectations:
        if expr.within_s is not None or expr.not_before_s is not None or expr.window:
            ref = started.get(since, base) if since else base
            verdicts.append(Verdict(name, *metrics.timed(expr, ref)))
        else:
            verdicts.append(Verdict(name, *metrics.holds(expr)))
    return verdicts


def run_playbook(
    playbook: Playbook,
    seed: int = 1,
    engine_factory: EngineFactory | None = None,
) -> Outcome:
    world = World(
        playbook.topology,
        seed,
        engine_factory or Engine,
        leader=playbook.spec.leader,
    )
    spec = playbook.spec
    metrics = Metrics(world)
    enders: list[Callable[[], None]] = []
    started: dict[str, float] = {}
    first_fault: list[float] = []
    state = RunState()
    waiting = dict(playbook.whens)
    steady = [
        Verdict(p.name, *metrics.holds(e)) for p, e in playbook.steady if p.name
    ]  # checked again at the first fault

    def start(index: int) -> None:
        if state.aborted or state.done:
            return
        step = spec.method[index]
        fault = step.fault
        duration = step.duration_s
        if isinstance(fault, DaemonFault) and fault.kind == "daemon_crash" and duration is None:
            duration = world.model.daemons.restart_s
        if not first_fault:
            first_fault.append(world.now)
            steady[:] = [Verdict(p.name, *metrics.holds(e)) for p, e in playbook.steady]
        world.log("step", f"{step.name or fault.kind}")
        name = step.name or f"#{index}"
        started[name] = world.now
        undo = inject(world, fault, step.name or "")

        def end() -> None:  # `from: NAME end` counts from here
            started.setdefault(f"{name} end", world.now)
            undo()

        enders.append(end)
        if duration is not None:
            world.after(duration, _call, end)

    def watch() -> None:
        metrics.watch()
        for index, expr in list(waiting.items()):
            if metrics.holds(expr)[0]:
                del waiting[index]
                world.after(spec.method[index].delay_s, start, index)
        if first_fault and not state.aborted and not state.done:
            for expr in playbook.aborts:
                if metrics.holds(expr)[0]:
                    state.aborted = expr.text
                    world.log("abort", f"abort condition holds: {expr.text}")
                    rollback()
                    break

    def rollback() -> None:
        for end in enders:
            end()
        for action in spec.rollbacks:
            world.log("rollback", action.kind)
            inject(world, action)

    from failover.sim.report import Recorder

    recorder = Recorder(world)
    world.watchers.append(watch)
    world.watchers.append(recorder.sample)
    world.watchers.append(lambda: _collect_alerts(world, metrics))
    for index, step in enumerate(spec.method):
        if step.at_s is not None:
            world.at(step.at_s, start, index)
    world.run_until(spec.duration_s)
    world.traffic.finish(world.now)
    verdicts = _expectations(playbook, metrics, started, first_fault[0] if first_fault else 0.0)
    switches = world.control.switches
    episodes = world.traffic.episodes
    rto = max((e.rto_s(world.now) for e in episodes), default=None)
    availability = world.traffic.availability(None)
    unavailable = world.traffic.lost_s(None)
    state.done = True
    if not state.aborted:
        world.after(0.0, _call, rollback)
    world.run_until(spec.duration_s + ROLLBACK_S)
    steady += [
        Verdict(f"after: {p.name}", *metrics.holds(e)) for p, e in playbook.steady if p.after
    ]
    violations = [v.as_dict() for v in world.checker.violations]
    passed = (
        all(v.passed for v in verdicts)
        and all(v.passed for v in steady)
        and not state.aborted
        and not violations
    )
    timeline = [line for line in world.lines if line.split()[1] in TIMELINE_KINDS]
    return Outcome(
        spec.title,
        seed,
        passed,
        verdicts,
        steady,
        switches,
        rto,
        availability,
        unavailable,
        violations,
        state.aborted,
        timeline,
        world.trace(),
        series={
            "world": world,
            "metrics": metrics,
            "recorder": recorder,
            "end": spec.duration_s + ROLLBACK_S,
        },
    )


def _call(action: Callable[[], None]) -> None:
    action()


def _collect_alerts(world: World, metrics: Metrics) -> None:
    step = world.control.last_step
    if step is None:
        return
    for decision in step.decisions:
        if decision.kind == "alert" and decision.code not in metrics.alerts:
            metrics.alerts.append(decision.code)
