from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest
import yaml

from failover.config import parse_config
from failover.core import View
from failover.core.model import Command
from failover.core.transitions import IllegalTransition, transition

from .world import EXAMPLE, Run, everyone_sees, example

CONFIG = example()
HOLD_DOWN_S = CONFIG.policy.hold_down_s
DB_DOWN = everyone_sees(CONFIG, "dc1", "db")
DC1_DOWN = [k for s in ("app", "lb", "db", "firewall") for k in everyone_sees(CONFIG, "dc1", s)]
DC2_DOWN = [k for s in ("app", "lb", "db", "firewall") for k in everyone_sees(CONFIG, "dc2", s)]


def configured(**policy: object) -> Run:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["policy"].update(policy)
    return Run(parse_config(yaml.safe_dump(data), base=EXAMPLE.parent))


def failed_over(run: Run, start: float = 10.0) -> float:
    """dc1's db fails; returns the time the switch began."""
    run.step(start - 10)
    run.step(start, down=DB_DOWN)
    t = start + CONFIG.policy.hold_down_s
    run.step(t, down=DB_DOWN)
    return t


def test_initial_state_is_the_preferred_site() -> None:
    run = Run()
    run.step(0)
    assert run.state().active == "dc1" and run.state().epoch == 1
    assert run.state().announcement("dc1") == "primary"
    assert run.state().announcement("dc2") == "backup"


def test_failover_after_hold_down_demotes_first() -> None:
    run = Run()
    run.step(0)
    run.step(10, down=DB_DOWN)
    assert run.state().phase == "suspect" and run.codes()[-1] == "hold_down"
    assert run.last.wake_at == 10 + CONFIG.policy.hold_down_s
    run.step(11, down=DB_DOWN)
    assert run.state().active == "dc1"
    run.step(12, down=DB_DOWN)
    state = run.state()
    assert (state.phase, state.active, state.switch_from, state.epoch) == (
        "switching",
        "dc2",
        "dc1",
        2,
    )
    assert state.primaries(["dc1", "dc2"]) == []
    sentence = run.decisions[-1].sentence
    assert sentence == (
        "dc1 db down by 3/3 observer sites for 2.0 s; failing over to dc2, "
        "demoting dc1 first, epoch 2"
    )


def test_promotion_waits_for_confirmed_demotion() -> None:
    run = Run()
    t = failed_over(run)
    run.step(t + 0.1, down=DB_DOWN)
    assert run.state().phase == "switching" and run.codes()[-1] == "awaiting_demotion"
    run.confirm("web", "dc1", t + 0.2)
    run.step(t + 0.3, down=DB_DOWN)
    assert run.state().phase == "steady" and run.state().epoch == 3
    assert run.state().primaries(["dc1", "dc2"]) == ["dc2"]
    assert run.decisions[-1].sentence.startswith("dc1 confirmed backup at epoch 2")


def test_confirmation_of_an_older_epoch_does_not_count() -> None:
    run = Run()
    run.step(0)
    run.confirm("web", "dc1", 0)  # epoch 1, primary
    t = failed_over(run)
    run.step(t + 1, down=DB_DOWN)
    assert run.state().phase == "switching"


def test_promotion_after_lease_surely_expired() -> None:
    run = Run()
    t = failed_over(run)
    wait = run.engine.demote_wait_s("web")
    daemon = CONFIG.cluster.daemon  # max(lease, watchdog) + stop hook + cycle
    assert wait == max(6, daemon.watchdog_s) + daemon.stop_hook_s + daemon.cycle_s
    run.step(t + wait - 0.01, down=DB_DOWN)
    assert run.state().phase == "switching"
    run.step(t + wait, down=DB_DOWN)
    assert run.state().phase == "steady" and run.state().active == "dc2"
    assert run.decisions[-1].evidence["confirmed"] is False


def test_dns_group_switches_in_one_step() -> None:
    run = Run()
    run.step(0)
    down = everyone_sees(CONFIG, "dc1", "mail")
    run.step(10, down=down)
    run.step(12, down=down)
    state = run.state("mail")
    assert (state.phase, state.active, state.epoch) == ("steady", "dc2", 2)
    assert run.state().active == "dc1"  # web does not use mail


