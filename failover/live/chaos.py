"""`failover chaos CAMPAIGN --live --runs N`: random fault schedules against the lab.

Run `seed + i` draws its schedule from the campaign file as the simulated campaign does
(`draw_schedule`), shifted so that the first faults may start `LEAD_S` after the lab is
steady (the simulator's warm-up is only there to let the simulated world settle; the lab is
steady before a run starts). The schedule becomes a playbook: the simulator runs it first
(the prediction), its outcome becomes the expectations (`no_violations`, `no_dual_primary`,
the number of switches, the final active site), and the lab runs the same playbook, reset
with `LiveStack.fresh()` before each run. A run whose live outcome or key events differ from
the prediction is a mismatch; the simulator's invariants, checked over the recorded history,
give the violations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.live.batch import save_logs
from failover.live.faults import fault_not_live, topology_not_live
from failover.live.gameday import Score, gameday
from failover.live.stack import LiveStack
from failover.sim.campaign import WARMUP_S, Campaign, _choices, draw_schedule
from failover.sim.faults import DaemonFault
from failover.sim.playbook import FAULT_ADAPTER, Playbook, PlaybookFile, _build
from failover.sim.run import Outcome, run_playbook

LEAD_S = 5.0  # the first fault may start this long after the run starts
TAIL_S = 8.0  # the run goes on this long after the last moment a fault may start
QUIET_S = 4.0  # no predicted key event this close to the end (the largest event tolerance)
MAX_EXTRA_S = 30.0  # how far the end may move to find such a quiet moment
KEY_KINDS = ("leader", "desired", "bgp", "dns")  # the prediction's lines that are key events
NEAR_TIE_DRAWS = 60  # the simulator's draws that tell whether a schedule is a near tie (live
# chaos seed 2 flipped in 4 of 60 draws, in none of the first 12: the lab drew the other side)


def not_live(campaign: Campaign) -> list[str]:
    """The campaign's fault classes that the lab cannot produce, with why."""
    found = []
    for name, cls in campaign.spec.classes.items():
        faults = [FAULT_ADAPTER.validate_python(o) for o in _choices(cls.fault)[:200]]
        reasons = (fault_not_live(fault, campaign.topology) for fault in faults)
        found += [f"classes.{name}: {why}" for why in sorted({w for w in reasons if w})]
    return found + topology_not_live(campaign.topology)


def key_times(outcome: Outcome) -> list[float]:
    """When the prediction's leader, desired state, routers or name servers changed."""
    times = []
    for line in outcome.timeline:
        words = line.split(maxsplit=2)
        if len(words) > 1 and words[1] in KEY_KINDS:
            times.append(float(words[0]))
    return times


def quiet_end(times: list[float], end: float) -> float | None:
    """`end`, or later, so that no time in `times` is within QUIET_S of it (None: no such
    moment within MAX_EXTRA_S)."""
    limit = end + MAX_EXTRA_S
    while end <= limit:
        # a microsecond's slack: 32.041 - 28.041 is 3.9999999999999964, and an end moved to
        # max(near) + QUIET_S must not find that time near again (it looped for ever)
        near = [t for t in times if abs(t - end) < QUIET_S - 1e-6]
        if not near:
            return end
        end = max(near) + QUIET_S
    return None


def schedule_playbook(campaign: Campaign, seed: int) -> Playbook:
    """Run `seed`'s schedule as a playbook whose expectations are the simulator's outcome.

    The faults start where the simulated campaign draws them (shifted: the first may start
    LEAD_S into the run); the run ends TAIL_S after the last moment a fault may start, or
    later, at the first moment the prediction is quiet for QUIET_S on either side: the
    expectations are judged at the end, and a key event the prediction has just before it
    could fall just after it live (or the reverse) within the tolerance the events are
    scored with. The end is chosen from the prediction alone, before the live run."""
    shift = WARMUP_S - LEAD_S
    spec = campaign.spec
    restart_s = campaign.topology.world.daemons.restart_s
    method: list[dict[str, Any]] = []
    for at, name, fault, duration in draw_schedule(campaign, seed).items:
        if isinstance(fault, DaemonFault) and fault.kind == "daemon_crash" and not duration:
            duration = restart_s
        step: dict[str, Any] = {
            "name": f"{name} #{len(method) + 1}",
            "at_s": round(at - shift, 3),
            "fault": fault.model_dump(exclude_none=True),
        }
        if duration:
            step["duration_s"] = round(duration, 3)
        method.append(step)
    if not method:  # a quiet run: nothing must move
        method.append(
            {"name": "nothing", "at_s": LEAD_S, "fault": {"kind": "unfreeze", "reason": "quiet"}}
        )

    def build(expectations: list[str], end: float) -> Playbook:
        data = {
            "title": f"{spec.title}, run {seed}",
            "topology": campaign.topology.source,
            "duration_s": round(end, 3),
            "method": method,
            "expectations": expectations,
        }
        return _build(
            f"{campaign.source} seed {seed}", PlaybookFile.model_validate(data), campaign.topology
        )

    end = spec.duration_s - shift + TAIL_S
    probe = run_playbook(build(["no_violations"], end), seed)
    for _ in range(5):  # a later end lets faults last longer: predict again until it holds
        later = quiet_end([t for t in key_times(probe) if t <= end + QUIET_S], end)
        if later is None or later == end:
            break
        end = later
        probe = run_playbook(build(["no_violations"], end), seed)
    world = probe.series["world"]
    group = next(iter(world.config.groups))
    state = world.control.desired[group]  # after the rollback: the one at the end is wanted
    for when, _, item in world.control.history:
        if item.group == group and when <= end + 1e-9:
            state = item
    final = state.active if state.phase != "switching" else "switching"
    return build(
        [
            "no_violations",
            "no_dual_primary",
            f"switches == {probe.switches}",
            f"active({group}) == {final}",
        ],
        end,
    )


