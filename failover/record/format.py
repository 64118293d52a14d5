"""The recording's format: one header line per file, then one JSON line per leader cycle.

A cycle line holds what `Engine.step` and `Engine.command` were given (the start states, the
leader's `View`, the commands) and what the step returned (decisions, states, wake time).
Parts that did not change since the previous line of the same file are left out, so a
steady cluster costs a few dozen bytes per cycle; every file decodes on its own.

Keys of a cycle line: `k` cluster, `f` config fingerprint, `t` now, `term` and `by` (the
leadership), `s` start states (when not the previous line's `r`), `i` observer instances in
order, `o` their changed observations (full rows; `{at, rows}` when they share one time; only
the time when nothing else changed), `a` applied states, `g` sites whose agent holds a
session, `ga` when sessions went, `c` commands, `d` decisions, `r` resulting states,
`w` wake time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from failover.config import Config
from failover.core.codec import from_dict, to_dict
from failover.core.cycle import View
from failover.core.model import Applied, Command, GroupState, Observation, Step

FORMAT = 1
DecisionKey = tuple[str, str, str, int, str]  # group, kind, code, epoch, sentence


def config_document(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


def fingerprint(config: Config) -> str:
    """A short hash of the whole config (canonical JSON): which config made a decision."""
    text = json.dumps(config_document(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def header(config: Config, instance: str, version: str, opened: float) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "k": config.cluster.name,
        "f": fingerprint(config),
        "instance": instance,
        "version": version,
        "opened": opened,
        "config": config_document(config),
    }


def dump(line: Mapping[str, Any]) -> bytes:
    return json.dumps(line, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _obs_rows(observations: Sequence[Observation]) -> list[list[Any]]:
    return [[o.site, o.target, o.verdict, o.since, o.at, o.reason] for o in observations]


def _applied_rows(applied: Mapping[tuple[str, str], Applied]) -> list[list[Any]]:
    return [
        [a.group, a.site, a.epoch, a.announcement, a.at, a.verified, a.detail]
        for a in applied.values()
    ]


def _states(states: Mapping[str, GroupState]) -> dict[str, Any]:
    return {group: to_dict(state) for group, state in states.items()}


class Encoder:
    """Turns cycles into lines, leaving out what the previous line of the file already says."""

    def __init__(self, cluster: str, fingerprint: str) -> None:
        self.cluster = cluster
        self.fingerprint = fingerprint
        self.order: list[str] | None = None
        self.observations: dict[str, tuple[Observation, ...]] = {}
        self.rows: dict[str, list[list[Any]]] = {}  # instance -> rows without `at`
        self.applied: dict[tuple[str, str], Applied] | None = None
        self.agents: frozenset[str] | bool | None = False  # False: nothing written yet
        self.gone_at: dict[str, float] | None = None
        self.out: dict[str, GroupState] | None = None
        self.decisions: list[DecisionKey] | None = None

    def cycle(
        self,
        start: Mapping[str, GroupState],
        view: View,
        commands: Sequence[Command],
        step: Step,
        term: int,
        leader: str,
    ) -> dict[str, Any]:
        line: dict[str, Any] = {
            "k": self.cluster,
            "f": self.fingerprint,
            "t": view.now,
            "term": term,
            "by": leader,
        }
        if self.out is None or dict(start) != self.out:
            line["s"] = _states(start)
        by_instance: dict[str, list[Observation]] = {}
        for obs in view.observations:
            by_instance.setdefault(obs.instance, []).append(obs)
        order = list(by_instance)
        if order != self.order:
            line["i"] = order
            self.order = order
        changed: dict[str, Any] = {}
        for instance, seen in by_instance.items():
            now_seen = tuple(seen)
            if self.observations.get(instance) != now_seen:
                changed[instance] = self._observations(instance, now_seen)
                self.observations[instance] = now_seen
        for gone in [i for i in self.observations if i not in by_instance]:
            del self.observations[gone]
            self.rows.pop(gone, None)
        if changed:
            line["o"] = changed
        applied = dict(view.applied)
        if applied != self.applied:
            line["a"] = _applied_rows(applied)
            self.applied = applied
        if self.agents is False or view.agents != self.agents:
            line["g"] = None if view.agents is None else sorted(view.agents)
            self.agents = view.agents
        gone_at = dict(view.agents_gone_at)
        if gone_at != self.gone_at:
            line["ga"] = gone_at
            self.gone_at = gone_at
        if commands:
            line["c"] = [to_dict(c) for c in commands]
        decisions: list[DecisionKey] = [
            (d.group, d.kind, d.code, d.epoch, d.sentence) for d in step.decisions
        ]
        if decisions != self.decisions:
            line["d"] = decisions
            self.decisions = decisions
        if step.states != self.out:
            line["r"] = _states(step.states)
            self.out = dict(step.states)
        if step.wake_at is not None:
            line["w"] = step.wake_at
        return line

    def _observations(self, instance: str, seen: tuple[Observation, ...]) -> Any:
        """An instance's observations: only their time when nothing else changed (a
        heartbeat), their time and rows when they share one time, else full rows."""
        stamps = {o.at for o in seen}
        if len(stamps) != 1:
            self.rows.pop(instance, None)
            return _obs_rows(seen)
        at = stamps.pop()
        rows = [[o.site, o.target, o.verdict, o.since, o.reason] for o in seen]
        if self.rows.get(instance) == rows:
            return at
        self.rows[instance] = rows
        return {"at": at, "rows": rows}


@dataclass(frozen=True)
class Header:
    cluster: str
    fingerprint: str
    instance: str
    opened: float
    config: dict[str, Any]
    path: str


@dataclass(frozen=True)
class Cycle:
    """One recorded leader cycle, whole again: its inputs and the decisions it recorded."""

    header: Header
    line: int
    now: float
    term: int
    leader: str
    start: dict[str, GroupState]
    view: View
    commands: tuple[Command, ...]
    decisions: tuple[DecisionKey, ...]
    states: dict[str, GroupState]
    wake_at: float | None
    extra: dict[str, Any] = field(default_factory=dict)


class Decoder:
    """Undoes `Encoder` for one file; raises KeyError, TypeError or ValueError on bad lines."""

    def __init__(self, head: Header) -> None:
        self.header = head
        self.order: list[str] = []
        self.observations: dict[str, list[Observation]] = {}
        self.flat: tuple[Observation, ...] = ()
        self.applied: dict[tuple[str, str], Applied] = {}
        self.agents: frozenset[str] | None = None
        self.gone_at: dict[str, float] = {}
        self.out: dict[str, GroupState] | None = None
        self.decisions: tuple[DecisionKey, ...] = ()

    def cycle(self, raw: dict[str, Any], number: int) -> Cycle:
        head = self.header
        if raw["k"] != head.cluster or raw["f"] != head.fingerprint:
            raise ValueError(
                f"cluster {raw['k']!r} or fingerprint {raw['f']!r} is not the "
                f"header's ({head.cluster!r}, {head.fingerprint!r})"
            )
        now = float(raw["t"])
        if "s" in raw:
            start = {g: from_dict(GroupState, s) for g, s in raw["s"].items()}
        elif self.out is not None:
            start = dict(self.out)
        else:
            raise ValueError("the file's first cycle has no start states")
        dirty = False
        if "i" in raw:
            self.order = [str(i) for i in raw["i"]]
            dirty = True
        for instance, rows in raw.get("o", {}).items():
            if isinstance(rows, (int, float)):  # the same rows, a new time
                at = float(rows)
                self.observations[instance] = [
                    Observation(o.instance, o.site, o.target, o.verdict, o.since, at, o.reason)
                    for o in self.observations[instance]
                ]
            elif isinstance(rows, dict):
                at = float(rows["at"])
                self.observations[instance] = [
                    Observation(
                        instance, str(site), str(target), verdict, float(since), at, str(reason)
                    )
                    for site, target, verdict, since, reason in rows["rows"]
                ]
            else:
                self.observations[instance] = [
                    Observation(
                        instance,
                        str(site),
                        str(target),
                        verdict,
                        float(since),
                        float(at),
                        str(reason),
                    )
                    for site, target, verdict, since, at, reason in rows
                ]
            dirty = True
        if dirty:
            self.flat = tuple(o for i in self.order for o in self.observations[i])
        if "a" in raw:
            self.applied = {
                (str(g), str(s)): Applied(str(g), str(s), int(e), ann, float(at), bool(v), str(d))
                for g, s, e, ann, at, v, d in raw["a"]
            }
        if "g" in raw:
            self.agents = None if raw["g"] is None else frozenset(str(s) for s in raw["g"])
        if "ga" in raw:
            self.gone_at = {str(s): float(t) for s, t in raw["ga"].items()}
        if "d" in raw:
            self.decisions = tuple(
                (str(g), str(k), str(c), int(e), str(s)) for g, k, c, e, s in raw["d"]
            )
        if "r" in raw:
            self.out = {g: from_dict(GroupState, s) for g, s in raw["r"].items()}
        elif self.out is None:
            raise ValueError("the file's first cycle has no resulting states")
        view = View(now, self.flat, dict(self.applied), self.agents, dict(self.gone_at))
        commands = tuple(from_dict(Command, c) for c in raw.get("c", ()))
        wake = raw.get("w")
        return Cycle(
            head,
            number,
            now,
            int(raw["term"]),
            str(raw["by"]),
            start,
            view,
            commands,
            self.decisions,
            dict(self.out),
            None if wake is None else float(wake),
        )
