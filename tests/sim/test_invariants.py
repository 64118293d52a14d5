from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook
from failover.sim.topology import load_topology
from failover.sim.world import World
from tests.sim.conftest import REFERENCE


def _world() -> World:
    return World(load_topology(REFERENCE), 1)


def test_two_primaries_longer_than_the_bound_are_a_violation() -> None:
    world = _world()
    bound = world.checker.bound_s["web"]
    world.at(10.0, lambda _: world.steering.set_route(("web", "dc2"), "primary", "test"))
    world.run_until(10.0 + bound - 0.1)
    assert world.checker.violations == []
    world.run_until(10.0 + bound + 0.1)
    names = [v.name for v in world.checker.violations]
    assert names == ["primary_overlap"]
    assert any("both primary" in line for line in world.checker.violations[0].trace)


def test_the_bound_is_one_steering_apply() -> None:
    world = _world()
    assert world.checker.bound_s["web"] == world.model.steering.apply_s


def test_a_short_overlap_within_the_bound_is_not_a_violation() -> None:
    world = _world()
    world.at(10.0, lambda _: world.steering.set_route(("web", "dc2"), "primary", "test"))
    world.at(10.15, lambda _: world.steering.set_route(("web", "dc1"), "backup", "test"))
    world.run_until(60.0)
    assert world.checker.violations == []


def test_an_epoch_going_back_is_a_violation() -> None:
    world = _world()
    state = world.control.desired["web"]
    world.checker.on_desired(state, replace(state, epoch=5))
    world.checker.on_desired(state, replace(state, epoch=4))
    assert [v.name for v in world.checker.violations] == ["dual_active"]


def _book(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(f"topology: {REFERENCE.as_posix()}\n" + body, encoding="utf-8")
    return path


def test_abort_stops_the_method_and_runs_the_rollbacks(tmp_path: Path) -> None:
    book = load_playbook(
        _book(
            tmp_path,
            """title: abort
duration_s: 120
method:
  - {name: db, at_s: 5, fault: {kind: service_down, site: dc1, service: db}}
  - {name: later, at_s: 60, fault: {kind: service_down, site: dc2, service: app}}
expectations: [no_violations]
abort: [switches > 0]
rollbacks:
  - {kind: switchover, site: dc1, force: true, reason: rollback}
""",
        )
    )
    outcome = run_playbook(book)
    assert outcome.aborted == "switches > 0"
    assert not outcome.passed
    assert "dc2 app stops" not in outcome.trace  # the method stopped
    assert "#1 ends: db" in outcome.trace  # its faults ended
    assert "switchover to dc1 queued" in outcome.trace


def test_a_step_waits_for_its_condition_and_delay(tmp_path: Path) -> None:
    book = load_playbook(
        _book(
            tmp_path,
            """title: when
duration_s: 60
method:
  - {name: db, at_s: 5, fault: {kind: service_down, site: dc1, service: db}, duration_s: 40}
  - {name: freeze, when: active == dc2, delay_s: 2, fault: {kind: freeze}}
expectations:
  - {expect: active == dc2 within 0.1 s, from: freeze}
""",
        )
    )
    outcome = run_playbook(book)
    lines = outcome.trace.splitlines()
    promoted = next(float(x.split()[0]) for x in lines if "dc2 steady epoch 3" in x)
    frozen = next(float(x.split()[0]) for x in lines if " step " in x and "freeze" in x)
    assert abs(frozen - (promoted + 2.0)) < 1e-6


def test_phase_history_includes_the_hold_down(tmp_path: Path) -> None:
    book = load_playbook(
        _book(
            tmp_path,
            """title: suspect
duration_s: 30
method:
  - {name: db, at_s: 5, fault: {kind: service_down, site: dc1, service: db}, duration_s: 20}
expectations:
  - phase == suspect within 5 s
  - phase == switching within 7 s
""",
        )
    )
    outcome = run_playbook(book)
    assert [v.passed for v in outcome.expectations] == [True, True], outcome.expectations
