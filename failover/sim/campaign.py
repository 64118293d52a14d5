"""Chaos campaigns: many seeded runs of random fault schedules over one topology.

A campaign file names the topology, the run length, the rate of faults and their classes:
each class has a weight, a duration distribution and a fault template in which any field may
be a list (one item is drawn per fault). Run `seed + i` is the i-th run, so every failing run
replays alone with `--seed <its seed> --runs 1`.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from failover.config import ConfigError, Problem
from failover.config.load import load_mapping, pydantic_problems, read_text
from failover.core.policy import Engine
from failover.sim import faults
from failover.sim.faults import DaemonFault, inject
from failover.sim.playbook import FAULT_ADAPTER
from failover.sim.topology import Topology, load_topology, zookeeper_names
from failover.sim.world import EngineFactory, World

WARMUP_S = 30.0  # faults start after this


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(Strict):
    dist: Literal["uniform", "log_uniform", "exponential"] = "log_uniform"
    min_s: float = Field(gt=0)
    max_s: float = Field(gt=0)

    def draw(self, rng: random.Random) -> float:
        if self.dist == "uniform":
            return rng.uniform(self.min_s, self.max_s)
        if self.dist == "exponential":
            mean = (self.min_s + self.max_s) / 2
            return min(self.max_s, self.min_s + rng.expovariate(1 / mean))
        return math.exp(rng.uniform(math.log(self.min_s), math.log(self.max_s)))


class FaultClass(Strict):
    weight: float = Field(gt=0)
    duration: Duration | None = None
    fault: dict[str, Any]


class CampaignFile(Strict):
    title: str
    description: str = ""
    topology: str
    duration_s: float = Field(default=3600.0, gt=0)
    faults_per_hour: float = Field(gt=0)
    classes: dict[str, FaultClass] = Field(min_length=1)


@dataclass(frozen=True)
class Campaign:
    source: str
    spec: CampaignFile
    topology: Topology


def load_campaign(path: str | Path) -> Campaign:
    source = str(path)
    data = load_mapping(read_text(path), source)
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, pydantic_problems(exc)) from None
    topo_path = Path(spec.topology)
    if not topo_path.is_absolute():
        topo_path = Path(path).resolve().parent / topo_path
    try:
        topology = load_topology(topo_path)
    except ConfigError as exc:
        raise ConfigError(
            source, [Problem(f"topology ({spec.topology})", str(p)) for p in exc.problems]
        ) from None
    problems = []
    for name, cls in spec.classes.items():
        problems += _template_problems(f"classes.{name}.fault", cls.fault, topology)
    if problems:
        raise ConfigError(source, problems)
    return Campaign(source, spec, topology)


def _choices(template: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(template)
    lists = [v if _is_choice(k, v) else [v] for k, v in template.items()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]


def _is_choice(key: str, value: Any) -> bool:
    """A list is a choice, except `between`, which is a pair unless it is a list of pairs."""
    if not isinstance(value, list):
        return False
    return key != "between" or bool(value and isinstance(value[0], list))


def _template_problems(where: str, template: dict[str, Any], topology: Topology) -> list[Problem]:
    config = topology.config
    services = sorted({s for site in config.serving_sites for s in config.sites[site].services})
    problems: list[Problem] = []
    for option in _choices(template)[:200]:
        try:
            spec = FAULT_ADAPTER.validate_python(option)
        except ValidationError as exc:
            return [
                Problem(f"{where}.{p.path}" if p.path else where, p.message)
                for p in pydantic_problems(exc)
            ]
        for key, message in faults.problems(
            spec,
            list(config.sites),
            config.serving_sites,
            services,
            list(config.instances),
            list(config.groups),
            [name for name, _ in zookeeper_names(topology.world.zookeeper)],
        ):
            problem = Problem(f"{where}.{key}", message)
            if problem not in problems:
                problems.append(problem)
    return problems


@dataclass
class RunResult:
    seed: int
    violations: list[dict[str, Any]]
    switches: int
    false_failovers: int
    max_primary_overlap_s: float
    rto_s: list[float]
    unrecovered: int
    unavailable_s: float
    classes: list[str]
    events: int
    simulated_s: float
    trace: str = ""
    down_verdicts: int = 0  # times one observer's verdict on one target turned down


@dataclass
class Schedule:
    items: list[tuple[float, str, Any, float]] = field(default_factory=list)


def draw_schedule(campaign: Campaign, seed: int) -> Schedule:
    """The run's faults: Poisson arrivals, a class by weight, a template choice, a duration."""
    spec = campaign.spec
    rng = random.Random(f"schedule:{seed}")
    names = list(spec.classes)
    weights = [spec.classes[n].weight for n in names]
    options = {n: _choices(spec.classes[n].fault) for n in names}
    schedule = Schedule()
    rate = spec.faults_per_hour / 3600.0
    now = WARMUP_S + rng.expovariate(rate)
    while now < spec.duration_s:
        name = rng.choices(names, weights)[0]
        fault = FAULT_ADAPTER.validate_python(rng.choice(options[name]))
        cls = spec.classes[name]
        duration = cls.duration.draw(rng) if cls.duration else 0.0
        schedule.items.append((now, name, fault, duration))
        now += rng.expovariate(rate)
    return schedule


