"""Shadow mode: a candidate config's decisions, in step with the live leader, read-only.

Each cycle reads what the leader reads (`Leader.read`: desired states, applied states,
agent sessions, observations restamped on this process's clock) and runs the candidate's
`Engine.step` on the shadow's own states. Those start as the live ones and then follow only
the candidate's decisions; an operator's change (a live state whose epoch moved and whose
`by` is not `auto`: a switchover, a freeze) is taken over, as the leader would have carried
it out under either config. Nothing is written and nothing is steered.

A group diverges when the shadow's active site (`active`) or phase (`phase`) is not the live
one; each start of a divergence counts once in `failover_shadow_divergences_total`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from failover.config import Config
from failover.coord import Coordinator
from failover.core.model import AUTO, GroupState
from failover.daemon.leader import Leader


@dataclass(frozen=True)
class Divergence:
    """A group starts (kind `active` or `phase`) or stops (kind None) diverging."""

    at: float
    group: str
    kind: str | None
    live: GroupState
    shadow: GroupState
    said: tuple[str, str]  # the shadow's headline decision: (code, sentence)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "group": self.group,
            "kind": self.kind or "agree",
            "live": {
                "active": self.live.active,
                "phase": self.live.phase,
                "epoch": self.live.epoch,
                "code": self.live.code,
                "reason": self.live.reason,
            },
            "shadow": {
                "active": self.shadow.active,
                "phase": self.shadow.phase,
                "code": self.said[0],
                "sentence": self.said[1],
            },
        }


class Shadow:
    def __init__(self, config: Config) -> None:
        self.reader = Leader(config)  # only its `read`: the leader's own view of the cluster
        self.engine = self.reader.engine
        self.states: dict[str, GroupState] = {}
        self.live_epochs: dict[str, int] = {}
        self.diverging: dict[str, str | None] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.cycles = 0

    @property
    def agree(self) -> bool:
        return all(kind is None for kind in self.diverging.values())

    def summary(self, now: float) -> dict[str, Any]:
        """What `failover status` shows of this shadow (announced in the coordinator)."""
        return {
            "agree": self.agree,
            "divergences": sum(self.counts.values()),
            "diverging": sorted(g for g, kind in self.diverging.items() if kind),
            "cycles": self.cycles,
            "at": now,
        }

    def close(self) -> None:
        self.reader.close()

    def step(self, coordinator: Coordinator, now: float) -> list[Divergence]:
        snap = self.reader.read(coordinator, now)
        for group, live in snap.states.items():
            operator = live.by != AUTO and live.epoch != self.live_epochs.get(group)
            if group not in self.states or operator:
                self.states[group] = live
            self.live_epochs[group] = live.epoch
        step = self.engine.step(self.states, snap.view)
        self.states = dict(step.states)
        self.cycles += 1
        found = []
        for group, live in snap.states.items():
            mine = self.states[group]
            kind = (
                "active"
                if live.active != mine.active
                else "phase"
                if live.phase != mine.phase
                else None
            )
            if kind == self.diverging.get(group, None):
                continue
            self.diverging[group] = kind
            if kind is not None:
                self.counts[(group, kind)] += 1
            said = next(
                (
                    (d.code, d.sentence)
                    for d in sorted(
                        (d for d in step.decisions if d.group == group),
                        key=lambda d: ("desired", "alert", "command", "info").index(d.kind),
                    )
                ),
                (mine.code, mine.reason),
            )
            found.append(Divergence(now, group, kind, live, mine, said))
        return found


class ShadowMetrics(Collector):
    """`failover_shadow_divergences_total{group,kind}`, `failover_shadow_agree`, cycles."""

    def __init__(self, shadow: Shadow) -> None:
        self.shadow = shadow

    def collect(self) -> Iterator[Metric]:
        shadow = self.shadow
        total = CounterMetricFamily(
            "failover_shadow_divergences",
            "Times the candidate "
            "config's decision started to differ from the live "
            "leader's, by group and kind (active, phase).",
            labels=["group", "kind"],
        )
        for group in shadow.engine.config.groups:
            for kind in ("active", "phase"):
                total.add_metric([group, kind], float(shadow.counts[(group, kind)]))
        yield total
        agree = GaugeMetricFamily(
            "failover_shadow_agree",
            "1 while the candidate config would have every group where the live leader has it.",
        )
        agree.add_metric([], 1.0 if shadow.agree else 0.0)
        yield agree
        cycles = CounterMetricFamily("failover_shadow_cycles", "Shadow cycles run.")
        cycles.add_metric([], float(shadow.cycles))
        yield cycles
