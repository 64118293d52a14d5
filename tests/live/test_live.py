"""Live game-days without the lab: the config both sides share, what cannot run live, and the
simulator's evaluator over a recorded history."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.config import load_config
from failover.core.model import GroupState
from failover.live.cluster import differences, lab_config
from failover.live.docs import markdown
from failover.live.faults import LiveFault, not_live, served
from failover.live.metrics import LiveMetrics
from failover.live.record import History
from failover.sim.playbook import load_playbook, parse_expr
from failover.sim.run import _expectations
from failover.sim.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "simulations" / "reference.yaml"


def test_the_lab_config_is_the_topology_s_cluster() -> None:
    topology = load_topology(REFERENCE)
    data, config = lab_config(topology, "/run/failover-lab")
    assert config.cluster.zookeeper.hosts == topology.config.cluster.zookeeper.hosts
    assert data["groups"]["web"]["steering"]["sites"]["dc1"]["netns"] == "fo-dc1"
    assert differences(topology, config) == []


def test_a_differing_timer_is_named() -> None:
    found = differences(load_topology(REFERENCE), load_config(ROOT / "examples" / "two-dc.yaml"))
    assert "sites.dc1.services.db.check.fall: topology 3, lab 2" in found
    assert "sites.dc1.services.mail.check.interval_s: topology 1.0, lab 2.0" in found
    assert any(line.startswith("world.zookeeper.servers:") for line in found)


def test_a_topology_whose_servers_the_lab_cannot_place_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(REFERENCE.read_text())
    data["world"]["zookeeper"]["servers"] = {"dc1": 3, "dc2": 1, "witness": 1}
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"world\.zookeeper\.servers"):
        lab_config(load_topology(path), "/run/failover-lab")


def test_a_topology_whose_bgp_hold_time_is_not_the_lab_s_is_not_live(tmp_path: Path) -> None:
    """The lab's BIRD holds a silent neighbour's routes 3 s; a topology that models another
    hold time predicts another world, so it is refused, not scored against the lab."""
    from failover.live.chaos import not_live as campaign_not_live
    from failover.live.faults import topology_not_live
    from failover.sim.campaign import load_campaign

    assert topology_not_live(load_topology(REFERENCE)) == []
    assert campaign_not_live(load_campaign(ROOT / "simulations" / "chaos-live.yaml")) == []
    data = yaml.safe_load(REFERENCE.read_text())
    data["world"]["steering"]["bgp_hold_s"] = 9
    path = tmp_path / "slow-bgp.yaml"
    path.write_text(yaml.safe_dump(data))
    why = topology_not_live(load_topology(path))
    assert why == [
        "world.steering.bgp_hold_s: 9 s, and the lab's BIRD has a hold time of 3 s: "
        "the prediction would not be the lab's"
    ]


def test_a_scheduled_switchover_is_at_its_step_s_moment_however_slowly_the_cli_starts() -> None:
    """what-an-sre-checks failed live once (`active == dc1 within 31 s not before 29 s`): the
    harness passed `--at +30s`, which the CLI counts from its own clock reading, after its
    start-up (0.6-0.9 s in the lab). The moment must be the step's, as in the simulator."""
    from failover.api.commands import parse_at
    from failover.live.faults import operator_args
    from failover.sim.faults import Switchover

    spec = Switchover(kind="switchover", site="dc1", group="web", in_s=30, reason="db repaired")
    now = 1_796_000_000.25
    args = operator_args(spec, "dc1", now)
    assert args[:6] == ["switchover", "--to", "dc1", "--reason", "db repaired", "--group"]
    at = args[args.index("--at") + 1]
    assert parse_at(at, now + 0.9) == pytest.approx(now + 30, abs=0.001)  # read 0.9 s later
    assert "--at" not in operator_args(spec.model_copy(update={"in_s": None}), "dc1", now)


def test_faults_the_lab_cannot_produce_are_named() -> None:
    assert not_live(load_playbook(ROOT / "playbooks" / "db-down.yaml")) == []
    why = not_live(load_playbook(ROOT / "playbooks" / "clock-skew.yaml"))
    assert why == ["clock_skew: network namespaces share the host's clock"]


