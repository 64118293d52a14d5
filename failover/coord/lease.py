"""What an agent keeps announcing while its coordination session is gone (DESIGN safety rule 2).

A site stays primary while its agent holds a live session, or for at most `lease_s` after
losing it; then it demotes itself to backup — never to withdrawn: losing the coordinator must
not take the service down. Pure: time is passed in.
"""

from __future__ import annotations

from failover.core.model import Announcement


def hold_or_demote(
    current: Announcement, disconnected_since: float | None, now: float, lease_s: float
) -> Announcement:
    """The announcement to keep now, given the one in effect and when the session went away."""
    if disconnected_since is None or current != "primary":
        return current
    return "backup" if now - disconnected_since >= lease_s else "primary"


def lease_remaining_s(disconnected_since: float | None, now: float, lease_s: float) -> float | None:
    """Seconds until a primary must demote itself (None while connected, 0 once due)."""
    if disconnected_since is None:
        return None
    return max(0.0, lease_s - (now - disconnected_since))
