"""Prometheus metrics of one daemon, in a registry the daemon owns (never the global one).

Probe latencies are observed as results arrive (the observer's hook); everything else is
read from the latest status snapshot when `/metrics` is scraped, so label sets that vanished
from the cluster vanish from the exposition too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from failover.coord import Coordinator, verify_chain
from failover.core.model import CheckResult, split_target

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CYCLE_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.0,
    5.0,
)
LAG_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
VERDICT_VALUES = {"up": 1.0, "down": 0.0}  # unknown or stale: -1
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DaemonMetrics:
    """What one daemon exports. `probe()` is the observer's hook; `update()` runs per scrape."""

    def __init__(self, instance: str, site: str) -> None:
        self.instance = instance
        self.site = site
        self.registry = CollectorRegistry()
        self.probe_latency = Histogram(
            "failover_probe_latency_seconds",
            "Probe latency by target and result.",
            ["site", "service", "target", "result"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.probe_start_lag = Histogram(
            "failover_probe_start_lag_seconds",
            "How late checks start after their due time "
            "(a busy host or a low scheduling priority).",
            ["instance", "site"],
            buckets=LAG_BUCKETS_S,
            registry=self.registry,
        ).labels(instance, site)
        self.cycle_time = Histogram(
            "failover_cycle_seconds",
            "How long one cycle of the daemon's loop takes (the "
            "leader's reads, decisions and writes, the agent's steering).",
            ["instance", "site"],
            buckets=CYCLE_BUCKETS_S,
            registry=self.registry,
        ).labels(instance, site)
        self.switches = Counter(
            "failover_switches",
            "Switches of the active site seen in desired state.",
            ["group"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "failover_api_requests",
            "Write requests to the HTTP API by outcome.",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.status: dict[str, Any] | None = None
        self.facts: dict[str, Any] = {}
        self.audit: tuple[bool, float] | None = None  # (chain verified, when), once checked
        self.recorder: Any = None  # the leader's Recorder (its `ok`), when recording is on
        self._seen_switches: dict[str, set[float]] = {}
        self.registry.register(_Snapshot(self))

    def probe(self, target: str, result: CheckResult) -> None:
        site, service, endpoint = split_target(target)
        self.probe_latency.labels(site, service, endpoint, "ok" if result.ok else "fail").observe(
            result.latency_s
        )

    def probe_lag(self, lag_s: float) -> None:
        self.probe_start_lag.observe(lag_s)

    def update(
        self,
        status: dict[str, Any] | None,
        *,
        leading: bool,
        term: int | None,
        cycles: int,
        session: str,
    ) -> None:
        """Take a new snapshot (None: the coordinator could not be read)."""
        self.facts = {"leading": leading, "term": term, "cycles": cycles, "session": session}
        self.status = status
        if status is None:
            return
        for group, doc in status["groups"].items():
            seen = self._seen_switches.setdefault(group, set())
            new = [t for t in doc.get("switch_times", ()) if t not in seen]
            if new:
                self.switches.labels(group).inc(len(new))
                seen.update(new)
            self.switches.labels(group)  # exported at 0 before the first switch
            # switch_times keeps one hour: forget what can no longer come back
            keep = set(doc.get("switch_times", ()))
            self._seen_switches[group] = seen & keep if keep else set()

    def audit_checked(self, verified: bool, at: float) -> None:
        """Record the outcome of a verification of the audit trail's hash chain."""
        self.audit = (verified, at)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot(Collector):
    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        facts = m.facts
        own = ["instance", "site"]
        leader = GaugeMetricFamily("failover_leader", "1 when this instance leads.", labels=own)
        leader.add_metric([m.instance, m.site], 1.0 if facts.get("leading") else 0.0)
        yield leader
        term = GaugeMetricFamily("failover_leader_term", "The cluster's leadership term.")
        status = m.status
        leader_doc = status.get("leader") if status else None
        term.add_metric([], float(leader_doc["term"]) if leader_doc else 0.0)
        yield term
        cycles = CounterMetricFamily("failover_cycles", "Daemon loop cycles.", labels=own)
        cycles.add_metric([m.instance, m.site], float(facts.get("cycles", 0)))
        yield cycles
        session = GaugeMetricFamily(
            "failover_coordinator_connected",
            "1 while the coordinator session is connected.",
            labels=own,
        )
        session.add_metric(
            [m.instance, m.site], 1.0 if facts.get("session") == "connected" else 0.0
        )
        yield session
        read = GaugeMetricFamily(
            "failover_status_read_ok", "1 when this scrape could read the cluster's state."
        )
        read.add_metric([], 0.0 if status is None else 1.0)
        yield read
        if m.recorder is not None:
            recording = GaugeMetricFamily(
                "failover_recording_ok",
                "1 while this daemon can record its leader cycles "
                "for `failover replay`; 0 when recording stopped on an error.",
                labels=own,
            )
            recording.add_metric([m.instance, m.site], 1.0 if m.recorder.ok else 0.0)
            yield recording
        if m.audit is not None:
            chain = GaugeMetricFamily(
                "failover_audit_chain_ok",
                "1 when the audit trail's hash chain verified at its last check, 0 when broken.",
            )
            chain.add_metric([], 1.0 if m.audit[0] else 0.0)
            yield chain
            checked = GaugeMetricFamily(
                "failover_audit_chain_checked_timestamp_seconds",
                "When the audit chain was last verified (Unix time).",
            )
            checked.add_metric([], m.audit[1])
            yield checked
        if status is not None:
            yield from _cluster(status)


def audit_problems(coordinator: Coordinator) -> list[str]:
    """Verify the retained audit chain up to the stored head (raises CoordinatorError).

    The head is read first and newer entries ignored, so that an entry the leader appends
    meanwhile is not mistaken for a cut chain.
    """
    head = coordinator.audit_head()
    entries = [entry for entry in coordinator.audit() if entry.seq <= head[0]]
    return verify_chain(entries, head)


def _cluster(status: dict[str, Any]) -> Iterator[Metric]:
    epoch = GaugeMetricFamily("failover_epoch", "Desired-state epoch per group.", labels=["group"])
    active = GaugeMetricFamily(
        "failover_active_site", "1 for the group's active site.", labels=["group", "site"]
    )
    frozen = GaugeMetricFamily("failover_frozen", "1 while automation is frozen.", labels=["group"])
    budget = GaugeMetricFamily(
        "failover_switch_budget_left", "Switches left in the hourly budget.", labels=["group"]
    )
    healthy = GaugeMetricFamily(
        "failover_site_healthy",
        "1 when the rules see the site healthy for the group.",
        labels=["group", "site", "situation"],
    )
    verified = GaugeMetricFamily(
        "failover_steering_verified",
        "1 when the site's applied steering was verified.",
        labels=["group", "site"],
    )
    applied = GaugeMetricFamily(
        "failover_applied_epoch", "The epoch each site applied.", labels=["group", "site"]
    )
    for group, doc in status["groups"].items():
        epoch.add_metric([group], float(doc["epoch"]))
        frozen.add_metric([group], 1.0 if doc["frozen"] else 0.0)
        budget.add_metric([group], float(doc["budget_left"]))
        for site, s in doc["sites"].items():
            active.add_metric([group, site], 1.0 if site == doc["active"] else 0.0)
            situation = s["health"]["situation"]
            healthy.add_metric([group, site, situation], 1.0 if situation == "healthy" else 0.0)
            verified.add_metric([group, site], 1.0 if s["verified"] else 0.0)
            applied.add_metric([group, site], float(s["applied_epoch"] or 0))
    yield from (epoch, active, frozen, budget, healthy, verified, applied)
    pending = GaugeMetricFamily("failover_pending_commands", "Commands without a result.")
    pending.add_metric([], float(len(status["pending"])))
    yield pending
    verdict = GaugeMetricFamily(
        "failover_verdict",
        "Each observer's verdict per target: 1 up, 0 down, -1 unknown or stale.",
        labels=["site", "service", "target", "observer", "observer_site"],
    )
    for site, services in status["services"].items():
        for service, doc in services.items():
            for target, by in doc["targets"].items():
                for observer, seen in by.items():
                    verdict.add_metric(
                        [site, service, target, observer, seen["site"]],
                        VERDICT_VALUES.get(seen["verdict"], -1.0),
                    )
    yield verdict
    offset = GaugeMetricFamily(
        "failover_observer_clock_offset_seconds",
        "How far each observer's newest stamp is from "
        "this daemon's clock (its clock skew, or its silence).",
        labels=["observer"],
    )
    for observer, clock in status.get("clocks", {}).items():
        offset.add_metric([observer], float(clock["offset_s"]))
    yield offset
