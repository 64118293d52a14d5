"""A demotion that fails while the old agent runs: the leader must not promote on the
stale-primary bound, which assumes an agent that runs can steer (or is killed and its stop
hook holds the site). The simulator found it: an agent cut from its router, dc1's db down."""

from __future__ import annotations

from dataclasses import replace

from failover.core.model import Applied

from .test_policy import DB_DOWN, failed_over
from .world import Run


def _stuck(run: Run, now: float) -> None:
    """dc1's agent read the switch (epoch 2) and reports its primary still in effect."""
    state = run.states["web"]
    run.applied[("web", "dc1")] = Applied(
        "web", "dc1", state.epoch, "primary", now, False, "router-dc1 unreachable"
    )


def test_no_promotion_while_the_old_agent_runs_and_reports_its_demotion_failed() -> None:
    run = Run()
    t = failed_over(run)
    _stuck(run, t + 0.1)
    wait = run.engine.demote_wait_s("web")
    run.step(t + wait + 30, down=DB_DOWN)
    assert run.state().phase == "switching" and run.state().epoch == 2
    assert run.codes()[-1] == "demotion_failed"
    assert "router-dc1 unreachable" in run.decisions[-1].sentence
    run.confirm("web", "dc1", t + wait + 31)  # it reached its router again
    run.step(t + wait + 32, down=DB_DOWN)
    assert run.state().phase == "steady" and run.state().primaries(["dc1", "dc2"]) == ["dc2"]


def test_a_stuck_old_agent_whose_session_ends_is_waited_for_from_then() -> None:
    run = Run()
    t = failed_over(run)
    _stuck(run, t + 0.1)
    wait = run.engine.demote_wait_s("web")
    gone_at = t + 5.0

    def step(now: float) -> None:
        view = replace(
            run.view(now, DB_DOWN), agents=frozenset({"dc2"}), agents_gone_at={"dc1": gone_at}
        )
        run._took(run.engine.step(run.states, view))

    step(t + wait)  # the bound from the switch has passed, not the one from the session's end
    assert run.state().phase == "switching" and run.codes()[-1] == "awaiting_demotion"
    step(gone_at + wait)
    assert run.state().phase == "steady" and run.state().active == "dc2"
