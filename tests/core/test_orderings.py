"""The leader's promotion against the old agent's stale primary, over every ordering of the
service failure, the agent's loss (cut off, or frozen), the leader's sightings and the
hold-down (hypothesis). The agent side follows the derivation in `failover.core.agent`:
a cut-off agent holds its primary at its last confirmation + lease; a frozen one is killed a
watchdog after its last keep-alive and the stop hook holds the site within `stop_hook_s`.
The property: the leader never promotes dc2 before dc1's primary has ended."""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config import Config, parse_config
from failover.core import Engine, View
from failover.core.agent import sessions_gone
from failover.core.model import Applied, GroupState
from tests.broken import SuspicionLease

from .world import EXAMPLE, everyone_sees, observations


def config(lease_s: float, watchdog_s: float, hold_down_s: float) -> Config:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["groups"]["web"]["steering"]["lease_s"] = lease_s
    data["cluster"].setdefault("daemon", {}).update(
        watchdog_s=watchdog_s, stop_hook_s=2.0, cycle_s=1.0
    )
    data["policy"]["hold_down_s"] = hold_down_s
    return parse_config(yaml.safe_dump(data), base=EXAMPLE.parent)


CONFIGS = [config(6, 3, 2), config(2.5, 8, 2), config(10, 3, 0), config(4, 4, 5), config(6, 3, 5)]
SESSION_TIMEOUT_S = 4.0


@dataclass(frozen=True)
class Story:
    config: Config
    service_fails_at: float | None  # dc1's database stops (seen by every observer at once)
    lost_at: float  # dc1's agent is cut off, or frozen, at this instant
    frozen: bool
    confirm_lag_s: float  # how long before the loss its last confirmation started (< cycle)
    sighting_delay_s: float  # after the session's end, until the leader's read shows it
    hook_s: float  # how long the stop hook takes (at most stop_hook_s)
    cycle_s: float  # the leader's cycle interval


stories = st.builds(
    Story,
    st.sampled_from(CONFIGS),
    st.one_of(st.none(), st.floats(1, 30)),
    st.floats(1, 30),
    st.booleans(),
    st.floats(0, 0.99),
    st.floats(0, 2),
    st.floats(0, 2),
    st.floats(0.2, 1.5),
)


APPLY_S = 0.2  # an agent that read the switch has demoted itself this much later


def confirmed_at(story: Story) -> float:
    return story.lost_at - story.confirm_lag_s


def primary_ends(story: Story, committed_at: float | None) -> float:
    """When dc1 stops announcing primary, by the agent's rule and the supervisor's."""
    daemon = story.config.cluster.daemon
    confirmed = confirmed_at(story)
    if committed_at is not None and confirmed >= committed_at:
        # it reads once a cycle until its last read: the first read after the commit showed
        # the switch, and it demoted itself
        reads_after = (confirmed - committed_at) // daemon.cycle_s
        return confirmed - reads_after * daemon.cycle_s + APPLY_S
    if not story.frozen:
        return confirmed + story.config.lease_s("web")  # its own timer holds the primary
    # frozen: it was confirming until the freeze, so its last keep-alive was at the freeze
    return story.lost_at + daemon.watchdog_s + story.hook_s


def promotion(story: Story, engine: Engine) -> tuple[float, float] | None:
    """(when the leader promoted dc2, when dc1's primary ended), or None: no promotion."""
    session_end = story.lost_at + SESSION_TIMEOUT_S  # last heard at the loss
    seen_gone = session_end + story.sighting_delay_s
    states: dict[str, GroupState] = {}
    gone: dict[str, float] = {}
    committed_at: float | None = None
    now = 0.0
    while now < 60:
        down = (
            everyone_sees(story.config, "dc1", "db")
            if story.service_fails_at is not None and now >= story.service_fails_at
            else []
        )
        agents = frozenset({"dc2"}) if now >= seen_gone else frozenset({"dc1", "dc2"})
        gone = sessions_gone(gone, agents, story.config.serving_sites, now)
        applied: dict[tuple[str, str], Applied] = {}
        state = states.get("web")
        if (
            state is not None
            and state.phase == "switching"
            and committed_at is not None
            and now >= primary_ends(story, committed_at)
            and confirmed_at(story) >= committed_at
        ):
            applied[("web", "dc1")] = Applied("web", "dc1", state.epoch, "backup", now, True)
        view = View(now, observations(story.config, now, down=down), applied, agents, gone)
        step = engine.step(states, view)
        new = step.states["web"]
        if new.phase == "switching" and (state is None or state.phase != "switching"):
            committed_at = now
        if state is not None and state.phase == "switching" and new.phase == "steady":
            return now, primary_ends(story, committed_at)
        states = dict(step.states)
        now = min(t for t in (now + story.cycle_s, step.wake_at or 1e9) if t > now)
    return None


@settings(max_examples=1000, deadline=None)
@given(stories)
def test_the_leader_never_promotes_before_the_old_primary_ended(story: Story) -> None:
    done = promotion(story, Engine(story.config))
    if done is not None:
        promoted, ends = done
        assert promoted >= ends - 1e-9, (
            f"dc2 promoted at {promoted:.3f} while dc1 can be primary until {ends:.3f}"
        )


def test_the_property_catches_the_old_rule() -> None:
    """The defect: the database fails at 10, the agent is cut off at 10.5, in a hold-down of
    5 s that outlasts its session (4 s)."""
    story = Story(
        CONFIGS[4],
        service_fails_at=10.0,
        lost_at=10.5,
        frozen=False,
        confirm_lag_s=0.0,
        sighting_delay_s=0.0,
        hook_s=0.0,
        cycle_s=0.05,
    )
    done = promotion(story, SuspicionLease(story.config))
    assert done is not None
    promoted, ends = done
    assert promoted < ends  # two primaries
    fixed = promotion(story, Engine(story.config))
    assert fixed is not None and fixed[0] >= fixed[1]