@dataclass(frozen=True)
class Noise:
    """Background probe loss that no fault stands for (see `Observers.set_ambient_loss`)."""

    loss: float = 0.0
    cross_site_only: bool = True
    skip_ahead: bool = True  # False: every lossy probe is an event (to compare against)

    def apply(self, world: World) -> None:
        world.observers.skip_ahead = self.skip_ahead
        if self.loss:
            world.observers.set_ambient_loss(self.loss, self.cross_site_only)


def _run_until(world: World, end: float) -> list[dict[str, Any]]:
    """Run; a simulator bug becomes a violation naming the seed that replays it."""
    try:
        world.run_until(end)
    except Exception as exc:
        return [
            {
                "at": round(world.now, 3),
                "name": "simulator_error",
                "message": f"{type(exc).__name__}: {exc}",
                "trace": world.lines[-40:],
            }
        ]
    return []


def run_one(
    campaign: Campaign,
    seed: int,
    engine_factory: EngineFactory | None = None,
    keep_trace: bool = False,
    noise: Noise | None = None,
) -> RunResult:
    world = World(campaign.topology, seed, engine_factory or Engine)
    if noise is not None:
        noise.apply(world)
    schedule = draw_schedule(campaign, seed)
    classes: list[str] = []
    restart_s = world.model.daemons.restart_s

    def start(item: tuple[float, str, Any, float]) -> None:
        _, name, fault, duration = item
        if name not in classes:
            classes.append(name)
        end = inject(world, fault, "")
        if isinstance(fault, DaemonFault) and fault.kind == "daemon_crash" and not duration:
            duration = restart_s
        if duration:
            world.after(duration, lambda _: end())

    for item in schedule.items:
        world.at(item[0], start, item)
    crashed = _run_until(world, campaign.spec.duration_s)
    return _result(world, seed, classes, crashed, keep_trace)


def _result(
    world: World, seed: int, classes: list[str], crashed: list[dict[str, Any]], keep_trace: bool
) -> RunResult:
    world.traffic.finish(world.now)
    episodes = world.traffic.episodes
    return RunResult(
        seed=seed,
        violations=[v.as_dict() for v in world.checker.violations] + crashed,
        switches=world.control.switches,
        false_failovers=world.checker.false_failovers,
        max_primary_overlap_s=world.checker.max_overlap_s,
        rto_s=[e.rto_s(world.now) for e in episodes if e.end is not None],
        unrecovered=sum(1 for e in episodes if e.end is None),
        unavailable_s=world.traffic.lost_s(None),
        classes=sorted(classes),
        events=world._seq,
        simulated_s=world.now,
        trace=world.trace() if keep_trace else "",
        down_verdicts=sum(1 for line in world.lines if " verdict " in line and " down" in line),
    )


