"""The agent's rule: what its own site announces, given desired state and its session.

A site announces itself primary only while its agent holds a live coordinator session, or for
at most `lease_s` after losing it; then it demotes itself to backup, never to withdrawn:
losing the coordinator must not take the service down (DESIGN.md safety rule 2).
"""

from __future__ import annotations

from typing import Literal

from failover.core.model import Announcement, GroupState

Session = Literal["connected", "suspended", "lost"]


def announcement(desired: GroupState | None, site: str, *, backup: bool, session: Session,
                 lost_at: float | None, now: float, lease_s: float) -> tuple[Announcement, str]:
    """(what to announce, why). `lost_at`: when the session stopped being connected."""
    if desired is None:
        return "backup", "no desired state yet; announcing backup"
    wanted = desired.announcement(site, backup)
    if wanted != "primary" or session == "connected":
        return wanted, f"desired state at epoch {desired.epoch}"
    if lost_at is not None and now >= lost_at + lease_s:  # the same sum as lease_ends_at
        return "backup", (f"coordinator session {session} for {now - lost_at:.1f} s; lease of "
                          f"{lease_s:g} s expired: demoted to backup")
    return "primary", f"coordinator session {session}; holding primary within the lease"


def lease_ends_at(lost_at: float | None, lease_s: float) -> float | None:
    """When a primary without a session must demote itself (a timer for the daemon)."""
    return None if lost_at is None else lost_at + lease_s


def should_apply(desired_epoch: int, applied_epoch: int | None) -> bool:
    """Agents apply only a newer epoch than they have applied (stale writers are fenced)."""
    return applied_epoch is None or desired_epoch > applied_epoch
