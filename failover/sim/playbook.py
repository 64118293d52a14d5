"""Game-day playbooks: a YAML file that reads like an acceptance test.

    title / description       what the game day shows
    topology                  the topology file it runs on (simulations/*.yaml)
    duration_s                how long the experiment runs
    steady_state              probes (expressions) that must hold before the method (and after,
                              with `after: true`)
    method                    faults and operator actions, each `at_s` or `when: <condition>`
                              (plus `delay_s`), with an optional `duration_s`
    expectations              `active == dc2 within 6 s`, `switches <= 1`, `no_dual_primary`,
                              `availability >= 99.5 %`, `alert frozen`, `active stays dc1`, ...
    abort                     conditions that stop the method and run the rollbacks at once
    rollbacks                 actions run when the method ends (every fault also ends)

Expressions: `METRIC[(ARGS)] OP VALUE [%|s] [within N s] [not before N s]
[between A s and B s]`, `METRIC stays VALUE`, `alert CODE`, `refused(switchover to SITE)
[naming CHECK, ...]`; docs/playbooks.md is the reference, generated from this module and the
fault models (`failover.sim.reference`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from failover.config import BgpSteering, Config, ConfigError, DnsSteering, Problem
from failover.config.load import load_mapping, pydantic_problems, read_text
from failover.config.model import split_host_port
from failover.sim import faults
from failover.sim.faults import FaultSpec
from failover.sim.topology import Topology, load_topology, zookeeper_names

METRICS = {
    "active": "the desired active site (steady), or `switching`",
    "phase": "the desired phase: steady, suspect, switching",
    "graceful": "a graceful switchover's stage: preparing, switching, draining, restoring, "
    "or `none`",
    "traffic": "the site most client traffic reaches, `split` or `none`",
    "leader": "the instance that leads and can act, or `none`",
    "switches": "switches started (all groups, or one: `switches(web)`)",
    "leader_changes": "how often leadership moved",
    "availability": "client requests that succeeded since the start, in %",
    "unavailable": "seconds of client requests lost",
    "rto": "the longest time from a fault to recovered client traffic, in s",
    "violations": "invariant violations",
    "false_failovers": "failovers while the active site had no fault",
    "announced": "what a site's routers announce for a BGP group: `announced(web, dc1)`",
    "dns": "the site a DNS group's name servers answer: `dns(mail)`, `dns(mail, 10.53.0.1)`",
    "dual_primary_s": "seconds two sites announced primary at once (all groups, or one)",
    "alerts": "alerts raised (each change of alert, as the audit trail keeps them)",
    "decisions": "decisions of one kind: `decisions(info)`, `decisions(desired)`, ...",
}
TEXT_METRICS = ("active", "phase", "graceful", "traffic", "leader", "announced", "dns")
COUNTED = ("switches", "alerts", "decisions")  # may be judged `between A s and B s`
KINDS = ("desired", "alert", "command", "info")
FLAGS = ("no_dual_primary", "no_violations")
_NUMBER = r"\d+(?:\.\d+)?"
_EXPR = re.compile(
    r"^(?P<metric>[a-z_]+)(?:\((?P<args>[\w., -]+)\))?\s*(?P<op>==|!=|<=|>=|<|>)\s*"
    r"(?P<value>[\w.-]+)\s*(?P<unit>%|s)?"
    rf"(?:\s+within\s+(?P<within>{_NUMBER})\s*s)?"
    rf"(?:\s+not\s+before\s+(?P<after>{_NUMBER})\s*s)?"
    rf"(?:\s+between\s+(?P<start>{_NUMBER})\s*s\s+and\s+(?P<end>{_NUMBER})\s*s)?$"
)
_STAYS = re.compile(
    r"^(?P<metric>active|traffic|leader)(?:\((?P<group>[\w.-]+)\))?\s+stays\s+"
    r"(?P<value>[\w.-]+)$"
)
_ALERT = re.compile(r"^(?P<no>no\s+)?alert\s+(?P<value>[a-z_]+)$")
_REFUSED = re.compile(
    r"^refused\((?P<kind>switchover|freeze|unfreeze)"
    r"(?:\s+to\s+(?P<site>[\w.-]+))?\)(?:\s+naming\s+(?P<checks>[\w, ]+))?$"
)


@dataclass(frozen=True, slots=True)
class Expr:
    text: str
    metric: str  # a METRICS key, a FLAGS entry, `alert`, `refused` or `stays:<metric>`
    group: str | None = None
    op: str = "=="
    value: str = ""
    number: float | None = None
    within_s: float | None = None
    negate: bool = False
    args: tuple[str, ...] = ()  # announced: (group, site); dns: (group[, server]); refused
    not_before_s: float | None = None  # the value must not hold earlier than this
    window: tuple[float, float] | None = None  # a count judged between these offsets


def parse_expr(text: str, groups: list[str], allow_within: bool = True) -> Expr:
    """One expression, or ValueError saying what is wrong with it."""
    text = " ".join(text.split())
    if text in FLAGS:
        return Expr(text, text)
    if match := _ALERT.match(text):
        return Expr(text, "alert", value=match["value"], negate=bool(match["no"]))
    if match := _STAYS.match(text):
        return Expr(
            text, f"stays:{match['metric']}", _group(match["group"], groups), value=match["value"]
        )
    if match := _REFUSED.match(text):
        checks = tuple(c for c in (match["checks"] or "").replace(",", " ").split() if c)
        return Expr(text, "refused", value=match["site"] or "", args=(match["kind"],) + checks)
    match = _EXPR.match(text)
    if not match:
        raise ValueError(
            f"cannot read {text!r}: expected `METRIC OP VALUE [within N s] "
            "[not before N s] [between A s and B s]`, `METRIC stays VALUE`, "
            "`alert CODE`, `refused(switchover to SITE) [naming CHECK, ...]` or "
            f"one of {', '.join(FLAGS)}"
        )
    metric, op, value = match["metric"], match["op"], match["value"]
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    args = tuple(a.strip() for a in (match["args"] or "").split(",") if a.strip())
    group, args = _arguments(metric, args, groups)
    number = None
    if metric in TEXT_METRICS:
        if op not in ("==", "!="):
            raise ValueError(f"{metric} compares with == or != only")
    else:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{metric} needs a number, got {value!r}") from None
    within = float(match["within"]) if match["within"] else None
    after = float(match["after"]) if match["after"] else None
    timed = within is not None or after is not None
    if timed and (not allow_within or metric not in TEXT_METRICS or op != "=="):
        raise ValueError(
            "`within` and `not before` go with `METRIC == VALUE` of "
            f"{', '.join(TEXT_METRICS)} in expectations only"
        )
    window = None
    if match["start"] is not None:
        window = (float(match["start"]), float(match["end"]))
        if not allow_within or metric not in COUNTED or window[0] > window[1]:
            raise ValueError(
                f"`between A s and B s` (A <= B) goes with {', '.join(COUNTED)} "
                "in expectations only"
            )
    return Expr(
        text, metric, group, op, value, number, within, args=args, not_before_s=after, window=window
    )


def _arguments(
    metric: str, args: tuple[str, ...], groups: list[str]
) -> tuple[str | None, tuple[str, ...]]:
    """(group, the other arguments) of `METRIC(ARGS)`, checked for the metric."""
    if metric == "decisions":
        if len(args) != 1 or args[0] not in KINDS:
            raise ValueError(f"decisions needs one kind: decisions({'|'.join(KINDS)})")
        return None, args
    if metric == "announced":
        if len(args) != 2:
            raise ValueError("announced needs a group and a site: announced(web, dc1)")
        return _group(args[0], groups), args[1:]
    if metric == "dns":
        if len(args) not in (1, 2):
            raise ValueError("dns needs a group, and may name a server: dns(mail, 10.53.0.1)")
        return _group(args[0], groups), args[1:]
    if len(args) > 1:
        raise ValueError(f"{metric} takes at most a group")
    return _group(args[0] if args else None, groups), ()


def _group(group: str | None, groups: list[str]) -> str | None:
    if group is not None and group not in groups:
        raise ValueError(f"unknown group {group!r} (groups: {', '.join(groups)})")
    return group


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SteadyProbe(Strict):
    name: str
    expect: str
    after: bool = False


class SteadyState(Strict):
    title: str = "steady state"
    probes: list[SteadyProbe] = []


class MethodStep(Strict):
    name: str | None = None
    at_s: float | None = Field(default=None, ge=0)
    when: str | None = None
    delay_s: float = Field(default=0.0, ge=0)
    fault: FaultSpec
    duration_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_trigger(self) -> MethodStep:
        if (self.at_s is None) == (self.when is None):
            raise ValueError("give exactly one of at_s and when")
        return self


class Expectation(Strict):
    expect: str
    start: str | None = Field(
        default=None, alias="from", description="the method step `within` counts from"
    )
    name: str | None = None


class PlaybookFile(Strict):
    title: str
    description: str = ""
    topology: str
    leader: str | None = Field(default=None, description="the instance that leads at the start")
    duration_s: float = Field(gt=0)
    steady_state: SteadyState = SteadyState()
    method: list[MethodStep] = Field(min_length=1)
    expectations: list[str | Expectation] = Field(min_length=1)
    abort: list[str] = []
    rollbacks: list[FaultSpec] = []


class _Outline(Strict):
    """The playbook with its lists unchecked, so that every item's errors are reported."""

    title: str
    description: str = ""
    topology: str
    leader: str | None = None
    duration_s: float = Field(gt=0)
    steady_state: SteadyState = SteadyState()
    method: list[dict[str, Any]] = Field(min_length=1)
    expectations: list[str | Expectation] = Field(min_length=1)
    abort: list[str] = []
    rollbacks: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Playbook:
    source: str
    spec: PlaybookFile
    topology: Topology
    expectations: tuple[tuple[str, Expr, str | None], ...]  # (name, expression, from-step)
    steady: tuple[tuple[SteadyProbe, Expr], ...]
    whens: dict[int, Expr]
    aborts: tuple[Expr, ...]

    @property
    def title(self) -> str:
        return self.spec.title