def test_gameday_live_says_not_supported_and_exits_3() -> None:
    done = CliRunner().invoke(
        cli, ["gameday", str(ROOT / "playbooks" / "clock-skew.yaml"), "--live"]
    )
    assert done.exit_code == 3, done.output
    assert "not supported live: clock_skew" in done.output


def test_docs_live_is_current() -> None:
    assert (ROOT / "docs" / "live.md").read_text() == markdown(), (
        "docs/live.md is stale: python -m failover.live.docs > docs/live.md"
    )


def _history() -> History:
    """dc1's database stops at 10 s; the switch is written at 14 s, the isp sees dc2 at 14.1 s;
    one sample shows both sites primary."""
    h = History(wall_start=1000.0)
    h.leader = [(0.0, "dc1-a")]
    dc1 = GroupState("web", "dc1")
    h.desired = {
        "web": [
            (0.0, dc1),
            (
                14.0,
                GroupState(
                    "web", "dc2", 2, "switching", "dc1", code="failover", last_switch_at=1014.0
                ),
            ),
            (14.2, GroupState("web", "dc2", 3, code="promoted", last_switch_at=1014.0)),
        ]
    }
    h.best = [(0.0, ("dc1", "primary")), (14.1, ("dc2", "primary"))]
    h.announced = {("web", "dc2"): [(0.0, "backup"), (14.1, "primary")]}
    h.primaries = [(0.0, ("dc1",)), (14.1, ("dc1", "dc2")), (14.3, ("dc2",))]
    h.traffic = {"web": [(0.0, "dc1"), (14.1, "dc2")]}
    h.requests = [(0.0, {"web": True}), (10.0, {"web": False}), (14.1, {"web": True})]
    h.faults = [LiveFault("service_down", "dc1 db stops", 10.0, 70.0, ("dc1",), ("dc1",))]
    h.end = 120.0
    return h


def test_the_simulator_s_expectations_over_a_live_history() -> None:
    config = load_topology(REFERENCE).config
    metrics = LiveMetrics(_history(), config, {"web": 1.0})
    book = load_playbook(ROOT / "playbooks" / "db-down.yaml")
    verdicts = {v.name: v for v in _expectations(book, metrics, {}, 10.0)}
    assert verdicts["active == dc2 within 8 s"].passed
    assert verdicts["active == dc2 within 8 s"].observed == "after 4.2 s"
    assert verdicts["traffic == dc2 within 12 s"].passed
    assert verdicts["switches <= 1"].passed
    assert not verdicts["no_dual_primary"].passed  # the sample with two primaries
    assert verdicts["rto <= 12 s"].observed == "4.1 s"
    assert metrics.holds(parse_expr("announced(web, dc2) == primary", ["web", "mail"]))[0]
    assert not metrics.timed(parse_expr("active == dc2 within 3 s", ["web", "mail"]), 10.0)[0]


def test_a_failover_from_an_untouched_site_is_a_violation() -> None:
    config = load_topology(REFERENCE).config
    history = _history()
    history.faults = [LiveFault("service_down", "dc2 db stops", 10.0, 70.0, ("dc2",), ("dc2",))]
    names = [v["name"] for v in LiveMetrics(history, config, {"web": 1.0}).found]
    assert "false_failover" in names


def test_a_live_chaos_run_is_its_schedule_as_a_playbook() -> None:
    from failover.live.chaos import LEAD_S, QUIET_S, TAIL_S, key_times, schedule_playbook
    from failover.sim.campaign import WARMUP_S, draw_schedule, load_campaign
    from failover.sim.run import run_playbook

    campaign = load_campaign(ROOT / "simulations" / "chaos-live.yaml")
    base = campaign.spec.duration_s - WARMUP_S + LEAD_S + TAIL_S
    extended = 0
    for seed in range(1, 16):
        drawn = draw_schedule(campaign, seed).items
        book = schedule_playbook(campaign, seed)
        if drawn:
            assert [step.fault for step in book.spec.method] == [item[2] for item in drawn]
            assert book.spec.method[0].at_s == pytest.approx(
                drawn[0][0] - WARMUP_S + LEAD_S, abs=1e-3
            )
        names = [name for name, _, _ in book.expectations]
        assert names[:2] == ["no_violations", "no_dual_primary"]
        assert any(name.startswith("switches == ") for name in names)
        # it ends at least TAIL_S after the last moment a fault may start, where the
        # prediction is quiet: no key event within QUIET_S of the end
        end = book.spec.duration_s
        assert end >= base
        extended += end > base
        near = [t for t in key_times(run_playbook(book, seed)) if abs(t - end) < QUIET_S]
        assert near == [], f"seed {seed}: key events at {near} near the end ({end} s)"
    assert extended, "no run needed a later end: the quiet rule is not exercised"


