"""A playbook run live in the lab, judged by the simulator's expressions, scored against the
simulator's prediction for the same playbook and topology.

The run: the lab (`LiveStack`) steady on the preferred site with the predicted first leader
leading; the recorder samples from t = 0; each method step starts at its `at_s` (or when its
`when:` holds) and ends after its `duration_s`; aborts are watched; at `duration_s` the
expectations are judged (as the simulator judges them, at that instant); then every fault
ends, the rollbacks run, and `after: true` steady-state probes get up to `AFTER_S` to hold.

The score: every expectation's and steady-state probe's verdict equal to the prediction's, and
each key event (leader change, switch written, isp route moved, name servers answer the new
site) present in both or neither, within its tolerance of the predicted time.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from failover.live.faults import Injector, LiveFault, not_live
from failover.live.metrics import LiveMetrics
from failover.live.record import History, Recorder
from failover.live.stack import LiveStack
from failover.sim.faults import DaemonFault
from failover.sim.playbook import Playbook
from failover.sim.run import Outcome, Verdict, _expectations, run_playbook

AFTER_S = 60.0  # as the simulator's ROLLBACK_S: how long `after: true` probes may take
# How far a live key event may be from the predicted one (seconds), and why:
TOLERANCE_S = {
    "leader change": 3.0,  # session expiry (4 s) rounds to ZooKeeper ticks; one cycle
    "switch written": 3.0,  # checks run on their own phase; a cycle; the sampling (0.2 s)
    "isp route moved": 4.0,  # the model's BGP propagation is 1-3 s, BIRD's in the lab ms
    "name servers answer": 4.0,  # a cycle, the update, NOTIFY to the secondary, sampling
}


@dataclass
class Event:
    name: str
    predicted: float | None
    live: float | None
    tolerance_s: float

    @property
    def matched(self) -> bool:
        if self.predicted is None or self.live is None:
            return self.predicted is None and self.live is None
        return abs(self.predicted - self.live) <= self.tolerance_s + 1e-9

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "name": self.name,
            "predicted_s": r(self.predicted),
            "live_s": r(self.live),
            "tolerance_s": self.tolerance_s,
            "matched": self.matched,
        }


@dataclass
class LiveRun:
    """A live run: its verdicts, history and what happened along the way."""

    title: str
    expectations: list[Verdict]
    steady_state: list[Verdict]
    history: History
    metrics: LiveMetrics
    aborted: str | None
    wall_s: float

    @property
    def passed(self) -> bool:
        return (
            all(v.passed for v in self.expectations + self.steady_state)
            and not self.aborted
            and not self.metrics.found
        )


@dataclass
class Score:
    playbook: str
    title: str
    supported: bool
    why_not: list[str] = field(default_factory=list)
    live: LiveRun | None = None
    predicted: Outcome | None = None
    rows: list[tuple[str, Verdict | None, Verdict | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return (
            self.supported
            and self.live is not None
            and self.predicted is not None
            and all(
                p is not None and v is not None and p.passed == v.passed for _, p, v in self.rows
            )
            and all(e.matched for e in self.events)
        )

    @property
    def passed(self) -> bool:
        return self.live is not None and self.live.passed

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "playbook": self.playbook,
            "title": self.title,
            "live": self.supported,
            "not_supported_live": self.why_not,
        }
        if not self.supported or self.live is None or self.predicted is None:
            return out
        out.update(
            {
                "passed_live": self.live.passed,
                "passed_predicted": self.predicted.passed,
                "matched": self.matched,
                "rows": [
                    {
                        "name": name,
                        "predicted": p.as_dict() if p else None,
                        "live": v.as_dict() if v else None,
                        "matched": p is not None and v is not None and p.passed == v.passed,
                    }
                    for name, p, v in self.rows
                ],
                "events": [e.as_dict() for e in self.events],
                "violations_live": self.live.metrics.found,
                "aborted_live": self.live.aborted,
                "wall_s": round(self.live.wall_s, 1),
                "timeline_live": self.live.history.lines,
                "timeline_predicted": self.predicted.timeline,
            }
        )
        return out


def predicted_leader(outcome: Outcome) -> str | None:
    series = outcome.series["metrics"].series["leader"]
    return series[0][1] if series else None


def settle_leader(stack: LiveStack, wanted: str | None, say: Callable[[str], None]) -> None:
    """Make `wanted` lead (as the simulator's first leader): restart whoever leads instead,
    which sends it to the end of the election queue."""
    for _ in range(len(stack.daemons)):
        leader = stack.leader()
        if wanted is None or leader == wanted:
            return
        if leader is None:
            time.sleep(1.0)
            continue
        say(f"{leader} leads, {wanted} is to: restarting {leader}")
        stack.daemons[leader].stop()
        stack.daemons[leader].start()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and stack.leader() in (None, leader):
            time.sleep(0.2)
        stack.wait_healthy(timeout_s=30.0)


def run_live(
    playbook: Playbook, stack: LiveStack, say: Callable[[str], None] = lambda _: None
) -> LiveRun:
    """Run the playbook against a stack that is up and steady."""
    spec = playbook.spec
    began = time.monotonic()
    recorder = Recorder(stack)
    h = recorder.history
    injector = Injector(
        stack,
        recorder.now,
        lambda group: _active(recorder, group or next(iter(stack.config.groups))),
        stack.leader,
        recorder.log,
    )
    weights = dict(stack.topology.world.clients.weights)
    started: dict[str, float] = {}
    first_fault: list[float] = []
    waiting = dict(playbook.whens)
    pending = sorted((step.at_s, i) for i, step in enumerate(spec.method) if step.at_s is not None)
    enders: list[tuple[float, LiveFault, str]] = []
    steady: list[Verdict] = []
    aborted: str | None = None

    def snapshot(audit: bool = False) -> LiveMetrics:
        if audit:
            recorder.read_audit()
        with recorder.lock:
            copied = copy.copy(h)
            copied.lines = list(h.lines)
            copied.faults = list(injector.faults)
            copied.refusals = list(injector.refusals)
            copied.end = recorder.now()
            copied = copy.deepcopy(copied)
        return LiveMetrics(copied, stack.config, weights)

    def start(index: int) -> None:
        step = spec.method[index]
        if not first_fault:
            first_fault.append(recorder.now())
            metrics = snapshot()
            steady[:] = [Verdict(p.name, *metrics.holds(e)) for p, e in playbook.steady]
        recorder.log("step", step.name or step.fault.kind)
        name = step.name or f"#{index}"
        started[name] = recorder.now()
        fault = injector.inject(step.fault, step.name or "")
        duration = step.duration_s
        if isinstance(step.fault, DaemonFault) and step.fault.kind == "daemon_crash":
            duration = duration or stack.topology.world.daemons.restart_s
        if duration is not None and fault.end is None:
            enders.append((recorder.now() + duration, fault, name))

    # conditions on what only the audit trail shows: read it with every check
    uses_audit = any(
        e.metric in ("alert", "alerts", "decisions", "refused")
        for e in [*playbook.whens.values(), *playbook.aborts]
    )
    recorder.start()
    try:
        while recorder.now() < spec.duration_s:
            now = recorder.now()
            while pending and pending[0][0] <= now:
                start(pending.pop(0)[1])
            for when, fault, _ in enders:
                if when - fault.prepare_s <= now:
                    injector.get_ready(fault)  # a dark site's servers start before its power
            for item in [e for e in enders if e[0] <= recorder.now()]:
                enders.remove(item)
                started.setdefault(f"{item[2]} end", recorder.now())
                injector.end(item[1])
            if waiting or (first_fault and playbook.aborts):
                metrics = snapshot(audit=uses_audit)
                for index, expr in list(waiting.items()):
                    if metrics.holds(expr)[0]:
                        del waiting[index]
                        pending.append((now + spec.method[index].delay_s, index))
                        pending.sort()
                if first_fault and aborted is None:
                    for expr in playbook.aborts:
                        if metrics.holds(expr)[0]:
                            aborted = expr.text
                            recorder.log("abort", f"abort condition holds: {expr.text}")
                            break
                if aborted:
                    break
            time.sleep(0.1)
        metrics = snapshot(audit=True)
        verdicts = _expectations(playbook, metrics, started, first_fault[0] if first_fault else 0.0)
        say("rollback: every fault ends")
        injector.end_all()
        for action in spec.rollbacks:
            recorder.log("rollback", action.kind)
            injector.inject(action)
        after = [(p, e) for p, e in playbook.steady if p.after]
        deadline = recorder.now() + AFTER_S
        while after and recorder.now() < deadline:
            if all(snapshot(audit=True).holds(e)[0] for _, e in after):
                break
            time.sleep(0.5)
        final = snapshot(audit=True)
        steady += [Verdict(f"after: {p.name}", *final.holds(e)) for p, e in after]
    finally:
        injector.end_all()
        history = recorder.stop()
    history.faults = list(injector.faults)
    history.refusals = list(injector.refusals)
    metrics = LiveMetrics(history, stack.config, weights)
    return LiveRun(
        spec.title, verdicts, steady, history, metrics, aborted, time.monotonic() - began
    )


def _active(recorder: Recorder, group: str) -> str:
    with recorder.lock:
        series = recorder.history.desired.get(group, [])
        if series:
            return series[-1][1].active
    raise RuntimeError(f"no desired state of {group} recorded yet")


# --- key events --------------------------------------------------------------------------------

_BGP = re.compile(r"^\s*[\d.]+\s+bgp\s+(\S+) routers see (\S+) primary")


def _first_after(
    series: list[tuple[float, Any]], since: float, keep: Callable[[Any], bool]
) -> float | None:
    return next((t - since for t, v in series if t >= since - 1e-9 and keep(v)), None)


def routes_seen(outcome: Outcome) -> list[tuple[float, str]]:
    """(time, site) each time the simulated routers saw a site primary."""
    routes = []
    for line in outcome.timeline:
        match = _BGP.match(line)
        if match:
            routes.append((float(line.split()[0]), match.group(2)))
    return routes


def predicted_events(outcome: Outcome, playbook: Playbook) -> dict[str, float | None]:
    world = outcome.series["world"]
    metrics = outcome.series["metrics"]
    steps = [float(line.split()[0]) for line in outcome.timeline if line.split()[1] == "step"]
    since = steps[0] if steps else 0.0
    config = playbook.topology.config
    out: dict[str, float | None] = {}
    leaders = metrics.series["leader"]
    first = leaders[0][1] if leaders else None
    out["leader change"] = _first_after(leaders, since, lambda v: v is not None and v != first)
    switches = [(t, g) for t, g in world.control.switch_log]
    out["switch written"] = _first_after(switches, since, lambda _: True)
    initial = config.preferred_site(next(iter(config.groups)))
    routes = routes_seen(outcome)
    out["isp route moved"] = _first_after(routes, since, lambda v: v != initial)
    dns = [series for key, series in metrics.steering.items() if key[0] == "dns"]
    out["name servers answer"] = (
        _first_after(dns[0], since, lambda v: v not in (dns[0][0][1], "none")) if dns else None
    )
    return out


def live_events(run: LiveRun) -> dict[str, float | None]:
    h = run.history
    since = h.faults[0].start if h.faults else 0.0
    out: dict[str, float | None] = {}
    leaders = [(t, v) for t, v in h.leader]
    first = leaders[0][1] if leaders else None
    out["leader change"] = _first_after(leaders, since, lambda v: v is not None and v != first)
    out["switch written"] = _first_after(run.metrics.switch_log(), since, lambda _: True)
    initial = h.best[0][1][0] if h.best and h.best[0][1] else None
    out["isp route moved"] = _first_after(
        h.best, since, lambda v: v is not None and v[1] == "primary" and v[0] != initial
    )
    overall = [series for (group, server), series in h.dns.items() if server is None]
    out["name servers answer"] = (
        _first_after(overall[0], since, lambda v: v not in (overall[0][0][1], "none"))
        if overall
        else None
    )
    return out


def score(playbook: Playbook, source: str, run: LiveRun, predicted: Outcome) -> Score:
    result = Score(source, playbook.title, True, live=run, predicted=predicted)
    live = {v.name: v for v in run.expectations + run.steady_state}
    for v in predicted.steady_state + predicted.expectations:
        result.rows.append((v.name, v, live.pop(v.name, None)))
    for name, v in live.items():
        result.rows.append((name, None, v))
    expected, measured = predicted_events(predicted, playbook), live_events(run)
    # only what happened by the end of the experiment (the prediction runs on afterwards)
    horizon = playbook.spec.duration_s - (
        run.history.faults[0].start if run.history.faults else 0.0
    )

    def by_end(value: float | None) -> float | None:
        return value if value is not None and value <= horizon + 1e-9 else None

    for name, tolerance in TOLERANCE_S.items():
        result.events.append(
            Event(name, by_end(expected.get(name)), by_end(measured.get(name)), tolerance)
        )
    return result


def unsupported(playbook: Playbook, source: str) -> Score | None:
    why = not_live(playbook)
    return Score(source, playbook.title, False, why) if why else None


def gameday(
    playbook: Playbook,
    source: str,
    seed: int = 1,
    say: Callable[[str], None] = lambda _: None,
    stack: LiveStack | None = None,
) -> Score:
    """Predict, run live (building the lab unless `stack` is given) and score."""
    skipped = unsupported(playbook, source)
    if skipped is not None:
        return skipped
    predicted = run_playbook(playbook, seed)
    own = stack is None
    live_stack = stack or LiveStack(playbook.topology, leader_first=playbook.spec.leader is None)
    try:
        if own:
            live_stack.up(say=say)
        else:
            live_stack.fresh(say=say)
        settle_leader(live_stack, predicted_leader(predicted), say)
        live_stack.wait_steady(live_stack.config.preferred_site(live_stack.bgp_group), 30.0)
        live_stack.wait_healthy(timeout_s=30.0, every_vote=True)
        say(f"live run: {playbook.spec.duration_s:g} s")
        run = run_live(playbook, live_stack, say)
    finally:
        if own:
            say("lab: down")
            live_stack.down()
    return score(playbook, source, run, predicted)