def test_recovery_during_hold_down_cancels() -> None:
    run = Run()
    run.step(0)
    run.step(10, down=DB_DOWN)
    run.step(11)
    assert run.state().phase == "steady" and run.codes()[-1] == "recovered"
    run.step(11.5, down=DB_DOWN)
    run.step(12.5, down=DB_DOWN)
    assert run.state().phase == "suspect"  # hold-down restarted at 11.5


def test_fail_open_when_both_sites_are_down() -> None:
    run = Run()
    run.step(0)
    run.step(10, down=DC1_DOWN + DC2_DOWN)
    run.step(20, down=DC1_DOWN + DC2_DOWN)
    assert run.state().active == "dc1" and run.state().epoch == 1
    assert run.decisions[-1].kind == "alert" and run.codes()[-1] == "fail_open"


def test_target_not_healthy_blocks() -> None:
    run = Run()
    run.step(0)
    down = DB_DOWN + [("witness", "dc2", "app")]
    run.step(10, down=down)
    run.step(20, down=down)
    assert run.state().active == "dc1" and run.codes()[-1] == "target_unhealthy"


def test_isolation_does_not_trigger() -> None:
    run = Run()
    down = [("dc2", "dc1", s) for s in ("app", "lb", "db", "firewall")]
    run.step(0, down=down)
    run.step(100, down=down)
    assert run.state().phase == "steady" and run.state().epoch == 1
    assert run.codes()[-1] == "active_site_isolated"


def test_frozen_blocks_automatic_failover() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "freeze", "alice", "maintenance"))
    assert run.state().frozen and run.state("mail").frozen
    run.step(10, down=DB_DOWN)
    run.step(20, down=DB_DOWN)
    assert run.state().active == "dc1" and run.codes()[-1] == "frozen"
    run.command(21, Command("c2", "unfreeze", "alice"), down=DB_DOWN)
    run.step(22, down=DB_DOWN)  # no longer blocked: the hold-down starts again from here
    assert run.state().active == "dc1" and run.codes()[-1] == "hold_down"
    run.step(22 + HOLD_DOWN_S - 0.01, down=DB_DOWN)
    assert run.state().active == "dc1"
    run.step(22 + HOLD_DOWN_S, down=DB_DOWN)
    assert run.state().active == "dc2"


def test_cooldown_blocks_a_second_switch() -> None:
    run = configured(failback="auto", failback_after_s=0)
    t = failed_over(run)
    run.confirm("web", "dc1", t)
    run.step(t + 1)
    assert run.state().active == "dc2" and run.state().phase == "steady"
    run.step(t + 2)
    assert run.state().active == "dc2" and run.codes()[-1] == "failback_cooldown"
    run.step(t + CONFIG.policy.cooldown_s)  # unblocked: the failback wait starts from here
    assert run.state().active == "dc2"
    run.step(t + CONFIG.policy.cooldown_s + HOLD_DOWN_S)
    assert run.state().active == "dc1" and run.codes()[-1] == "failback"


def test_budget_per_hour() -> None:
    run = configured(max_switches_per_hour=1, cooldown_s=0)
    t = failed_over(run)
    run.step(t + 100)
    down = [k for s in ("db",) for k in everyone_sees(CONFIG, "dc2", s)]
    run.step(t + 200, down=down)
    run.step(t + 300, down=down)
    assert run.state().active == "dc2" and run.codes()[-1] == "budget"
    run.step(t + 3601, down=down)
    assert run.state().active == "dc2" and run.codes()[-1] == "hold_down"
    run.step(t + 3601 + HOLD_DOWN_S, down=down)
    assert run.state().active == "dc1"


def test_no_automatic_failback_by_default() -> None:
    run = Run()
    t = failed_over(run)
    run.step(t + 100)
    run.step(t + 10000)
    assert run.state().active == "dc2"


def test_automatic_failback_after_the_preferred_site_is_healthy_long_enough() -> None:
    run = configured(failback="auto", failback_after_s=60, cooldown_s=0)
    t = failed_over(run)
    run.step(t + 20)  # promoted: dc2 primary
    run.step(t + 21)  # dc1 healthy: the failback timer starts
    run.step(t + 79)
    assert run.last.wake_at == t + 81
    run.step(t + 80.9)
    assert run.state().active == "dc2"
    run.step(t + 81)
    assert run.state().active == "dc1" and run.codes()[-1] == "failback"