def test_the_end_of_a_live_chaos_run_moves_to_a_quiet_moment() -> None:
    from failover.live.chaos import MAX_EXTRA_S, QUIET_S, quiet_end

    assert quiet_end([1.0, 50.0], 25.0) == 25.0
    assert quiet_end([23.0], 25.0) == 23.0 + QUIET_S
    assert quiet_end([23.0, 26.0, 29.5], 25.0) == 29.5 + QUIET_S  # a chain of events
    assert quiet_end([25.0 + i for i in range(0, int(MAX_EXTRA_S) + 10, 2)], 25.0) is None


@pytest.mark.timeout(10)
def test_the_quiet_end_moves_past_a_time_whose_distance_rounds_below_the_quiet_span() -> None:
    """Live chaos seed 19's prediction: 32.041 - 28.041 is just under 4.0 in floating point;
    the end moved to 28.041 + QUIET_S found 28.041 near again and looped for ever."""
    from failover.live.chaos import QUIET_S, quiet_end

    assert QUIET_S == 4.0
    assert quiet_end([28.041], 30.786) == 28.041 + QUIET_S
    assert quiet_end([21.966, 22.647, 26.786, 28.041], 23.0) == 28.041 + QUIET_S


def test_chaos_live_refuses_fault_classes_the_lab_cannot_produce() -> None:
    done = CliRunner().invoke(
        cli, ["chaos", str(ROOT / "simulations" / "chaos.yaml"), "--live", "--runs", "1"]
    )
    assert done.exit_code == 3, done.output
    assert "classes.link_latency: link_latency" in done.output


def test_the_side_by_side_table_and_the_report(tmp_path: Path) -> None:
    from failover.cli.live import render, write_report
    from failover.live.gameday import LiveRun, score
    from failover.sim.run import run_playbook

    book = load_playbook(ROOT / "playbooks" / "db-down.yaml")
    history = _history()
    metrics = LiveMetrics(history, book.topology.config, {"web": 1.0})
    verdicts = _expectations(book, metrics, {}, 10.0)
    run = LiveRun(book.title, verdicts, [], history, metrics, None, 120.0)
    result = score(book, "db-down.yaml", run, run_playbook(book, 1))
    events = {e.name: e for e in result.events}
    assert events["switch written"].live == pytest.approx(4.0)
    assert events["isp route moved"].live == pytest.approx(4.1)
    assert events["switch written"].matched
    assert not result.matched  # the recorded overlap fails no_dual_primary live only
    table = render(result)
    assert "no_dual_primary" in table and "MISMATCH" in table
    write_report(result, str(tmp_path))
    assert (tmp_path / "timeline-live.txt").read_text().strip() == ""  # no lines recorded
    assert "MISMATCH" in (tmp_path / "table.txt").read_text()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "overlay.png").stat().st_size > 1000


def test_a_graceful_switchover_s_stages_are_judged_over_a_live_history() -> None:
    from failover.core.model import Graceful
    from failover.live.record import _shown

    config = load_topology(REFERENCE).config

    def plan(stage: str) -> Graceful:
        return Graceful(stage, "dns", "dc1", "dc2", 60.0, 90.0)  # type: ignore[arg-type]

    states = [
        (0.0, GroupState("mail", "dc1", 1)),
        (30.0, GroupState("mail", "dc1", 1, graceful=plan("preparing"))),
        (60.0, GroupState("mail", "dc2", 2, graceful=plan("draining"))),
        (90.0, GroupState("mail", "dc2", 2, graceful=plan("restoring"))),
        (91.0, GroupState("mail", "dc2", 2)),
    ]
    # the recorder keeps a sample whose epoch, phase or graceful stage changed
    kept = [states[0]] + [b for a, b in itertools.pairwise(states) if _shown(a[1]) != _shown(b[1])]
    assert [t for t, _ in kept] == [0.0, 30.0, 60.0, 90.0, 91.0]
    history = History(1_800_000_000.0)
    history.desired = {"mail": kept}
    history.end = 120.0
    metrics = LiveMetrics(history, config, {"mail": 1.0})
    groups = ["web", "mail"]
    assert metrics.holds(parse_expr("graceful(mail) == none", groups))[0]
    found = metrics.timed(parse_expr("graceful(mail) == draining within 52 s", groups), 10.0)
    assert found[0], found
    assert not metrics.timed(
        parse_expr("graceful(mail) == preparing not before 25 s", groups), 10.0
    )[0]


