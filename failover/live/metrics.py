"""Playbook metrics and the simulator's invariants over a recorded live history.

`LiveMetrics` is the simulator's `Metrics` with its sources swapped: `holds`, `timed` and the
expectation loop (`failover.sim.run._expectations`) are the simulator's own code.
"""

from __future__ import annotations

import itertools
from typing import Any

from failover.config import Config
from failover.live.record import History
from failover.sim.playbook import Expr
from failover.sim.run import Metrics

# the leader's decision codes that begin a graceful switchover's stage (or end the plan)
GRACEFUL_STAGES = {
    "graceful_preparing": "preparing",
    "graceful_draining": "draining",
    "graceful_restoring": "restoring",
    "graceful_done": "none",
    "graceful_cancelled": "none",
}
DETECT_S = 5.0  # checks' fall x interval plus a cycle: part of the false-failover window


def _at(series: list[tuple[float, Any]], t: float, default: Any = None) -> Any:
    value = default
    for when, item in series:
        if when > t + 1e-9:
            break
        value = item
    return value


def zookeeper_down_at(history: History, t: float) -> int:
    down: set[int] = set()
    for fault in history.faults:
        if fault.start <= t and (fault.end is None or t < fault.end):
            down.update(fault.zookeeper_down)
    return len(down)


def _router_lost(history: History, site: str | None, t: float) -> bool:
    """Whether `site`'s router was without power at `t` (its routes then vanish at the isp
    after the BGP hold time, as the simulator's `fault` route changes, which need no quorum)."""
    return site is not None and any(
        f.kind == "site_power_loss"
        and site in f.places
        and f.start <= t
        and (f.end is None or t <= f.end)
        for f in history.faults
    )


def violations(history: History, config: Config) -> list[dict[str, Any]]:
    """The simulator's invariants over what the lab showed: two primaries in the isp's table,
    an epoch going back, steering moved without a ZooKeeper quorum, a failover away from a
    site that no fault touched."""
    found: list[dict[str, Any]] = []

    def violate(at: float, name: str, message: str) -> None:
        found.append({"at": round(at, 3), "name": name, "message": message})

    for when, primaries in history.primaries:
        if len(primaries) > 1:
            violate(when, "primary_overlap", f"{' and '.join(primaries)} both primary")
    for group, series in history.desired.items():
        for (_, old), (when, new) in itertools.pairwise(series):
            if new.epoch < old.epoch:
                violate(when, "epoch_regress", f"{group}: epoch {old.epoch} -> {new.epoch}")
            if new.code == "failover" and old.active != new.active:
                window = config.policy.hold_down_s + config.policy.stale_after_s + DETECT_S
                touched = any(
                    old.active in (f.sites + f.places)
                    and f.kind not in ("switchover", "freeze", "unfreeze")
                    and f.start <= when
                    and (f.end is None or when - f.end <= window)
                    for f in history.faults
                )
                if not touched:
                    violate(
                        when,
                        "false_failover",
                        f"{group}: failover from {old.active}, which no fault touched",
                    )
    size = len(config.cluster.zookeeper.hosts)
    moves: list[tuple[float, str, Any, Any]] = []
    best = history.best
    moves += [
        (when, "the isp's best route", old[0] if old else None, new[0] if new else None)
        for (_, old), (when, new) in itertools.pairwise(best)
    ]
    for (group, server), series in history.dns.items():
        if server is None:
            moves += [
                (when, f"{group}'s name servers", old, new)
                for (_, old), (when, new) in itertools.pairwise(series)
            ]
    for when, what, old, new in moves:
        moved = old and new and old != new and "none" not in (old, new)
        if what == "the isp's best route" and _router_lost(history, old, when):
            continue  # the old route went with its router: the fault moved it, not steering
        if moved and zookeeper_down_at(history, when) * 2 >= size:
            violate(when, "moved_without_quorum", f"{what} moved {old} -> {new}")
    return found