def load_playbook(path: str | Path) -> Playbook:
    source = str(path)
    data = load_mapping(read_text(path), source)
    problems: list[Problem] = []
    try:
        outline = _Outline.model_validate(data)
    except ValidationError as exc:
        problems += pydantic_problems(exc)
        outline = None
    for key, model in (("method", MethodStep), ("rollbacks", None)):
        items = data.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            try:
                if model is None:
                    FAULT_ADAPTER.validate_python(item)
                else:
                    model.model_validate(item)
            except ValidationError as exc:
                problems += [
                    Problem(f"{key}.{i}.{p.path}" if p.path else f"{key}.{i}", p.message)
                    for p in pydantic_problems(exc)
                ]
    topology = None
    if isinstance(data.get("topology"), str):
        topo_path = Path(data["topology"])
        if not topo_path.is_absolute():
            topo_path = Path(path).resolve().parent / topo_path
        try:
            topology = load_topology(topo_path)
        except ConfigError as exc:
            problems += [Problem(f"topology ({data['topology']})", str(p)) for p in exc.problems]
    if outline is not None and topology is not None:
        try:
            spec = PlaybookFile.model_validate(data)
        except ValidationError:
            spec = None
        problems += _check(source, spec, topology, outline, data)
        if not problems and spec is not None:
            return _build(source, spec, topology)
    raise ConfigError(source, problems or [Problem("", "invalid playbook")])


