"""Property tests of the safety rules over random histories (hypothesis, 1,000+ each)."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.config import parse_config
from failover.core import Engine
from failover.core.model import Command, Decision, GroupState, Observation
from tests.broken import StickyHoldDown

from .world import EXAMPLE, Run

DATA = yaml.safe_load(EXAMPLE.read_text())
DATA["policy"].update(
    failback="auto", failback_after_s=20, cooldown_s=10, max_switches_per_hour=3, hold_down_s=2
)
CONFIG = parse_config(yaml.safe_dump(DATA), base=EXAMPLE.parent)
SERVING = ("dc1", "dc2")
OBSERVERS = ("dc1", "dc2", "witness")
CRITICAL = {"web": ("app", "lb", "db", "firewall"), "mail": ("mail",)}
SERVICES = ("app", "lb", "db", "firewall", "mail")
SWITCH_CODES = {"failover", "failback", "switchover", "override_lapsed"}
AUTOMATIC = {"failover", "failback", "override_lapsed"}
QUORUM = CONFIG.observer_quorum
EXAMPLES = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

Triple = tuple[str, str, str]  # (observer site, site, service) seen down


def triples(
    observers: tuple[str, ...] = OBSERVERS, sites: tuple[str, ...] = SERVING
) -> list[Triple]:
    return [(o, s, svc) for o in observers for s in sites for svc in SERVICES]


def profile(sites: tuple[str, ...], services: tuple[str, ...]) -> frozenset[Triple]:
    return frozenset((o, s, svc) for o in OBSERVERS for s in sites for svc in services)


PROFILES = [
    frozenset(),
    profile(("dc1",), ("db",)),
    profile(("dc2",), ("app",)),
    profile(("dc1",), SERVICES),
    profile(("dc2",), SERVICES),
    profile(("dc1",), ("mail",)),
    profile(("dc2",), ("mail",)),
]


def downs(universe: list[Triple]) -> st.SearchStrategy[frozenset[Triple]]:
    allowed = [p for p in PROFILES if p <= set(universe)]
    return st.one_of(st.sampled_from(allowed), st.frozensets(st.sampled_from(universe)))


commands = st.one_of(
    st.builds(
        lambda site, group, force, expires: Command(
            "c", "switchover", "op", group=group, site=site, force=force, expires_s=expires
        ),
        st.sampled_from(["dc1", "dc2", "dc3"]),
        st.sampled_from([None, "web", "mail"]),
        st.booleans(),
        st.sampled_from([None, 30.0]),
    ),
    st.builds(
        lambda kind, group: Command("c", kind, "op", group=group),
        st.sampled_from(["freeze", "unfreeze"]),
        st.sampled_from([None, "web"]),
    ),
)


@dataclass
class Step:
    dt: float
    down: frozenset[Triple]
    absent: frozenset[str] = frozenset()
    confirm: bool = False
    command: Command | None = None


def histories(
    universe: list[Triple],
    with_commands: bool = True,
    absent: bool = True,
    extra: frozenset[Triple] = frozenset(),
) -> st.SearchStrategy[list[Step]]:
    step = st.builds(
        lambda dt, down, gone, confirm, command: Step(dt, down | extra, gone, confirm, command),
        st.floats(0.1, 40.0),
        downs(universe),
        st.frozensets(st.sampled_from(OBSERVERS), max_size=2) if absent else st.just(frozenset()),
        st.booleans(),
        st.one_of(st.none(), commands) if with_commands else st.none(),
    )
    return st.lists(step, min_size=1, max_size=30)


@dataclass
class Trace:
    """Everything a history produced, for the properties to read."""

    states: list[tuple[float, dict[str, GroupState], list[Observation]]] = field(
        default_factory=list
    )
    decisions: list[tuple[float, Decision, list[Observation]]] = field(default_factory=list)


def play(history: list[Step], engine: Engine | None = None) -> Trace:
    run, trace, now = Run(CONFIG), Trace(), 0.0
    if engine is not None:
        run.engine = engine
    run.step(now)
    trace.states.append((now, dict(run.states), []))
    for item in history:
        now += item.dt
        view = run.view(now, down=item.down, absent=item.absent)
        if item.confirm:
            for group, state in run.states.items():
                if state.switch_from:
                    run.confirm(group, state.switch_from, now)
            view = run.view(now, down=item.down, absent=item.absent)
        if item.command is not None:
            result = run.engine.command(run.states, item.command, view)
        else:
            result = run.engine.step(run.states, view)
        run.states = dict(result.states)
        # a command's view is not a policy cycle: the engine judges health only in steps
        seen = [] if item.command is not None else list(view.observations)
        trace.states.append((now, dict(run.states), seen))
        trace.decisions += [(now, d, list(view.observations)) for d in result.decisions]
    return trace


def switches(trace: Trace) -> list[tuple[float, Decision]]:
    return [(t, d) for t, d, _ in trace.decisions if d.kind == "desired" and d.code in SWITCH_CODES]


def votes(observations: list[Observation], site: str, service: str, verdict: str) -> int:
    return len(
        {
            o.site
            for o in observations
            if o.target.startswith(f"{site}/{service}/") and o.verdict == verdict
        }
    )


def triggered(observations: list[Observation], group: str, site: str) -> bool:
    """The site is down for the group: a quorum sees a critical service down."""
    return any(votes(observations, site, svc, "down") >= QUORUM for svc in CRITICAL[group])


def healthy(observations: list[Observation], group: str, site: str) -> bool:
    return all(
        votes(observations, site, svc, "up") >= QUORUM
        and votes(observations, site, svc, "down") == 0
        for svc in CRITICAL[group]
    )


@EXAMPLES
@given(histories(triples()))
def test_one_active_site_epochs_only_grow_and_never_two_primaries(history: list[Step]) -> None:
    trace = play(history)
    last: dict[str, int] = {}
    for _, states, _ in trace.states:
        for group, state in states.items():
            assert state.active in SERVING
            assert len(state.primaries(list(SERVING))) <= 1
            assert state.phase != "switching" or state.primaries(list(SERVING)) == []
            assert state.epoch >= last.get(group, 0)
            last[group] = state.epoch


@EXAMPLES
@given(histories(triples(), with_commands=False))
def test_no_automatic_switch_without_an_observer_quorum(history: list[Step]) -> None:
    trace = play(history)
    active = {group: CONFIG.preferred_site(group) for group in CRITICAL}
    for t, states, observations in trace.states[1:]:
        for group, state in states.items():
            if state.active != active[group]:
                assert triggered(observations, group, active[group]) or any(
                    d.code == "failback" for when, d, _ in trace.decisions if when == t
                )
                assert healthy(observations, group, state.active)
            active[group] = state.active


@EXAMPLES
@given(
    st.sampled_from(OBSERVERS).flatmap(
        lambda observer: histories(
            triples(observers=(observer,)), with_commands=False, absent=False
        )
    )
)
def test_one_observers_broken_network_never_switches(history: list[Step]) -> None:
    assert switches(play(history)) == []


@EXAMPLES
@given(
    histories(
        [("dc1", "dc2", s) for s in SERVICES] + [("dc2", "dc1", s) for s in SERVICES],
        with_commands=False,
        absent=False,
    )
)
def test_a_cut_between_the_serving_sites_alone_never_switches(history: list[Step]) -> None:
    assert switches(play(history)) == []


@EXAMPLES
@given(
    histories(
        triples(),
        with_commands=False,
        extra=profile(("dc1",), ("db", "mail")) | profile(("dc2",), ("app", "mail")),
    )
)
def test_both_sites_down_never_switches(history: list[Step]) -> None:
    trace = play(history)
    assert switches(trace) == []
    if sum(h.dt for h in history) > CONFIG.policy.hold_down_s + CONFIG.policy.stale_after_s:
        assert trace.decisions


@EXAMPLES
@given(histories(triples()))
def test_hold_down_cooldown_and_budget_always_hold(history: list[Step]) -> None:
    trace = play(history)
    policy = CONFIG.policy
    done = switches(trace)
    for group in CRITICAL:
        mine = [(t, d) for t, d in done if d.group == group]
        for i, (t, decision) in enumerate(mine):
            forced = bool(decision.evidence.get("forced"))
            window = [s for s, _ in mine[: i + 1] if s > t - 3600]
            if not forced:
                assert len(window) <= policy.max_switches_per_hour
            if decision.code in AUTOMATIC and i:
                assert t - mine[i - 1][0] >= policy.cooldown_s
            if decision.code == "failover":
                assert held_down_since(trace, group, t) <= t - policy.hold_down_s


def held_down_since(trace: Trace, group: str, t: float) -> float:
    """When the active site's current unbroken run of 'down by quorum' began, before t."""
    since = t
    cycles = [s for s in trace.states if s[0] < t and s[2]]
    for when, states, observations in reversed(cycles):
        if not triggered(observations, group, states[group].active):
            break
        since = when
    return since