def test_a_router_is_cut_live_only_from_the_isp() -> None:
    assert not_live(load_playbook(ROOT / "playbooks" / "router-cut-from-isp.yaml")) == []
    why = not_live(load_playbook(ROOT / "playbooks" / "agent-cut-from-its-router.yaml"))
    assert why and why[0].startswith("link_cut between dc1-a, router-dc1: "), why
    # what the clients lose in dc1: web's prefix and mail's address, not what the operator
    # reaches there (ZooKeeper on 10.1.0.2-3, the daemon's API on 10.1.0.2)
    assert served(load_topology(REFERENCE).config, "dc1") == ["10.1.0.13", "203.0.113.0/24"]


def test_a_campaign_drawing_cuts_finer_than_the_lab_s_is_not_live(tmp_path: Path) -> None:
    from failover.live.chaos import not_live as campaign_not_live
    from failover.sim.campaign import load_campaign

    spec = yaml.safe_load((ROOT / "simulations" / "chaos-live.yaml").read_text())
    spec["topology"] = str(REFERENCE)
    spec["classes"]["fine_cut"] = {
        "weight": 1,
        "duration": {"dist": "uniform", "min_s": 3, "max_s": 5},
        "fault": {"kind": "link_cut", "between": [["dc1-a", "zk-dc2-1"], ["router-dc2", "isp"]]},
    }
    path = tmp_path / "fine.yaml"
    path.write_text(yaml.safe_dump(spec))
    why = campaign_not_live(load_campaign(path))
    assert len(why) == 1 and why[0].startswith("classes.fine_cut: link_cut between dc1-a, "), why


def test_loss_on_a_site_s_own_checks_is_not_live() -> None:
    book = load_playbook(ROOT / "playbooks" / "own-checks-lossy.yaml")
    why = not_live(book)
    assert any("probe_loss between dc1 and itself" in line for line in why), why


def test_a_near_tie_is_a_schedule_whose_predicted_outcome_flips_with_the_draws() -> None:
    from failover.live.chaos import NEAR_TIE_DRAWS, outcome_spread, schedule_playbook
    from failover.sim.campaign import load_campaign

    campaign = load_campaign(ROOT / "simulations" / "chaos-live.yaml")
    spreads = {s: outcome_spread(schedule_playbook(campaign, s), s) for s in range(1, 7)}
    assert all(sum(spread.values()) == NEAR_TIE_DRAWS for spread in spreads.values())
    assert len(spreads[2]) > 1, spreads  # seed 2: 13 of 60 draws switch (the lab's side)
    assert any(len(spread) == 1 for spread in spreads.values()), spreads


def test_a_daemon_fault_on_a_daemon_that_is_not_running_hits_nothing() -> None:
    """As in the model (a pause or crash of a daemon that is down does nothing): live chaos
    seed 19 paused dc2-a while dc2 had no power, and the run ended in an error."""
    from types import SimpleNamespace

    from failover.live.faults import Injector
    from failover.sim.faults import DaemonFault

    topology = load_topology(REFERENCE)
    down = SimpleNamespace(site="dc2", child_pid=lambda: None)  # no daemon process
    lab = SimpleNamespace(topology=topology, config=topology.config, daemons={"dc2-a": down})
    said: list[str] = []
    injector = Injector(
        lab,  # type: ignore[arg-type]
        lambda: 12.5,
        lambda _group: "dc1",
        lambda: "dc1-a",
        lambda kind, text: said.append(text),
    )
    fault = injector.inject(DaemonFault(kind="daemon_pause", instance="dc2-a"))
    assert fault.end == fault.start == 12.5
    assert "not running" in fault.label and said, said


