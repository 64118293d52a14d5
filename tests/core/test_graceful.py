"""Graceful switchover: the stages of both methods, cancellation by a failover, the table."""

from __future__ import annotations

from typing import cast

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.config import parse_config
from failover.core import graceful
from failover.core.codec import decode, encode
from failover.core.model import Command, Graceful, GroupState
from failover.core.transitions import IllegalTransition

from .world import EXAMPLE, Run, everyone_sees

TTL = 30  # mail's configured TTL in the example


def configured(**policy: object) -> Run:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["policy"].update(drain_s=10, graceful_ttl_s=5, graceful_verify_s=15, **policy)
    return Run(parse_config(yaml.safe_dump(data), base=EXAMPLE.parent))


def command(group: str, site: str = "dc2", at: float | None = None, **fields: object) -> Command:
    return Command("c1", "switchover", "alice", "maintenance", group, site, at=at, **fields)  # type: ignore[arg-type]


def dns_verified(run: Run, group: str, now: float) -> None:
    """The leader's DNS steering verified the current epoch on every name server."""
    for site in run.config.serving_sites:
        run.confirm(group, site, now)


def stage(run: Run, group: str) -> str | None:
    plan = run.state(group).graceful
    return plan.stage if plan else None


def test_dns_lowers_the_ttl_switches_at_t_then_restores_it() -> None:
    run = configured()
    run.step(0.0)
    run.command(1.0, command("mail", at=100.0, graceful=True))
    assert run.state("mail").scheduled is not None
    assert run.last.wake_at is None or run.last.wake_at >= 1.0
    assert run.step(69.0).wake_at == 70.0  # T - old TTL
    assert stage(run, "mail") is None
    epoch = run.state("mail").epoch
    run.step(70.0)
    state = run.state("mail")
    assert (stage(run, "mail"), state.active, state.epoch) == ("preparing", "dc1", epoch + 1)
    assert graceful.dns_ttl(state, TTL) == 5
    assert "graceful_preparing" in run.codes("mail")
    assert run.step(80.0).wake_at == 100.0
    run.step(100.0)  # T: the fenced switch
    state = run.state("mail")
    assert (stage(run, "mail"), state.active, state.epoch) == ("switching", "dc2", epoch + 2)
    assert graceful.dns_ttl(state, TTL) == 5
    assert state.override is not None and state.override.site == "dc2"
    run.step(100.5)
    assert run.codes("mail")[-1] == "graceful_waiting"
    dns_verified(run, "mail", 100.6)
    run.step(100.7)
    assert stage(run, "mail") == "draining"
    assert run.last.wake_at == 130.0  # T + old TTL
    run.step(130.0)
    state = run.state("mail")
    assert (stage(run, "mail"), state.epoch) == ("restoring", epoch + 4)  # every move: an epoch
    assert graceful.dns_ttl(state, TTL) == TTL
    dns_verified(run, "mail", 130.2)
    run.step(130.3)
    assert run.state("mail").graceful is None
    assert run.state("mail").epoch == epoch + 5
    desired = [d.code for d in run.decisions if d.group == "mail" and d.kind == "desired"]
    assert desired[-5:] == [
        "graceful_preparing",
        "switchover",
        "graceful_draining",
        "graceful_restoring",
        "graceful_done",
    ]


def test_dns_without_at_switches_one_old_ttl_later() -> None:
    run = configured(graceful_switchover=True)  # the policy's default: graceful
    run.step(0.0)
    run.command(10.0, command("mail"))
    plan = run.state("mail").graceful
    assert plan is not None and (plan.stage, plan.at) == ("preparing", 10.0 + TTL)
    run.command(11.0, command("mail", site="dc1"))  # a second switchover: refused, in flight
    assert run.codes("mail")[-1] == "refused"
    assert "graceful switchover to dc2 is preparing" in run.decisions[-1].sentence


def test_dns_refused_at_t_restores_the_ttl_without_switching() -> None:
    run = configured()
    run.step(0.0)
    run.command(0.0, command("mail", graceful=True))
    run.step(TTL, down=everyone_sees(run.config, "dc2", "mail"))
    state = run.state("mail")
    assert (state.active, stage(run, "mail")) == ("dc1", "restoring")
    assert graceful.dns_ttl(state, TTL) == TTL
    assert "refused (target_healthy" in run.decisions[-1].sentence
    run.step(TTL + 20.0)  # never verified: the deadline ends the plan anyway
    assert run.state("mail").graceful is None
    assert run.codes("mail")[-1] == "graceful_done"


def test_bgp_holds_the_old_site_then_promotes_then_drains() -> None:
    run = configured()
    run.step(0.0)
    run.command(1.0, command("web", graceful=True))
    state = run.state("web")
    assert (stage(run, "web"), state.phase, state.active) == ("switching", "switching", "dc2")
    assert state.announcement("dc1") == "held"
    assert state.announcement("dc2") == "backup"
    run.confirm("web", "dc1", 1.2)  # the old site applied held
    run.step(1.3)
    state = run.state("web")
    assert (stage(run, "web"), state.phase) == ("draining", "steady")
    assert state.primaries(["dc1", "dc2"]) == ["dc2"]
    assert state.announcement("dc1") == "held"
    run.step(5.0)
    assert run.codes("web")[-1] == "graceful_waiting"
    run.confirm("web", "dc2", 5.1)
    run.step(11.2)
    assert stage(run, "web") == "draining"  # 10 s from the promotion at 1.3
    run.step(11.3)
    state = run.state("web")
    assert state.graceful is None
    assert state.announcement("dc1") == "backup"
    assert run.codes("web")[-1] == "graceful_done"


