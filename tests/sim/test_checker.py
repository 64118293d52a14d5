"""Each safety invariant of the checker fails on a deliberately broken rule (tests only),
and each defect the adversarial review found has a playbook that the broken rule fails and
the shipped rules pass."""

from __future__ import annotations

import pytest

from failover.core import agent as core_agent
from failover.core import freshness
from failover.core.model import Observation
from failover.core.policy import Engine
from failover.sim.playbook import load_playbook
from failover.sim.run import Outcome, run_playbook
from failover.sim.world import World
from tests.broken import FailsOverAt30, IgnoresQuorum, OldRules, OverrideSnapsBack, StickyHoldDown
from tests.sim.conftest import ROOT


def play(name: str, engine: type[Engine] = Engine, seed: int = 1) -> Outcome:
    return run_playbook(
        load_playbook(ROOT / "playbooks" / f"{name}.yaml"), seed=seed, engine_factory=engine
    )


def names(outcome: Outcome) -> set[str]:
    return {str(v["name"]) for v in outcome.violations}


def test_lease_counted_from_the_suspicion_gives_two_primaries() -> None:
    assert play("agent-lost-in-hold-down").passed
    broken = play("agent-lost-in-hold-down", OldRules)
    assert "primary_overlap" in names(broken) and not broken.passed


def test_a_hold_down_that_survives_a_blocked_period_fails_over_to_an_unsettled_site() -> None:
    assert play("both-databases-recover").passed
    broken = play("both-databases-recover", StickyHoldDown)
    assert "unsettled_target" in names(broken) and broken.switches >= 1


def test_an_override_that_snaps_back_breaks_the_manual_failback_playbook() -> None:
    assert play("override-expires").passed
    broken = play("override-expires", OverrideSnapsBack)
    assert not broken.passed and broken.switches > 2


def test_a_failover_away_from_an_untouched_site_is_a_violation() -> None:
    broken = play("witness-lost", FailsOverAt30)
    assert {"false_failover", "switch_without_quorum"} <= names(broken)
    assert play("witness-lost").violations == []
    assert play("db-down").violations == []


def test_acting_on_one_observer_across_an_inter_site_cut_is_caught() -> None:
    broken = play("inter-site-cut", IgnoresQuorum)
    assert {"switch_on_inter_site_cut", "switch_without_quorum"} <= names(broken)


def test_demoting_to_backup_without_a_quorum_moves_traffic_and_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert play("zookeeper-outage-dc2-active").passed
    shipped = core_agent.announcement

    def demotes_to_backup(*args, **kwargs):  # type: ignore[no-untyped-def]
        said, why = shipped(*args, **kwargs)
        return ("backup", why) if said == "held" else (said, why)

    monkeypatch.setattr(core_agent, "announcement", demotes_to_backup)
    broken = play("zookeeper-outage-dc2-active")
    assert "moved_without_quorum" in names(broken)
    world = broken.series["world"]
    assert world.traffic.top("web") == "dc2"  # back on dc2 by the end
    assert any("web routers see dc2 backup" in line for line in broken.trace.splitlines())


def test_trusting_the_observers_clocks_drops_a_skewed_sites_votes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert play("clock-skew").passed

    def trusts_their_clocks(previous, observations, now):  # type: ignore[no-untyped-def]
        seen: list[Observation] = list(observations)
        return {}, seen

    monkeypatch.setattr("failover.daemon.leader.restamp", trusts_their_clocks)
    broken = play("clock-skew")
    failed = [v.name for v in broken.expectations if not v.passed]
    assert not broken.passed and "active(mail) == dc2 within 25 s" in failed
    assert freshness.restamp is not trusts_their_clocks  # the shipped rule is untouched


def test_an_epoch_going_back_on_a_router_is_a_violation() -> None:
    world = World(load_playbook(ROOT / "playbooks" / "db-down.yaml").topology, 1)
    checker = world.checker
    checker.route_changed(("web", "dc2"), "backup", "backup", 5, False)
    checker.route_changed(("web", "dc2"), "backup", "backup", 4, False)
    checker.dns_changed("mail", "dc2", 7)
    checker.dns_changed("mail", "dc1", 6)
    assert [v.name for v in checker.violations] == ["epoch_regress", "epoch_regress"]