def target_healthy_since(trace: Trace, group: str, t: float, target: str) -> float:
    """When the target's current unbroken run of 'healthy by quorum, not frozen' began,
    looking back from the policy cycle at t (commands do not break it unless they freeze)."""
    since = t
    for when, states, observations in reversed([s for s in trace.states if s[0] <= t]):
        if states[group].frozen:
            break
        if not observations:
            continue  # a command: the policy did not look at health then
        if not healthy(observations, group, target):
            break
        since = when
    return since


@EXAMPLES
@given(histories(triples()))
def test_the_target_is_healthy_and_unblocked_for_the_whole_hold_down(history: list[Step]) -> None:
    """Safety rule 7: an automatic failover happens only after a whole hold-down in which the
    target was healthy and automation not frozen; a blocked period restarts it."""
    assert hold_down_violations(play(history)) == []


def hold_down_violations(trace: Trace) -> list[str]:
    found = []
    for t, decision in switches(trace):
        if decision.code != "failover":
            continue
        states = next(s for when, s, _ in trace.states if when == t)
        target = states[decision.group].active
        since = target_healthy_since(trace, decision.group, t, target)
        if since > t - CONFIG.policy.hold_down_s:
            found.append(
                f"{decision.group}: failover to {target} at {t:.2f}; healthy and "
                f"unblocked only since {since:.2f}"
            )
    return found


def test_the_hold_down_property_catches_a_hold_down_that_survives_a_blocked_period() -> None:
    """The defect: both databases fail (fail-open blocks the switch), dc2's recovery is seen
    just before dc1's: the old rule failed over at once, its hold-down having run all along."""
    both = profile(("dc1", "dc2"), ("db",))
    history = [
        Step(10, both),
        Step(30, both),
        Step(60, profile(("dc1",), ("db",))),
        Step(0.1, frozenset()),
    ]
    assert hold_down_violations(play(history)) == []
    broken = play(history, engine=StickyHoldDown(CONFIG))
    assert hold_down_violations(broken) != []