def _check(
    source: str,
    spec: PlaybookFile | None,
    topology: Topology,
    outline: _Outline,
    data: dict[str, Any],
) -> list[Problem]:
    """Names and expressions that the topology cannot resolve, each by its path."""
    config = topology.config
    groups = list(config.groups)
    problems: list[Problem] = []
    known = {
        "active": {*config.sites, "switching"},
        "traffic": {*config.sites, "split", "none"},
        "leader": {*config.instances, "none"},
        "phase": {"steady", "suspect", "switching"},
        "graceful": {"preparing", "switching", "draining", "restoring", "none"},
        "announced": {"primary", "held", "backup", "withdrawn"},
        "dns": {*config.sites},
    }

    def _expr(
        problems: list[Problem],
        where: str,
        text: str,
        groups: list[str],
        allow_within: bool = False,
    ) -> None:  # a name that can never match is an error
        parsed = _parse_or_say(problems, where, text, groups, allow_within)
        if parsed is None:
            return
        metric = parsed.metric.removeprefix("stays:")
        if metric in known and parsed.value not in known[metric]:
            problems.append(
                Problem(
                    where,
                    f"{metric} is never {parsed.value!r} here (one of "
                    f"{', '.join(sorted(known[metric]))})",
                )
            )
        problems.extend(Problem(where, message) for message in _resolve(parsed, config))

    chosen = config.instances.get(outline.leader or "")
    if outline.leader is not None and (chosen is None or "leader" not in chosen.roles):
        problems.append(
            Problem("leader", f"{outline.leader!r} is not an instance with the leader role")
        )
    for i, probe in enumerate(outline.steady_state.probes):
        _expr(problems, f"steady_state.probes.{i}.expect", probe.expect, groups)
    names = [step.get("name") for step in outline.method]
    services = sorted({s for site in config.serving_sites for s in config.sites[site].services})
    for key in ("method", "rollbacks"):
        for i, item in enumerate(getattr(outline, key)):
            if key == "method" and isinstance(item.get("when"), str):
                _expr(problems, f"method.{i}.when", item["when"], groups)
            fault = item.get("fault") if key == "method" else item
            try:
                parsed = FAULT_ADAPTER.validate_python(fault)
            except ValidationError:
                continue  # reported by the structural pass
            prefix = f"method.{i}.fault" if key == "method" else f"rollbacks.{i}"
            for field, message in faults.problems(
                parsed,
                list(config.sites),
                config.serving_sites,
                services,
                list(config.instances),
                groups,
                [name for name, _ in zookeeper_names(topology.world.zookeeper)],
            ):
                problems.append(Problem(f"{prefix}.{field}", message))
    for i, item in enumerate(outline.expectations):
        text = item if isinstance(item, str) else item.expect
        where = f"expectations.{i}" + ("" if isinstance(item, str) else ".expect")
        if (
            not isinstance(item, str)
            and item.start is not None
            and item.start.removesuffix(" end") not in names
        ):
            problems.append(
                Problem(
                    f"expectations.{i}.from",
                    f"no method step is named {item.start!r} (a step's name, "
                    "or its name and ` end` for when its fault ended)",
                )
            )
        _expr(problems, where, text, groups, allow_within=True)
    for i, text in enumerate(outline.abort):
        _expr(problems, f"abort.{i}", text, groups)
    return problems


