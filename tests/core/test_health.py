from __future__ import annotations

import pytest

from failover.config import parse_config
from failover.core import Engine, View
from failover.core.model import Observation, SiteHealth

from .world import EXAMPLE, everyone_sees, example, observations

CONFIG = example()
ENGINE = Engine(CONFIG)


def web(now: float = 100.0, **kwargs: object) -> dict[str, SiteHealth]:
    view = View(now, observations(CONFIG, now, **kwargs))  # type: ignore[arg-type]
    return ENGINE.assess(view)["web"]


def test_all_up_is_healthy() -> None:
    health = web()
    assert health["dc1"].situation == health["dc2"].situation == "healthy"
    assert health["dc1"].voters == 3


def test_one_service_down_by_every_observer() -> None:
    health = web(down=everyone_sees(CONFIG, "dc1", "db"))
    assert health["dc1"].situation == "service_down"
    assert health["dc1"].down == ("db",)
    assert health["dc1"].detail == "dc1 db down by 3/3 observer sites"
    assert health["dc2"].healthy


def test_quorum_of_two_sites_is_enough() -> None:
    health = web(down=[("dc2", "dc1", "db"), ("witness", "dc1", "db")])
    assert health["dc1"].situation == "service_down"


def test_every_critical_service_down_is_site_down() -> None:
    down = [
        key for svc in ("app", "lb", "db", "firewall") for key in everyone_sees(CONFIG, "dc1", svc)
    ]
    assert web(down=down)["dc1"].situation == "site_down"


def test_power_loss_seen_by_the_other_two_sites() -> None:
    down = [(o, "dc1", svc) for svc in ("app", "lb", "db", "firewall") for o in ("dc2", "witness")]
    health = web(down=down, absent=["dc1"])
    assert health["dc1"].situation == "site_down"
    assert health["dc1"].voters == 2


def test_one_observer_seeing_down_is_not_enough() -> None:
    health = web(down=[("witness", "dc1", "db")])
    assert health["dc1"].situation == "observers_disagree"


def test_cut_between_serving_sites_is_isolation_not_failure() -> None:
    down = [("dc2", "dc1", svc) for svc in ("app", "lb", "db", "firewall")]
    down += [("dc1", "dc2", svc) for svc in ("app", "lb", "db", "firewall")]
    health = web(down=down)
    assert health["dc1"].situation == "site_isolated"
    assert health["dc2"].situation == "site_isolated"
    assert "only dc2 sees dc1 down" in health["dc1"].detail


def test_not_enough_fresh_observers_is_no_quorum() -> None:
    health = web(absent=["dc2", "witness"])
    assert health["dc1"].situation == "no_quorum"


def test_stale_observations_do_not_vote() -> None:
    now = 100.0
    old = observations(
        CONFIG, now - CONFIG.policy.stale_after_s - 1, down=everyone_sees(CONFIG, "dc1", "db")
    )
    fresh = [o for o in observations(CONFIG, now) if o.site == "dc1"]
    health = ENGINE.assess(View(now, old + fresh))["web"]
    assert health["dc1"].situation == "no_quorum"


def test_unknown_verdicts_do_not_vote() -> None:
    unknown = [(o, s, svc) for o in ("dc1", "dc2", "witness") for s in ("dc1",) for svc in ("db",)]
    assert web(unknown=unknown)["dc1"].situation == "no_quorum"


def test_degraded_role_service_only_alerts() -> None:
    health = web(down=everyone_sees(CONFIG, "dc1", "edge"))
    assert health["dc1"].situation == "healthy"
    assert health["dc1"].degraded == ("edge",)


def test_service_outside_the_group_does_not_count() -> None:
    assert web(down=everyone_sees(CONFIG, "dc1", "mail"))["dc1"].healthy
    mail = ENGINE.assess(
        View(100.0, observations(CONFIG, 100.0, down=everyone_sees(CONFIG, "dc1", "mail")))
    )["mail"]
    assert mail["dc1"].situation == "site_down"


def test_instances_of_one_site_vote_by_majority() -> None:
    config = CONFIG.model_copy(
        update={
            "instances": {
                **CONFIG.instances,
                "dc2-b": CONFIG.instances["dc2-a"].model_copy(update={"api": "10.2.0.3:8700"}),
            }
        }
    )
    engine = Engine(config)
    obs = observations(config, 100.0)
    split = [
        Observation(o.instance, o.site, o.target, "down", 0, 100.0)
        if o.instance == "dc2-b" and o.target.startswith("dc1/db")
        else o
        for o in obs
    ]
    # one of dc2's two instances says down: a tie, so dc2 does not vote down
    assert engine.assess(View(100.0, split))["web"]["dc1"].situation == "healthy"


@pytest.mark.parametrize(
    "min_up, down_endpoints, expected",
    [(1, 1, "healthy"), (1, 2, "service_down"), (2, 1, "service_down")],
)
def test_min_up_endpoints(min_up: int, down_endpoints: int, expected: str) -> None:
    two = f'endpoints: ["10.1.0.10:8080", "10.1.0.20:8080"]\n        min_up: {min_up}'
    config = parse_config(EXAMPLE_TEXT.replace('endpoints: ["10.1.0.10:8080"]', two))
    engine = Engine(config)
    endpoints = ["10.1.0.10:8080", "10.1.0.20:8080"][:down_endpoints]
    obs = [
        Observation(o.instance, o.site, o.target, "down", 0, 100.0)
        if o.target in {f"dc1/app/{e}" for e in endpoints}
        else o
        for o in observations(config, 100.0)
    ]
    assert engine.assess(View(100.0, obs))["web"]["dc1"].situation == expected


EXAMPLE_TEXT = EXAMPLE.read_text()


def test_disagreement_names_each_services_split() -> None:
    health = web(down=[("witness", "dc1", "db"), ("dc2", "dc1", "app")])
    assert health["dc1"].situation == "observers_disagree"
    assert health["dc1"].detail == (
        "dc1 app down for dc2, up for dc1, witness; "
        "dc1 db down for witness, up for dc1, dc2; quorum is 2"
    )
