from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.core.agent import (
    announcement,
    keep_alive_until,
    lease_ends_at,
    sessions_gone,
    should_apply,
    stale_primary_s,
    surely_demoted_at,
)
from failover.core.model import Announcement, GroupState

STEADY = GroupState("web", active="dc1", epoch=4)
SWITCHING = GroupState("web", active="dc2", epoch=5, phase="switching", switch_from="dc1")


def say(
    desired: GroupState | None,
    site: str,
    confirmed_at: float | None = 100.0,
    now: float = 100.0,
    backup: bool = True,
    in_effect: Announcement = "primary",
) -> str:
    return announcement(
        desired,
        site,
        backup=backup,
        in_effect=in_effect,
        confirmed_at=confirmed_at,
        now=now,
        lease_s=6.0,
    )[0]


def test_follows_desired_state_while_confirmed() -> None:
    assert say(STEADY, "dc1") == "primary"
    assert say(STEADY, "dc2") == "backup"
    assert say(STEADY, "dc2", backup=False) == "withdrawn"


def test_switching_demotes_everyone_to_backup_even_without_backup_announcements() -> None:
    assert say(SWITCHING, "dc1", backup=False) == "backup"
    assert say(SWITCHING, "dc2", backup=False) == "backup"


@pytest.mark.parametrize("in_effect", ["held", "backup", "withdrawn"])
def test_without_desired_state_nothing_changes(in_effect: Announcement) -> None:
    assert say(None, "dc1", None, in_effect=in_effect) == in_effect


def test_without_desired_state_a_primary_it_cannot_confirm_is_held() -> None:
    assert say(None, "dc1", None, in_effect="primary") == "held"


def test_primary_kept_within_the_lease_of_the_last_confirmation() -> None:
    assert say(STEADY, "dc1", confirmed_at=95.0) == "primary"


def test_primary_held_never_backup_or_withdrawn_after_the_lease() -> None:
    assert say(STEADY, "dc1", confirmed_at=94.0) == "held"
    assert say(STEADY, "dc1", confirmed_at=94.0, backup=False) == "held"
    assert say(STEADY, "dc1", confirmed_at=None) == "held"
    why = announcement(
        STEADY, "dc1", backup=True, in_effect="primary", confirmed_at=90.0, now=100.0, lease_s=6.0
    )[1]
    assert "lease of 6 s expired" in why and "10.0 s ago" in why


def test_backup_stays_backup_without_a_confirmation() -> None:
    assert say(STEADY, "dc2", confirmed_at=0.0) == "backup"


def test_only_newer_epochs_apply() -> None:
    assert should_apply(5, None) and should_apply(5, 4)
    assert not should_apply(5, 5) and not should_apply(4, 5)


def test_lease_end() -> None:
    assert lease_ends_at(None, 6.0) is None
    assert lease_ends_at(10.0, 6.0) == 16.0


def test_the_lease_ends_exactly_when_lease_ends_at_says() -> None:
    confirmed, lease = 511.993, 6.0  # (confirmed + lease) - confirmed rounds below lease
    end = lease_ends_at(confirmed, lease)
    assert end is not None
    got = announcement(
        STEADY,
        "dc1",
        backup=True,
        in_effect="primary",
        confirmed_at=confirmed,
        now=end,
        lease_s=lease,
    )[0]
    assert got == "held"


def test_stale_primary_bound() -> None:
    assert stale_primary_s(lease_s=6, watchdog_s=3, stop_hook_s=2, cycle_s=1) == 9
    assert stale_primary_s(lease_s=2, watchdog_s=8, stop_hook_s=2, cycle_s=1) == 11


def test_the_leader_counts_from_the_earlier_of_commit_and_session_gone() -> None:
    assert surely_demoted_at(10.0, None, 9.0) == 19.0
    assert surely_demoted_at(10.0, 4.0, 9.0) == 13.0
    assert surely_demoted_at(10.0, 12.0, 9.0) == 19.0


def test_sessions_gone_keeps_the_first_sighting() -> None:
    first = sessions_gone({}, {"dc2"}, ["dc1", "dc2"], 5.0)
    assert first == {"dc1": 5.0}
    assert sessions_gone(first, {"dc2"}, ["dc1", "dc2"], 9.0) == {"dc1": 5.0}
    assert sessions_gone(first, {"dc1", "dc2"}, ["dc1", "dc2"], 9.0) == {}


@settings(max_examples=2000, deadline=None)
@given(
    lease=st.floats(0.5, 30),
    watchdog=st.floats(0.5, 30),
    hook=st.floats(0.1, 10),
    cycle=st.floats(0.05, 2),
    confirmed=st.floats(0, 1000),
    frozen_after=st.floats(0, 60),
    stops_confirming=st.booleans(),
)
def test_a_stale_primary_ends_within_the_bound_however_the_agent_stops(
    lease: float,
    watchdog: float,
    hook: float,
    cycle: float,
    confirmed: float,
    frozen_after: float,
    stops_confirming: bool,
) -> None:
    """The derivation in core.agent, checked: an agent whose last confirmation was at
    `confirmed` either keeps running (the lease holds it) or freezes `frozen_after` later;
    then the supervisor kills it `watchdog` after its last keep-alive and the hook holds the
    site `hook` later. Keep-alives go out once a cycle while `keep_alive_until` allows."""
    bound = confirmed + stale_primary_s(
        lease_s=lease, watchdog_s=watchdog, stop_hook_s=hook, cycle_s=cycle
    )
    lease_end = lease_ends_at(confirmed, lease)
    assert lease_end is not None and lease_end <= bound
    if not stops_confirming:
        return
    frozen_at = confirmed + frozen_after
    if frozen_at >= lease_end:
        return  # its own cycle held the primary first
    until = keep_alive_until(confirmed, lease_s=lease, watchdog_s=watchdog, cycle_s=cycle)
    last_keep_alive = min(frozen_at, max(until, confirmed))
    assert last_keep_alive + watchdog + hook <= bound + 1e-9
    # and a healthy agent on its lease is not killed before its own lease ends
    assert until + watchdog >= lease_end - cycle - 1e-9