def _resolve(expr: Expr, config: Config) -> list[str]:
    """What the topology cannot resolve in an expression's arguments."""
    found = []
    if expr.metric == "announced":
        steering = config.groups[expr.group or ""].steering
        if not isinstance(steering, BgpSteering):
            found.append(f"announced: group {expr.group} is not steered by BGP")
        elif expr.args[0] not in steering.sites:
            found.append(f"announced: {expr.args[0]!r} is not a site of group {expr.group}")
    if expr.metric == "dns":
        steering = config.groups[expr.group or ""].steering
        if not isinstance(steering, DnsSteering):
            found.append(f"dns: group {expr.group} is not steered by DNS")
        elif expr.args and expr.args[0] not in {
            split_host_port(server)[0] for server in steering.servers
        }:
            found.append(f"dns: {expr.args[0]!r} is not a name server of group {expr.group}")
    if expr.metric == "refused" and expr.value and expr.value not in config.serving_sites:
        found.append(f"refused: {expr.value!r} is not a serving site")
    return found


def _parse_or_say(
    problems: list[Problem], where: str, text: str, groups: list[str], allow_within: bool = False
) -> Expr | None:
    try:
        return parse_expr(text, groups, allow_within)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return None


def _build(source: str, spec: PlaybookFile, topology: Topology) -> Playbook:
    groups = list(topology.config.groups)
    steady = tuple(
        (probe, parse_expr(probe.expect, groups, False)) for probe in spec.steady_state.probes
    )
    whens = {
        i: parse_expr(step.when, groups, False)
        for i, step in enumerate(spec.method)
        if step.when is not None
    }
    expectations = []
    for item in spec.expectations:
        text = item if isinstance(item, str) else item.expect
        start = None if isinstance(item, str) else item.start
        name = text if isinstance(item, str) else (item.name or text)
        expectations.append((name, parse_expr(text, groups, True), start))
    aborts = tuple(parse_expr(text, groups, False) for text in spec.abort)
    return Playbook(source, spec, topology, tuple(expectations), steady, whens, aborts)


FAULT_ADAPTER: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)
