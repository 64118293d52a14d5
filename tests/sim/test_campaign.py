from __future__ import annotations

from failover.sim.campaign import draw_schedule, load_campaign, run_campaign, summarize
from tests.broken import IgnoresQuorum
from tests.sim.conftest import CHAOS


def test_a_500_run_campaign_has_no_violation_and_full_coverage() -> None:
    campaign = load_campaign(CHAOS)
    results = run_campaign(campaign, 500, seed=1000, jobs=2)
    summary = summarize(campaign, results, "failover chaos simulations/chaos.yaml")
    assert summary["runs"] == 500
    assert summary["violations"] == 0, summary["failing"][:3]
    for name, runs in summary["coverage"].items():
        assert runs >= 5, (name, runs)  # at least 1 % of the runs
    assert summary["rto_s"]["p50"] is not None
    assert summary["rto_s"]["p50"] <= summary["rto_s"]["p95"] <= summary["rto_s"]["p99"]
    assert summary["switches"] > 0


def test_parallel_and_serial_runs_agree() -> None:
    campaign = load_campaign(CHAOS)
    serial = run_campaign(campaign, 6, seed=40, jobs=1)
    parallel = run_campaign(campaign, 6, seed=40, jobs=2)
    assert [(r.seed, r.events, r.switches, r.unavailable_s) for r in serial] == [
        (r.seed, r.events, r.switches, r.unavailable_s) for r in parallel
    ]


def test_schedules_come_from_the_campaign_distributions() -> None:
    campaign = load_campaign(CHAOS)
    items = [item for seed in range(50) for item in draw_schedule(campaign, seed).items]
    classes = {name for _, name, _, _ in items}
    assert classes == set(campaign.spec.classes)
    for when, name, _, duration in items:
        assert 0 < when < campaign.spec.duration_s
        spec = campaign.spec.classes[name].duration
        if spec is not None:
            assert spec.min_s <= duration <= spec.max_s


def test_a_campaign_catches_the_broken_policy_and_names_the_seed() -> None:
    campaign = load_campaign(CHAOS)
    results = run_campaign(campaign, 30, seed=1, engine_factory=IgnoresQuorum)
    summary = summarize(campaign, results, "failover chaos simulations/chaos.yaml")
    assert summary["violations"] > 0
    first = summary["failing"][0]
    expected = f"failover chaos simulations/chaos.yaml --seed {first['seed']} --runs 1"
    assert first["replay"] == expected


ADVERSARIAL = CHAOS.parent / "adversarial.yaml"


def test_the_adversarial_orderings_break_no_safety_rule() -> None:
    """Dense faults on the active site during hold-downs, frozen or cut-off agents, freezes
    across outages, double failures, quorum loss with either site active, clock skew."""
    campaign = load_campaign(ADVERSARIAL)
    results = run_campaign(campaign, 60, seed=1, jobs=2)
    summary = summarize(campaign, results, "failover chaos simulations/adversarial.yaml")
    assert summary["violations"] == 0, summary["failing"][:3]
    assert summary["max_primary_overlap_s"] == 0.0
    assert all(runs >= 6 for runs in summary["coverage"].values()), summary["coverage"]


def test_the_adversarial_campaign_catches_a_hold_down_that_survives_a_blocked_period() -> None:
    from failover.sim.campaign import run_one
    from tests.broken import StickyHoldDown

    result = run_one(load_campaign(ADVERSARIAL), 64, engine_factory=StickyHoldDown)
    assert [v["name"] for v in result.violations] == ["unsettled_target"]


def test_a_restarted_agent_acts_only_once_its_first_session_is_connected() -> None:
    """Seed 4835: dc2-a restarts while its site holds the primary. It held the primary in
    effect with the only epoch it knew (0) before its session connected; the daemon's runner
    waits for its first session before it cycles: the stop hook holds the primary, and the
    agent, once connected, announces it again at the epoch it reads (3). A hold with no epoch
    (the connect gave up) stays no epoch regress (test_zookeeper_sessions.py). The seed's
    history as found: before the model had the supervisor's own start (`launch_s`)."""
    from failover.sim.campaign import run_one

    campaign = load_campaign(CHAOS)
    world = campaign.topology.world
    daemons = world.daemons.model_copy(update={"launch_s": 0.0})
    campaign.topology.world = world.model_copy(update={"daemons": daemons})
    result = run_one(campaign, 4835, keep_trace=True)
    assert result.violations == []
    lines = result.trace.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("dc2-a started"))
    after = lines[start:]
    session = next(i for i, line in enumerate(after) if "dc2-a new session" in line)
    routes = [i for i, line in enumerate(after) if " route " in line and "dc2 web" in line]
    assert "stop hook holds the primary" in after[routes[0]]
    assert routes[1] > session and after[routes[1]].endswith("dc2 web primary: epoch 3")
    assert "epoch 0" not in result.trace