def run_steady(
    topology: Topology, hours: float, seed: int, noise: Noise, keep_trace: bool = False
) -> RunResult:
    """One long run with no fault, only the noise: what a quiet production would see."""
    world = World(topology, seed)
    noise.apply(world)
    crashed = _run_until(world, hours * 3600.0)
    return _result(world, seed, [], crashed, keep_trace)


def _steady(job: tuple[Topology, float, int, Noise]) -> RunResult:
    return run_steady(*job)


def run_steady_split(
    topology: Topology, hours: float, seed: int, noise: Noise, pieces: int, jobs: int = 1
) -> list[RunResult]:
    """`hours` as `pieces` independent runs of hours/pieces each (seeds seed*1000 + i, so the
    same arguments give the same results however many processes run them), over `jobs`
    processes. Each piece starts from the steady state, as the long run does."""
    if pieces > 1000:
        raise ValueError(f"at most 1000 pieces (got {pieces})")
    work = [(topology, hours / pieces, seed * 1000 + i, noise) for i in range(pieces)]
    if jobs <= 1 or pieces <= 1:
        return [_steady(job) for job in work]
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(jobs, pieces)) as pool:
        return pool.map(_steady, work, chunksize=1)


_CAMPAIGN: Campaign | None = None


def _init(campaign: Campaign) -> None:
    global _CAMPAIGN
    _CAMPAIGN = campaign


def _work(job: tuple[int, bool]) -> RunResult:
    assert _CAMPAIGN is not None
    return run_one(_CAMPAIGN, job[0], keep_trace=job[1])


def run_campaign(
    campaign: Campaign,
    runs: int,
    seed: int = 1,
    jobs: int = 1,
    engine_factory: EngineFactory | None = None,
    keep_trace: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Runs `seed` .. `seed + runs - 1`, in order; over `jobs` processes when > 1.

    `on_result` is called with each run's result as it arrives, in order (for progress)."""
    seeds = list(range(seed, seed + runs))
    if jobs <= 1 or runs <= 1 or engine_factory is not None:
        return _collect(
            (run_one(campaign, s, engine_factory, keep_trace) for s in seeds), on_result
        )
    # spawn, not fork: a forked child of a process with threads (a test run, kazoo) can hang
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_init, initargs=(campaign,)) as pool:
        chunk = max(1, min(50, runs // (jobs * 8)))
        return _collect(
            pool.imap(_work, [(s, keep_trace) for s in seeds], chunksize=chunk), on_result
        )


def _collect(
    results: Iterable[RunResult], on_result: Callable[[RunResult], None] | None
) -> list[RunResult]:
    collected = []
    for result in results:
        collected.append(result)
        if on_result is not None:
            on_result(result)
    return collected


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return round(ordered[rank], 3)


def summarize(campaign: Campaign, results: list[RunResult], command: str) -> dict[str, Any]:
    rtos = [r for result in results for r in result.rto_s]
    coverage = {
        name: sum(1 for r in results if name in r.classes) for name in campaign.spec.classes
    }
    failing = [r for r in results if r.violations]
    runs = len(results)
    return {
        "title": campaign.spec.title,
        "runs": runs,
        "violations": sum(len(r.violations) for r in results),
        "false_failovers": sum(r.false_failovers for r in results),
        "max_primary_overlap_s": round(
            max((r.max_primary_overlap_s for r in results), default=0.0), 3
        ),
        "switches": sum(r.switches for r in results),
        "rto_s": {
            "p50": percentile(rtos, 50),
            "p95": percentile(rtos, 95),
            "p99": percentile(rtos, 99),
            "episodes": len(rtos),
            "unrecovered": sum(r.unrecovered for r in results),
        },
        "unavailable_s": round(sum(r.unavailable_s for r in results), 3),
        "coverage": coverage,
        "coverage_ok": all(count * 100 >= runs for count in coverage.values()),
        "simulated_s": round(sum(r.simulated_s for r in results), 3),
        "events": sum(r.events for r in results),
        "failing": [
            {
                "seed": r.seed,
                "violations": [v["name"] + ": " + v["message"] for v in r.violations],
                "replay": f"{command} --seed {r.seed} --runs 1",
            }
            for r in failing
        ],
    }