def test_failback_timer_resets_when_preferred_falters() -> None:
    run = configured(failback="auto", failback_after_s=60, cooldown_s=0)
    t = failed_over(run)
    run.step(t + 20)
    run.step(t + 50, down=DB_DOWN)
    run.step(t + 81)
    assert run.state().active == "dc2"


def test_manual_switchover_reports_every_precheck() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", "patching", group="web", site="dc2"))
    decision = [d for d in run.decisions if d.kind == "command"][-1]
    assert decision.code == "accepted"
    assert [c.name for c in decision.checks] == [
        "target",
        "target_healthy",
        "not_frozen",
        "nothing_in_flight",
        "budget",
    ]
    assert all(c.passed for c in decision.checks)
    assert run.state().phase == "switching" and run.state().by == "bob"
    override = run.state().override
    assert override is not None and override.until is None


def test_switchover_refused_with_reasons_and_forced() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2"), down=DC2_DOWN)
    refused = run.decisions[-1]
    assert refused.code == "refused" and "target_healthy: dc2 is site_down" in refused.sentence
    assert run.state().epoch == 1
    run.command(
        2, Command("c2", "switchover", "bob", group="web", site="dc2", force=True), down=DC2_DOWN
    )
    assert run.decisions[-1].code == "accepted"
    assert "forced past target_healthy" in run.decisions[-1].sentence
    assert [d.evidence.get("forced") for d in run.decisions if d.kind == "desired"][-1] == [
        "target_healthy"
    ]


def test_force_never_overrides_a_switch_in_flight_or_a_bad_target() -> None:
    run = Run()
    t = failed_over(run)
    run.command(t + 0.1, Command("c1", "switchover", "bob", group="web", site="dc1", force=True))
    assert run.decisions[-1].code == "refused" and "nothing_in_flight" in run.decisions[-1].sentence
    run.command(t + 0.2, Command("c2", "switchover", "bob", group="web", site="dc9", force=True))
    assert "'dc9' is not a serving site" in run.decisions[-1].sentence


def test_switchover_to_the_active_site_is_refused() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc1"))
    assert run.decisions[-1].sentence == "switchover to dc1 refused: target: dc1 is already active"


def test_unknown_group_is_refused() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="nope", site="dc2"))
    assert run.decisions[-1].code == "refused"


def test_scheduled_switchover_runs_at_its_time_with_fresh_prechecks() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2", at=100))
    assert run.decisions[-1].code == "scheduled"
    run.step(98)
    assert run.state().active == "dc1" and run.last.wake_at == 100
    run.step(100)
    assert run.state().active == "dc2" and run.state().scheduled is None


def test_scheduled_switchover_refused_when_due_if_target_unhealthy() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2", at=100))
    run.step(100, down=DC2_DOWN)
    assert run.state().active == "dc1" and run.codes()[-1] == "refused"


def test_an_expired_override_with_manual_failback_stays() -> None:
    run = configured(cooldown_s=0)
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2", expires_s=600))
    run.confirm("web", "dc1", 2)
    run.step(2)
    override = run.state().override
    assert run.state().active == "dc2" and override is not None and override.until == 601
    run.step(598)
    assert run.last.wake_at == 601
    run.step(601)
    assert run.state().override is None and run.codes()[-1] == "override_lapsed"
    assert "failback is manual" in run.decisions[-1].sentence
    run.step(5000)
    assert run.state().active == "dc2"


def test_an_expired_override_fails_back_as_an_automatic_switch() -> None:
    run = configured(failback="auto", failback_after_s=30, cooldown_s=700)
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2", expires_s=600))
    run.confirm("web", "dc1", 2)
    run.step(2)
    run.step(601)  # lapsed, but the cooldown of the switchover still runs until 701
    assert run.state().override is None and run.state().active == "dc2"
    run.step(701)  # unblocked: the failback wait starts now
    assert run.state().active == "dc2"
    run.step(731)
    assert run.state().active == "dc1" and run.codes()[-1] == "failback"


def test_override_suppresses_automatic_failback() -> None:
    run = configured(failback="auto", failback_after_s=0, cooldown_s=0)
    run.step(0)
    run.command(1, Command("c1", "switchover", "bob", group="web", site="dc2"))
    run.confirm("web", "dc1", 2)
    for t in (2, 100, 1000):
        run.step(t)
    assert run.state().active == "dc2"
    run.command(1001, Command("c2", "switchover", "bob", group="web", site="dc1"))
    assert run.state().override is None