class LiveMetrics(Metrics):
    """The values playbook expressions speak of, read from a recorded history at its end."""

    def __init__(self, history: History, config: Config, weights: dict[str, float]) -> None:
        self.world = None  # type: ignore[assignment]  # the simulator's Metrics reads no world here
        self.history = history
        self.config = config
        self.weights = weights
        self.first = next(iter(config.groups))
        self.found = violations(history, config)
        self.alerts = []
        for entry in history.audit:
            decision = entry.payload.get("decision", {})
            if decision.get("kind") == "alert" and decision.get("code") not in self.alerts:
                self.alerts.append(str(decision.get("code")))
        leaders = [name for _, name in history.leader if name]
        self.leader_changes = sum(1 for a, b in itertools.pairwise(leaders) if a != b)

    # --- values --------------------------------------------------------------------------------

    def acting(self) -> str | None:
        found = _at(self.history.leader, self.history.end)
        return None if found is None else str(found)

    def value(self, expr: Expr) -> Any:
        metric = expr.metric
        group = expr.group or self.first
        if metric in ("active", "phase", "graceful", "traffic", "leader", "announced", "dns"):
            series = self._history(metric, expr.group, expr.args)
            return series[-1][1] if series else "none"
        if metric == "leader_changes":
            return self.leader_changes
        if metric == "availability":
            return round(self.availability(expr.group) * 100, 4)
        if metric == "unavailable":
            return round(self.lost_s(expr.group), 3)
        if metric == "rto":
            return round(self.rto_s(), 3)
        if metric == "violations":
            return len(self.found)
        if metric == "false_failovers":
            return len([v for v in self.found if v["name"] == "false_failover"])
        if metric == "dual_primary_s":
            return round(self.dual_primary_s(), 3)
        if metric in ("alerts", "decisions", "switches"):
            return len(self.counted(expr))
        raise AssertionError(f"{metric} ({group})")

    def counted(self, expr: Expr, window: tuple[float, float] | None = None) -> list[float]:
        h = self.history
        if expr.metric == "switches":
            times = [when for when, _ in self.switch_log() if expr.group in (None, _)]
        else:
            kind = "alert" if expr.metric == "alerts" else expr.args[0]
            times = []
            for entry in h.audit:
                decision = entry.payload.get("decision", {})
                if decision.get("kind") == kind and expr.group in (None, decision.get("group")):
                    times.append(entry.at - h.wall_start)
        if window is not None:
            times = [t for t in times if window[0] - 1e-9 <= t <= window[1] + 1e-9]
        return times

    def switch_log(self) -> list[tuple[float, str]]:
        """(time, group) of every switch started, as the simulator's leadership logs them: at
        the leader's own time of the switch (`last_switch_at`), not when the recorder first
        read it (the operator may read nothing for a while: a switch written just before the
        ZooKeeper quorum went was seen 7 s later, live chaos seed 49)."""
        out = []
        start = self.history.wall_start
        for group, series in self.history.desired.items():
            for (_, old), (when, new) in itertools.pairwise(series):
                if new.last_switch_at != old.last_switch_at:
                    at = when if new.last_switch_at is None else new.last_switch_at - start
                    out.append((min(when, at), group))
        return sorted(out)

    def refused(self, expr: Expr) -> tuple[bool, str]:
        kind, wanted = expr.args[0], set(expr.args[1:])
        seen = []
        for entry in self.history.audit:
            command = entry.payload.get("command") or {}
            decision = entry.payload.get("decision", {})
            if command.get("kind") != kind or (expr.value and command.get("site") != expr.value):
                continue
            if decision.get("code") != "refused":
                continue
            failed = {c["name"] for c in decision.get("checks", []) if not c.get("passed")}
            seen.append(", ".join(sorted(failed)) or str(decision.get("sentence")))
            if wanted <= failed:
                return True, f"refused: {seen[-1]}"
        for _, what, site, checks in self.history.refusals:  # by the CLI, before the leader
            if what != kind or (expr.value and site != expr.value):
                continue
            seen.append(", ".join(sorted(checks)))
            if wanted <= set(checks):
                return True, f"refused by the operator CLI: {seen[-1]}"
        return False, ("refused only for " + "; ".join(seen)) if seen else "not refused"

    def holds(self, expr: Expr) -> tuple[bool, str]:
        if expr.metric == "no_dual_primary":
            bad = [v for v in self.found if v["name"] in ("primary_overlap", "dual_active")]
            return not bad, f"{len(bad)} dual-primary violation(s)"
        if expr.metric == "no_violations":
            names = [v["name"] for v in self.found]
            return not names, ", ".join(names) or "none"
        return super().holds(expr)

    def _history(
        self, metric: str, group: str | None, args: tuple[str, ...] = ()
    ) -> list[tuple[float, Any]]:
        h = self.history
        group = group or self.first
        if metric == "announced":
            return list(h.announced.get((group, args[0]), []))
        if metric == "dns":
            return list(h.dns.get((group, args[0] if args else None), []))
        if metric == "graceful":
            sampled = [
                (when, state.graceful.stage if state.graceful else "none")
                for when, state in h.desired.get(group, [])
            ]
            return sorted(sampled + self._graceful_decisions(group), key=lambda item: item[0])
        if metric in ("active", "phase"):
            return [
                (
                    when,
                    state.phase
                    if metric == "phase"
                    else (state.active if state.phase != "switching" else "switching"),
                )
                for when, state in h.desired.get(group, [])
            ]
        if metric == "traffic":
            return list(h.traffic.get(group, []))
        return [(t, v or "none") for t, v in h.leader]

    def _graceful_decisions(self, group: str) -> list[tuple[float, str]]:
        """A graceful switchover's stages from the leader's decisions, at their own times: a
        stage can last less than the recorder's 0.2 s sampling (live: restoring for 38 ms
        when every name server took the TTL at once; the simulator holds it 0.25 s)."""
        out = []
        for entry in self.history.audit:
            decision = entry.payload.get("decision", {})
            if decision.get("kind") != "desired" or decision.get("group") != group:
                continue
            code = str(decision.get("code"))
            stage = GRACEFUL_STAGES.get(code)
            if code == "switchover" and "graceful" in str(decision.get("sentence", "")):
                stage = "switching"
            if stage is not None:
                out.append((entry.at - self.history.wall_start, stage))
        return out

    # --- clients -----------------------------------------------------------------------------

    def _rates(self, group: str | None) -> list[tuple[float, float]]:
        """(time, success rate) at each change of the clients' results."""
        out = []
        for when, results in self.history.requests:
            groups = [g for g in results if group in (None, g)]
            total = sum(self.weights.get(g, 1.0 if group else 0.0) for g in groups) or 1.0
            ok = sum(self.weights.get(g, 1.0 if group else 0.0) for g in groups if results[g])
            out.append((when, ok / total))
        return out

    def _integral(self, group: str | None) -> tuple[float, float]:
        rates = self._rates(group)
        end = self.history.end
        good = lost = 0.0
        for (when, rate), (after, _) in zip(rates, rates[1:] + [(end, 0.0)], strict=False):
            span = max(0.0, after - when)
            good += span * rate
            lost += span * (1 - rate)
        return good, lost

    def availability(self, group: str | None) -> float:
        good, lost = self._integral(group)
        return good / (good + lost) if good + lost else 1.0

    def lost_s(self, group: str | None) -> float:
        return self._integral(group)[1]

    def rto_s(self) -> float:
        """The longest time from a fault (or the first failed request) to every request
        succeeding again (the end of the run if never)."""
        longest = 0.0
        began: float | None = None
        for when, rate in self._rates(None):
            if rate < 1.0 and began is None:
                starts = [f.start for f in self.history.faults if f.start <= when]
                began = max(starts) if starts else when
            elif rate >= 1.0 and began is not None:
                longest = max(longest, when - began)
                began = None
        if began is not None:
            longest = max(longest, self.history.end - began)
        return longest

    def dual_primary_s(self) -> float:
        series = self.history.primaries
        total = 0.0
        for (when, primaries), (after, _) in zip(
            series, series[1:] + [(self.history.end, ())], strict=False
        ):
            if len(primaries) > 1:
                total += after - when
        return total
