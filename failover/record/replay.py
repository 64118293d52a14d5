"""Replay recorded leader cycles through an `Engine`: faithfully, or under a candidate config.

Faithful: every cycle starts from its recorded states, runs its commands and the step under
the config the header recorded, and must give the recorded decisions (group, kind, code,
epoch, sentence), states and wake time; the first difference is a `Mismatch`.

Candidate: the first cycle starts from its recorded states; after that the candidate's own
states carry over from cycle to cycle (what it would have written), fed with the recorded
observations, applied states, sessions and commands. What the agents applied was of course
the recorded leader's doing, so a candidate's switch shows as desired, never as applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from failover.config import Config
from failover.core import Engine
from failover.core.model import Decision, GroupState, Step
from failover.record.format import Cycle, DecisionKey, fingerprint
from failover.record.read import LogError

RANK = {"desired": 0, "alert": 1, "command": 2, "info": 3}


class Mismatch(Exception):
    """The recorded config did not reproduce a recorded decision."""


@dataclass(frozen=True)
class Said:
    """One side's headline decision for a group in one cycle."""

    kind: str
    code: str
    sentence: str
    active: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "code": self.code,
            "sentence": self.sentence,
            "active": self.active,
        }


@dataclass(frozen=True)
class Difference:
    at: float
    group: str
    recorded: Said
    candidate: Said

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "group": self.group,
            "recorded": self.recorded.as_dict(),
            "candidate": self.candidate.as_dict(),
        }


FALSE_WITHIN_S = 30.0  # a failover away from a site healthy again this soon was not needed


@dataclass
class Summary:
    """Switches under one config: each (time, group, code, from, to, time-to-switch), and
    which failovers were false: away from a site the recorded observations show healthy again
    (by that config's rules) within `FALSE_WITHIN_S` of the switch."""

    switches: list[dict[str, Any]] = field(default_factory=list)
    _watching: list[dict[str, Any]] = field(default_factory=list)

    def check_recovered(self, engine: Engine, cycle: Cycle) -> None:
        """Mark failovers whose old site is healthy again in this cycle's observations."""
        self._watching = [s for s in self._watching if cycle.now - s["at"] <= FALSE_WITHIN_S]
        if not self._watching:
            return
        health = engine.assess(cycle.view)
        for switch in list(self._watching):
            if health[switch["group"]][switch["from"]].healthy:
                switch["false"] = True
                self._watching.remove(switch)

    def note(self, now: float, start: GroupState | None, out: GroupState) -> None:
        if (
            out.last_switch_at is None
            or out.last_switch_at != now
            or (start is not None and start.last_switch_at == now)
        ):
            return
        since = start.suspect_since if start is not None else None
        switch = {
            "at": now,
            "group": out.group,
            "code": out.code,
            "from": start.active if start is not None else None,
            "to": out.active,
            "time_to_switch_s": None if since is None else round(now - since, 3),
            "false": False,
        }
        self.switches.append(switch)
        if out.code == "failover" and switch["from"] is not None:
            self._watching.append(switch)

    def as_dict(self) -> dict[str, Any]:
        failovers = [s for s in self.switches if s["code"] == "failover"]
        times = [s["time_to_switch_s"] for s in failovers if s["time_to_switch_s"] is not None]
        return {
            "switches": len(self.switches),
            "failovers": len(failovers),
            "false_failovers": sum(1 for s in failovers if s["false"]),
            "time_to_switch_s": times,
            "each": self.switches,
        }


