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

Expressions: `METRIC[(GROUP)] OP VALUE [%|s] [within N s]`; metrics are listed in METRICS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from failover.config import ConfigError, Problem
from failover.config.load import load_yaml, pydantic_problems
from failover.sim import faults
from failover.sim.faults import FaultSpec
from failover.sim.topology import Topology, load_topology

METRICS = {
    "active": "the desired active site (steady), or `switching`",
    "phase": "the desired phase: steady, suspect, switching",
    "traffic": "the site most client traffic reaches, `split` or `none`",
    "leader": "the instance that leads and can act, or `none`",
    "switches": "switches started (all groups, or one: `switches(web)`)",
    "leader_changes": "how often leadership moved",
    "availability": "client requests that succeeded since the start, in %",
    "unavailable": "seconds of client requests lost",
    "rto": "the longest time from a fault to recovered client traffic, in s",
    "violations": "invariant violations",
    "false_failovers": "failovers while the active site had no fault",
}
TEXT_METRICS = ("active", "phase", "traffic", "leader")
FLAGS = ("no_dual_primary", "no_violations")
_EXPR = re.compile(
    r"^(?P<metric>[a-z_]+)(?:\((?P<group>[\w.-]+)\))?\s*(?P<op>==|!=|<=|>=|<|>)\s*"
    r"(?P<value>[\w.-]+)\s*(?P<unit>%|s)?(?:\s+within\s+(?P<within>\d+(?:\.\d+)?)\s*s)?$")
_STAYS = re.compile(r"^(?P<metric>active|traffic|leader)(?:\((?P<group>[\w.-]+)\))?\s+stays\s+"
                    r"(?P<value>[\w.-]+)$")
_ALERT = re.compile(r"^(?P<no>no\s+)?alert\s+(?P<value>[a-z_]+)$")


@dataclass(frozen=True, slots=True)
class Expr:
    text: str
    metric: str  # a METRICS key, a FLAGS entry, `alert` or `stays:<metric>`
    group: str | None = None
    op: str = "=="
    value: str = ""
    number: float | None = None
    within_s: float | None = None
    negate: bool = False


def parse_expr(text: str, groups: list[str], allow_within: bool = True) -> Expr:
    """One expression, or ValueError saying what is wrong with it."""
    text = " ".join(text.split())
    if text in FLAGS:
        return Expr(text, text)
    if match := _ALERT.match(text):
        return Expr(text, "alert", value=match["value"], negate=bool(match["no"]))
    if match := _STAYS.match(text):
        return Expr(text, f"stays:{match['metric']}", _group(match["group"], groups),
                    value=match["value"])
    match = _EXPR.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r}: expected `METRIC OP VALUE [within N s]`, "
                         f"`METRIC stays VALUE`, `alert CODE` or one of {', '.join(FLAGS)}")
    metric, op, value = match["metric"], match["op"], match["value"]
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
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
    if within is not None and (not allow_within or metric not in TEXT_METRICS or op != "=="):
        raise ValueError("`within` goes with `active|traffic|leader|phase == VALUE` in "
                         "expectations only")
    return Expr(text, metric, _group(match["group"], groups), op, value, number, within)


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
    start: str | None = Field(default=None, alias="from",
                              description="the method step `within` counts from")
    name: str | None = None


class PlaybookFile(Strict):
    title: str
    description: str = ""
    topology: str
    duration_s: float = Field(gt=0)
    steady_state: SteadyState = SteadyState()
    method: list[MethodStep] = Field(min_length=1)
    expectations: list[str | Expectation] = Field(min_length=1)
    abort: list[str] = []
    rollbacks: list[FaultSpec] = []


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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [Problem("", f"cannot read the file: {exc}")]) from None
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the top level must be a mapping")])
    try:
        spec = PlaybookFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, pydantic_problems(exc)) from None
    topo_path = Path(spec.topology)
    if not topo_path.is_absolute():
        topo_path = Path(path).resolve().parent / topo_path
    try:
        topology = load_topology(topo_path)
    except ConfigError as exc:
        raise ConfigError(source, [Problem(f"topology ({spec.topology})", str(p))
                                   for p in exc.problems]) from None
    return _check(source, spec, topology)


def _check(source: str, spec: PlaybookFile, topology: Topology) -> Playbook:
    config = topology.config
    groups = list(config.groups)
    problems: list[Problem] = []

    def expr(where: str, text: str, allow_within: bool = False) -> Expr | None:
        try:
            return parse_expr(text, groups, allow_within)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            return None

    steady = []
    for i, probe in enumerate(spec.steady_state.probes):
        parsed = expr(f"steady_state.probes.{i}.expect", probe.expect)
        if parsed:
            steady.append((probe, parsed))
    names = [step.name for step in spec.method]
    whens: dict[int, Expr] = {}
    services = sorted({s for site in config.serving_sites for s in config.sites[site].services})
    for i, step in enumerate(spec.method):
        if step.when is not None and (parsed := expr(f"method.{i}.when", step.when)):
            whens[i] = parsed
        for field, message in faults.problems(step.fault, list(config.sites),
                                              config.serving_sites, services,
                                              list(config.instances), groups):
            problems.append(Problem(f"method.{i}.fault.{field}", message))
    for i, action in enumerate(spec.rollbacks):
        for field, message in faults.problems(action, list(config.sites), config.serving_sites,
                                              services, list(config.instances), groups):
            problems.append(Problem(f"rollbacks.{i}.{field}", message))
    expectations = []
    for i, item in enumerate(spec.expectations):
        text = item if isinstance(item, str) else item.expect
        start = None if isinstance(item, str) else item.start
        name = text if isinstance(item, str) else (item.name or text)
        where = f"expectations.{i}" + ("" if isinstance(item, str) else ".expect")
        if start is not None and start not in names:
            problems.append(Problem(f"expectations.{i}.from",
                                    f"no method step is named {start!r}"))
        if parsed := expr(where, text, allow_within=True):
            expectations.append((name, parsed, start))
    aborts = tuple(p for i, text in enumerate(spec.abort) if (p := expr(f"abort.{i}", text)))
    if problems:
        raise ConfigError(source, problems)
    return Playbook(source, spec, topology, tuple(expectations), tuple(steady), whens, aborts)


FAULT_ADAPTER: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)