def test_freeze_is_idempotent_and_recorded() -> None:
    run = Run()
    run.step(0)
    run.command(1, Command("c1", "freeze", "alice", "game day", group="web"))
    run.command(2, Command("c2", "freeze", "alice", "again", group="web"))
    assert run.decisions[-1].sentence == "already frozen"
    assert run.state().frozen_reason == "game day" and not run.state("mail").frozen


def test_transition_table_is_enforced() -> None:
    assert transition("steady", "suspect") == "suspect"
    with pytest.raises(IllegalTransition):
        transition("switching", "switch")
    with pytest.raises(IllegalTransition):
        transition("steady", "promote")


def test_wake_at_names_the_next_timer() -> None:
    run = Run()
    run.step(0)
    assert run.last.wake_at is None  # nothing pending
    assert run.last.stale_at == CONFIG.policy.stale_after_s  # observations go stale then
    run.step(10, down=DB_DOWN)
    assert run.last.wake_at == 10 + CONFIG.policy.hold_down_s


def test_a_note_changes_nothing_and_is_recorded() -> None:
    run = Run()
    run.step(0)
    before = dict(run.states)
    run.command(1, Command("c1", "note", "api", "refused POST /switchover: bad signature"))
    assert run.states == before
    assert run.decisions[-1].sentence == "noted from api: refused POST /switchover: bad signature"


def lost_view(
    run: Run, now: float, gone_at: float, down: Iterable[tuple[str, str, str]] = ()
) -> View:
    """dc1's agent has had no session since `gone_at` (as the leader saw it)."""
    return replace(
        run.view(now, down=down), agents=frozenset({"dc2"}), agents_gone_at={"dc1": gone_at}
    )


def test_a_lost_agent_moves_a_bgp_group_but_not_a_dns_group() -> None:
    run = Run()
    run.step(0)
    step = run.engine.step(run.states, lost_view(run, 10, 10))
    assert step.health["web"]["dc1"].situation == "agent_lost"
    assert step.health["mail"]["dc1"].situation == "healthy"
    run.states = dict(step.states)
    assert run.state().phase == "suspect"
    step = run.engine.step(run.states, lost_view(run, 12, 10))
    state = step.states["web"]
    assert (state.phase, state.active, state.code) == ("switching", "dc2", "failover")
    assert step.decisions[-1].sentence.startswith(
        "dc1 has had no agent with a coordinator session for 2.0 s; it cannot hold primary; "
        "failing over to dc2"
    )
    assert step.states["mail"].active == "dc1"


def test_no_agent_anywhere_stays_put() -> None:
    run = Run()
    run.step(0)
    for t in (10, 20):
        step = run.engine.step(run.states, replace(run.view(t), agents=frozenset()))
        run.states = dict(step.states)
    assert run.state().active == "dc1" and step.decisions[-1].code == "fail_open"


def test_after_a_lost_agent_promotion_waits_from_when_its_session_was_seen_gone() -> None:
    run = Run()
    run.step(0)
    for t in (10, 12):
        run.states = dict(run.engine.step(run.states, lost_view(run, t, 10)).states)
    state = run.state()
    wait = run.engine.demote_wait_s("web")
    assert state.phase == "switching" and state.demote_by == 10 + wait
    step = run.engine.step(run.states, lost_view(run, 10 + wait - 0.1, 10))
    assert step.states["web"].phase == "switching" and step.wake_at == 10 + wait
    step = run.engine.step(step.states, lost_view(run, 10 + wait, 10))
    assert step.states["web"].phase == "steady" and step.states["web"].active == "dc2"
    assert step.decisions[-1].evidence["confirmed"] is False


def test_an_agent_lost_during_the_hold_down_counts_from_its_loss_not_the_suspicion() -> None:
    """The defect: a service fails at 10, the agent's session goes at 11.5, in the hold-down.
    Counting the lease from the suspicion (10) would promote dc2 while dc1 is still primary."""
    run = Run()
    run.step(0)
    run.step(10, down=DB_DOWN)
    assert run.state().phase == "suspect"
    run.states = dict(run.engine.step(run.states, lost_view(run, 12, 11.5, down=DB_DOWN)).states)
    state = run.state()
    assert state.phase == "switching"
    assert state.demote_by == 11.5 + run.engine.demote_wait_s("web")