@dataclass
class Outcome:
    faithful: bool  # True: replayed under the recorded config(s)
    cycles: int = 0
    first: float | None = None
    last: float | None = None
    differences: list[Difference] = field(default_factory=list)
    recorded: Summary = field(default_factory=Summary)
    candidate: Summary = field(default_factory=Summary)
    # group -> [(time, recorded active/phase, candidate active/phase)] at each change
    timeline: dict[str, list[tuple[float, str, str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "faithful": self.faithful,
            "cycles": self.cycles,
            "from": self.first,
            "to": self.last,
            "differences": [d.as_dict() for d in self.differences],
            "recorded": self.recorded.as_dict(),
            "candidate": self.candidate.as_dict(),
        }


def recorded_config(cycle: Cycle) -> Config:
    try:
        return Config.model_validate(cycle.header.config)
    except ValidationError as exc:
        raise LogError(
            f"{cycle.header.path}: the recorded config does not validate with "
            f"this version: {exc.errors()[0]['msg']}"
        ) from None


def fits(candidate: Config, cycle: Cycle) -> None:
    """A candidate must be of the recorded cluster, with the same sites and groups."""
    head = cycle.header
    recorded = head.config
    if candidate.cluster.name != head.cluster:
        raise LogError(
            f"the candidate config is of cluster {candidate.cluster.name!r}, the "
            f"recording {head.path} of {head.cluster!r}"
        )
    for what in ("sites", "groups"):
        have = set(getattr(candidate, what))
        want = set(recorded.get(what, {}))
        if have != want:
            raise LogError(
                f"the candidate config does not fit {head.path}: {what} "
                f"{sorted(have)} where the recording has {sorted(want)}"
            )
    roles = {name: site.get("role", "serving") for name, site in recorded["sites"].items()}
    for name, site in candidate.sites.items():
        if site.role != roles[name]:
            raise LogError(
                f"the candidate config does not fit {head.path}: sites.{name}.role "
                f"is {site.role!r} where the recording has {roles[name]!r}"
            )


def run_cycle(
    engine: Engine, cycle: Cycle, states: dict[str, GroupState]
) -> tuple[Step, list[Decision]]:
    """What the leader's cycle does with the engine: commands first, then the step."""
    states = dict(states)
    said: list[Decision] = []
    for command in cycle.commands:
        step = engine.command(states, command, cycle.view)
        said += step.decisions
        for group, state in step.states.items():
            if states.get(group) != state:
                states[group] = state
    return engine.step(states, cycle.view), said


def keys(step: Step) -> tuple[DecisionKey, ...]:
    return tuple((d.group, d.kind, d.code, d.epoch, d.sentence) for d in step.decisions)


def headline(group: str, decisions: Iterable[tuple[str, str, str]], active: str) -> Said:
    mine = sorted((d for d in decisions), key=lambda d: RANK.get(d[0], 9))
    if not mine:
        return Said("-", "-", "(no decision)", active)
    kind, code, sentence = mine[0]
    return Said(kind, code, sentence, active)


def _describe(key: DecisionKey | None) -> str:
    if key is None:
        return "nothing"
    group, kind, code, epoch, sentence = key
    return f"{group} {kind} {code} epoch {epoch}: {sentence}"


def check_faithful(cycle: Cycle, step: Step) -> None:
    where = f"{cycle.header.path} line {cycle.line} (t={cycle.now:.3f})"
    got = keys(step)
    if got != cycle.decisions:
        pairs = enumerate(zip(got, cycle.decisions, strict=False))
        index = next((i for i, (a, b) in pairs if a != b), min(len(got), len(cycle.decisions)))
        want = cycle.decisions[index] if index < len(cycle.decisions) else None
        have = got[index] if index < len(got) else None
        raise Mismatch(
            f"{where}: decision {index + 1} differs: recorded {_describe(want)}; "
            f"replayed {_describe(have)}"
        )
    if step.states != cycle.states:
        group = next(
            g
            for g in sorted({*step.states, *cycle.states})
            if step.states.get(g) != cycle.states.get(g)
        )
        raise Mismatch(
            f"{where}: the resulting state of {group} differs: recorded "
            f"{cycle.states.get(group)}; replayed {step.states.get(group)}"
        )
    if step.wake_at != cycle.wake_at:
        raise Mismatch(
            f"{where}: the wake time differs: recorded {cycle.wake_at}; replayed {step.wake_at}"
        )


def replay(
    cycles: Iterable[Cycle],
    candidate: Config | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> Outcome:
    """Replay `cycles` (in time order); raises Mismatch (faithful only) or LogError."""
    outcome = Outcome(faithful=candidate is None)
    engines: dict[str, Engine] = {}
    candidate_engine = Engine(candidate) if candidate is not None else None
    own: dict[str, GroupState] | None = None
    reported: dict[str, tuple[Any, Any] | None] = {}
    for cycle in _window(cycles, start, end):
        engine = engines.get(cycle.header.fingerprint)
        if engine is None:
            engine = engines[cycle.header.fingerprint] = Engine(recorded_config(cycle))
            if candidate is not None:
                fits(candidate, cycle)
        outcome.cycles += 1
        outcome.first = cycle.now if outcome.first is None else outcome.first
        outcome.last = cycle.now
        _note(outcome.recorded, cycle.now, cycle.start, cycle.states)
        outcome.recorded.check_recovered(engine, cycle)
        if candidate_engine is None:
            step, _ = run_cycle(engine, cycle, cycle.start)
            check_faithful(cycle, step)
            for group, state in cycle.states.items():
                _timeline(outcome, cycle.now, group, state, state)
            continue
        before = own if own is not None else cycle.start
        step, said = run_cycle(candidate_engine, cycle, before)
        own = dict(step.states)
        _note(outcome.candidate, cycle.now, before, own)
        outcome.candidate.check_recovered(candidate_engine, cycle)
        _compare(outcome, cycle, step, said, reported)
    return outcome


def _window(cycles: Iterable[Cycle], start: float | None, end: float | None) -> Iterator[Cycle]:
    for cycle in cycles:
        if start is not None and cycle.now < start:
            continue
        if end is not None and cycle.now > end:
            break
        yield cycle


def _note(
    summary: Summary, now: float, start: dict[str, GroupState], out: dict[str, GroupState]
) -> None:
    for group, state in out.items():
        summary.note(now, start.get(group), state)


def _compare(
    outcome: Outcome,
    cycle: Cycle,
    step: Step,
    said: list[Decision],
    reported: dict[str, tuple[Any, Any] | None],
) -> None:
    for group, state in step.states.items():
        recorded_state = cycle.states.get(group)
        recorded_active = recorded_state.active if recorded_state else "-"
        rec = [(k, c, s) for g, k, c, _, s in cycle.decisions if g == group]
        cand = [(d.kind, d.code, d.sentence) for d in step.decisions if d.group == group]
        rec_key = (recorded_active, tuple((k, c) for k, c, _ in rec))
        cand_key = (state.active, tuple((k, c) for k, c, _ in cand))
        _timeline(outcome, cycle.now, group, recorded_state, state)
        if rec_key == cand_key:
            reported[group] = None
            continue
        if reported.get(group) == (rec_key, cand_key):
            continue
        reported[group] = (rec_key, cand_key)
        outcome.differences.append(
            Difference(
                cycle.now,
                group,
                headline(group, rec, recorded_active),
                headline(group, cand, state.active),
            )
        )


def _timeline(
    outcome: Outcome,
    now: float,
    group: str,
    recorded: GroupState | None,
    candidate: GroupState | None,
) -> None:
    line = outcome.timeline.setdefault(group, [])
    here = (_where(recorded), _where(candidate))
    if not line or line[-1][1:] != here:
        line.append((now, *here))


def _where(state: GroupState | None) -> str:
    if state is None:
        return "-"
    return state.active if state.phase == "steady" else f"{state.active} ({state.phase})"


def same_config(candidate: Config, cycle: Cycle) -> bool:
    return fingerprint(candidate) == cycle.header.fingerprint