def test_a_switch_counts_from_the_leader_s_time_not_from_when_it_was_read() -> None:
    """The operator could read nothing for 7 s (the ZooKeeper quorum went just after the
    switch was written): the switch happened when the leader wrote it (live chaos seed 49)."""
    config = load_topology(REFERENCE).config
    history = _history()
    late = GroupState("web", "dc2", 2, "switching", "dc1", code="failover", last_switch_at=1012.1)
    history.desired["web"] = [history.desired["web"][0], (19.2, late)]
    switches = LiveMetrics(history, config, {"web": 1.0}).switch_log()
    assert [(round(at, 6), group) for at, group in switches] == [(12.1, "web")]


def test_a_graceful_stage_shorter_than_the_sampling_is_read_from_the_decisions() -> None:
    """Live planned-switchover: restoring lasted 38 ms (every name server took the TTL at
    once), so no 0.2 s sample showed it; the leader's decisions carry its time."""
    from failover.coord.base import AuditEntry

    config = load_topology(REFERENCE).config
    start = 1_800_000_000.0
    history = History(start)
    history.desired = {
        "mail": [(0.0, GroupState("mail", "dc1", 1)), (90.4, GroupState("mail", "dc2", 6))]
    }

    def decided(at: float, code: str, sentence: str = "") -> AuditEntry:
        decision = {"kind": "desired", "group": "mail", "code": code, "sentence": sentence}
        return AuditEntry(0, start + at, "desired", {"decision": decision}, "", "")

    history.audit = [
        decided(60.2, "switchover", "graceful switchover to dc2 by failover-operator"),
        decided(60.24, "graceful_draining"),
        decided(90.202, "graceful_restoring"),
        decided(90.24, "graceful_done"),
    ]
    history.end = 150.0
    metrics = LiveMetrics(history, config, {"mail": 1.0})
    groups = ["web", "mail"]
    assert metrics.timed(parse_expr("graceful(mail) == restoring within 81 s", groups), 10.0)[0]
    assert metrics.timed(parse_expr("graceful(mail) == switching not before 50 s", groups), 10.0)[0]
    assert metrics.holds(parse_expr("graceful(mail) == none", groups))[0]


def test_a_switchover_the_operator_cli_refused_counts_as_refused() -> None:
    """The CLI runs the pre-checks and refuses before submitting, so the leader never sees
    the command (live what-an-sre-checks: `refused(switchover to dc1) naming target` failed
    though the CLI had refused it naming the target)."""
    from failover.live.faults import cli_refusal

    output = (
        "web: pre-checks\n  FAIL  target  dc1 is already the active site\n"
        "  pass  budget  0 of 4 switches used in the last hour\n"
        "failover switchover: switchover refused: web: target: dc1 is already the active site"
        " (--force overrides target_healthy, not_frozen, budget)\n"
    )
    assert cli_refusal(output) == ["target"]
    assert cli_refusal("web: submitted cmd-1\n") is None
    config = load_topology(REFERENCE).config
    history = _history()
    history.refusals = [(5.0, "switchover", "dc1", ["target"])]
    metrics = LiveMetrics(history, config, {"web": 1.0})
    groups = ["web", "mail"]
    assert metrics.holds(parse_expr("refused(switchover to dc1) naming target", groups))[0]
    assert not metrics.holds(parse_expr("refused(switchover to dc2)", groups))[0]
    assert not metrics.holds(parse_expr("refused(switchover to dc1) naming budget", groups))[0]


def _no_witness_outage(kind: str) -> History:
    """two-site: dc1 holds two of the three ZooKeeper servers; at 10 s they die with `kind`
    (dc1's power, or only the servers), and at 13 s the isp's best route moves to dc2's
    backup."""
    h = History(wall_start=1000.0)
    h.best = [(0.0, ("dc1", "primary")), (13.0, ("dc2", "backup"))]
    h.faults = [LiveFault(kind, "dc1 goes", 10.0, 250.0, (), ("dc1",), zookeeper_down=(0, 1))]
    h.end = 300.0
    return h


def test_a_route_that_goes_with_its_router_s_power_needs_no_quorum() -> None:
    config = load_topology(ROOT / "simulations" / "two-site.yaml").config
    power = LiveMetrics(_no_witness_outage("site_power_loss"), config, {"web": 1.0})
    assert not power.found
    servers = LiveMetrics(_no_witness_outage("zookeeper_server_down"), config, {"web": 1.0})
    assert [v["name"] for v in servers.found] == ["moved_without_quorum"]
