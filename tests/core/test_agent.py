from __future__ import annotations

import pytest

from failover.core.agent import announcement, lease_ends_at, should_apply
from failover.core.model import GroupState

STEADY = GroupState("web", active="dc1", epoch=4)
SWITCHING = GroupState("web", active="dc2", epoch=5, phase="switching", switch_from="dc1")


def say(desired: GroupState | None, site: str, session: str = "connected",
        lost_at: float | None = None, now: float = 100.0, backup: bool = True) -> str:
    return announcement(desired, site, backup=backup, session=session,  # type: ignore[arg-type]
                        lost_at=lost_at, now=now, lease_s=6.0)[0]


def test_follows_desired_state_while_connected() -> None:
    assert say(STEADY, "dc1") == "primary"
    assert say(STEADY, "dc2") == "backup"
    assert say(STEADY, "dc2", backup=False) == "withdrawn"


def test_switching_demotes_everyone_to_backup_even_without_backup_announcements() -> None:
    assert say(SWITCHING, "dc1", backup=False) == "backup"
    assert say(SWITCHING, "dc2", backup=False) == "backup"


def test_no_desired_state_announces_backup() -> None:
    assert say(None, "dc1") == "backup"


@pytest.mark.parametrize("session", ["suspended", "lost"])
def test_primary_held_within_the_lease(session: str) -> None:
    assert say(STEADY, "dc1", session, lost_at=95.0) == "primary"


@pytest.mark.parametrize("session", ["suspended", "lost"])
def test_primary_demoted_to_backup_never_withdrawn_after_the_lease(session: str) -> None:
    assert say(STEADY, "dc1", session, lost_at=94.0) == "backup"
    assert say(STEADY, "dc1", session, lost_at=94.0, backup=False) == "backup"
    why = announcement(STEADY, "dc1", backup=True, session=session,  # type: ignore[arg-type]
                       lost_at=90.0, now=100.0, lease_s=6.0)[1]
    assert "lease of 6 s expired" in why


def test_backup_stays_backup_without_a_session() -> None:
    assert say(STEADY, "dc2", "lost", lost_at=0.0) == "backup"


def test_only_newer_epochs_apply() -> None:
    assert should_apply(5, None) and should_apply(5, 4)
    assert not should_apply(5, 5) and not should_apply(4, 5)


def test_lease_end() -> None:
    assert lease_ends_at(None, 6.0) is None
    assert lease_ends_at(10.0, 6.0) == 16.0


def test_the_lease_ends_exactly_when_lease_ends_at_says() -> None:
    lost, lease = 511.993, 6.0  # (lost + lease) - lost rounds below lease
    end = lease_ends_at(lost, lease)
    assert end is not None
    got = announcement(STEADY, "dc1", backup=True, session="lost", lost_at=lost, now=end,
                       lease_s=lease)[0]
    assert got == "backup"