def outcome_spread(book: Playbook, seed: int, draws: int = NEAR_TIE_DRAWS) -> dict[str, int]:
    """How the prediction's outcome for this schedule (its expectations held or not, the
    number of switches) varies with the simulator's own random draws (probe phases, BGP
    propagation, ZooKeeper clients' host order...): {outcome: how many draws}. More than one
    outcome: the schedule is a near tie that a fraction of a second decides, and the lab's
    own timing draws its side at random."""
    found: dict[str, int] = {}
    for draw in [seed, *range(seed * 1000 + 1, seed * 1000 + draws)]:  # the prediction's too
        outcome = run_playbook(book, draw)
        key = f"{'held' if outcome.passed else 'failed'}, {outcome.switches} switch(es)"
        found[key] = found.get(key, 0) + 1
    return found


def run_live_campaign(
    campaign: Campaign,
    runs: int,
    seed: int = 1,
    say: Callable[[str], None] = lambda _: None,
    on_result: Callable[[int, Score], None] = lambda _s, _r: None,
    budget_s: float | None = None,
    keep_logs: Path | None = None,
) -> list[tuple[int, Score]]:
    """Runs `seed` .. `seed + runs - 1` one after another on one lab (with `budget_s`, no
    run starts once that many seconds have passed)."""
    results: list[tuple[int, Score]] = []
    started = time.monotonic()
    stack = LiveStack(campaign.topology)
    try:
        stack.up(say=say)
        for run_seed in range(seed, seed + runs):
            if budget_s is not None and time.monotonic() - started > budget_s:
                say(f"the budget of {budget_s:g} s is spent: {len(results)} run(s)")
                break
            book = schedule_playbook(campaign, run_seed)
            say(f"run {run_seed}: {len(book.spec.method)} fault(s), {book.spec.duration_s:g} s")
            try:
                result = gameday(book, f"{campaign.source} --seed {run_seed}", run_seed, say, stack)
            except Exception as exc:  # one broken run must not stop the campaign
                result = Score(campaign.source, book.title, True, [f"error: {exc!r}"])
            if keep_logs is not None and (not result.matched or not result.passed):
                folder = keep_logs / f"seed-{run_seed}"
                save_logs(stack, folder)
                (folder / "score.json").write_text(json.dumps(result.as_dict(), indent=1))
            results.append((run_seed, result))
            on_result(run_seed, result)
    finally:
        stack.down()
    return results


def summarize(
    campaign: Campaign, results: list[tuple[int, Score]], command: str, wall_s: float
) -> dict[str, Any]:
    failing = []
    violations = mismatches = near_ties = 0
    classes: dict[str, int] = {name: 0 for name in campaign.spec.classes}
    for run_seed, result in results:
        live = result.live
        found = live.metrics.found if live else []
        violations += len(found)
        matched = result.matched
        mismatches += 0 if matched else 1
        for name in {item[1] for item in draw_schedule(campaign, run_seed).items}:
            classes[name] = classes.get(name, 0) + 1
        spread: dict[str, int] = {}
        if not matched and result.supported:
            spread = outcome_spread(schedule_playbook(campaign, run_seed), run_seed)
            near_ties += 1 if len(spread) > 1 else 0
        if found or not matched:
            failing.append(
                {
                    "seed": run_seed,
                    "near_tie": spread if len(spread) > 1 else None,
                    "violations": [f"{v['name']}: {v['message']}" for v in found],
                    "mismatched": [
                        name
                        for name, p, v in result.rows
                        if p is None or v is None or p.passed != v.passed
                    ]
                    + [e.name for e in result.events if not e.matched]
                    + result.why_not,
                    "replay_live": f"{command} --live --seed {run_seed} --runs 1",
                    "replay_simulated": f"{command} --seed {run_seed} --runs 1",
                }
            )
    return {
        "title": campaign.spec.title,
        "runs": len(results),
        "violations": violations,
        "mismatches": mismatches,
        # mismatched runs whose predicted outcome itself flips with the simulator's draws
        "mismatches_near_tie": near_ties,
        "switches": sum(len(r.live.metrics.switch_log()) if r.live else 0 for _, r in results),
        "coverage": classes,
        "wall_s": round(wall_s, 1),
        "failing": failing,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