def test_bgp_drain_ends_even_without_confirmation() -> None:
    run = configured()
    run.step(0.0)
    run.command(0.0, command("web", graceful=True))
    run.confirm("web", "dc1", 0.1)
    run.step(0.2)
    run.step(10.2)
    assert stage(run, "web") == "draining"
    run.step(25.2)
    assert run.state("web").graceful is None
    assert "did not confirm primary" in run.decisions[-1].sentence


def test_a_failover_cancels_the_plan() -> None:
    run = configured(cooldown_s=0)
    run.step(0.0)
    run.command(0.0, command("mail", graceful=True))
    down = everyone_sees(run.config, "dc1", "mail")
    run.step(5.0, down=down)
    assert run.codes("mail")[-1] == "hold_down"
    run.step(8.0, down=down)
    state = run.state("mail")
    assert (state.active, state.graceful) == ("dc2", None)
    assert graceful.dns_ttl(state, TTL) == TTL
    assert run.codes("mail")[-2:] == ["graceful_cancelled", "failover"]


def test_a_failover_during_the_drain_cancels_it() -> None:
    run = configured(cooldown_s=0)
    run.step(0.0)
    run.command(0.0, command("web", graceful=True))
    run.confirm("web", "dc1", 0.1)
    run.step(0.2)
    down = everyone_sees(run.config, "dc2", "app")
    run.step(1.0, down=down)
    run.step(4.0, down=down)
    state = run.state("web")
    assert (state.phase, state.active, state.graceful) == ("switching", "dc1", None)
    assert "graceful_cancelled" in run.codes("web")


def test_the_plan_survives_the_coordinator() -> None:
    run = configured()
    run.step(0.0)
    run.command(0.0, command("mail", graceful=True, force=True))
    state = run.state("mail")
    assert decode(GroupState, encode(state)) == state


def test_only_the_table_moves_a_plan() -> None:
    assert graceful.move("dns", None, "prepare") == "preparing"
    assert graceful.move("bgp", "draining", "drained") is None
    with pytest.raises(IllegalTransition):
        graceful.move("bgp", None, "prepare")  # BGP has no TTL to lower
    with pytest.raises(IllegalTransition):
        graceful.move("dns", "restoring", "switch")
    with pytest.raises(ValueError, match="graceful"):
        GroupState(
            "web",
            "dc1",
            graceful=Graceful("draining", "bgp", "dc1", "dc2", 0.0, 1.0),
        )


# --- properties: never two primaries in effect, epochs only grow, the plan always ends -------

SITES = ("dc1", "dc2")
LEASE_S = 6.0  # web's lease in the example
events = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.floats(0.1, 40.0)),
        st.tuples(st.just("confirm"), st.sampled_from(SITES)),
        st.tuples(st.just("down"), st.sampled_from([(), ("dc1",), ("dc2",)])),
        st.tuples(
            st.just("switchover"),
            st.tuples(
                st.sampled_from(["web", "mail"]),
                st.sampled_from(SITES),
                st.sampled_from([None, 20.0, 45.0]),
                st.booleans(),
            ),
        ),
    ),
    max_size=30,
)


class Agents:
    """Each site's announcement as its agent last applied it; a primary it has not confirmed
    for a lease is held (core.agent), as the daemon's agents do."""

    def __init__(self) -> None:
        self.effect: dict[str, tuple[str, float]] = {site: ("backup", 0.0) for site in SITES}

    def confirm(self, run: Run, site: str, now: float) -> None:
        state = run.states.get("web")
        if state is not None:
            self.effect[site] = (state.announcement(site), now)
            run.confirm("web", site, now)
        if "mail" in run.states:
            run.confirm("mail", site, now)  # the leader's DNS steering verified it

    def primaries(self, now: float) -> list[str]:
        return [s for s, (a, at) in self.effect.items() if a == "primary" and now < at + LEASE_S]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_never_two_primaries_epochs_grow_the_plan_ends(history: list[tuple[str, object]]) -> None:
    run = configured(cooldown_s=5)
    agents = Agents()
    now, down_sites = 0.0, cast(tuple[str, ...], ())
    epochs = {"web": 0, "mail": 0}

    def step() -> None:
        down = [t for site in down_sites for t in everyone_sees(run.config, site, "app")]
        down += [t for site in down_sites for t in everyone_sees(run.config, site, "mail")]
        run.step(now, down=down)
        for group, state in run.states.items():
            assert state.epoch >= epochs[group], f"{group}: epoch went back"
            epochs[group] = state.epoch
            assert len(state.primaries(list(SITES))) <= 1
        assert len(agents.primaries(now)) <= 1, agents.effect

    for kind, arg in history:
        if kind == "wait":
            assert isinstance(arg, float)
            now += arg
        elif kind == "confirm":
            assert isinstance(arg, str)
            agents.confirm(run, arg, now)
        elif kind == "down":
            down_sites = arg  # type: ignore[assignment]
        else:
            group, target, at, gentle = cast(tuple[str, str, float | None, bool], arg)
            later = None if at is None else now + at
            run.command(now, command(group, site=target, at=later, graceful=gentle))
        step()
    down_sites = ()
    for _ in range(400):  # calm: both sites healthy, every agent confirms each second
        now += 1.0
        for name in SITES:
            agents.confirm(run, name, now)
        step()
    for group, state in run.states.items():
        assert state.graceful is None, f"{group}: the plan did not end ({state.graceful})"
        assert state.scheduled is None or state.scheduled.at is None
