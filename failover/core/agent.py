"""The agent's rule: what its own site announces, and how long a stale primary can last.

A site announces itself primary only while its agent can confirm, on a live coordinator
session, that the desired state says so, or for at most `lease_s` after its last confirmation;
then it demotes itself to **held**: still preferred over any backup, never withdrawn, so that
losing the coordinator neither takes the service down nor moves it (DESIGN.md safety rule 2).

## The stale-primary bound (written once; the leader and the simulator use it)

Let `t_c` be the start of the old agent's last successful read of desired state that said
"primary". ZooKeeper served that read on the agent's live session, so `t_c` is no later than
the session's end, and no later than the commit of any newer desired state (a later read would
have returned it). A stale primary then ends in one of two ways:

- the agent runs: its cycle holds the primary at `t_c + lease_s` (a timer wakes it then);
- the agent does not run (frozen, blocked in a call, killed): the supervisor kills it
  `watchdog_s` after its last keep-alive and the stop hook holds the site within
  `stop_hook_s`. The daemon sends a keep-alive only after a cycle that completed, and while a
  primary is up on its lease alone only until `keep_alive_until` (below), so the kill comes
  by `t_c + max(lease_s, watchdog_s) + cycle_s`.

Hence a stale primary ends by `t_c + stale_primary_s`, with

    stale_primary_s = max(lease_s, watchdog_s) + stop_hook_s + cycle_s

(the design's max(lease, watchdog + stop hook), plus one cycle of reaction, and the stop hook
counted after the lease too, so that a healthy agent on its lease keeps feeding the watchdog
until its own lease ends instead of being killed first). The leader, which cannot know `t_c`,
counts from an instant surely no earlier: the commit of the switch, or the moment it first saw
the agent's session gone (ZooKeeper deletes the ephemeral member node at the session's end),
whichever is earlier (`surely_demoted_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from failover.core.model import Announcement, GroupState


def announcement(
    desired: GroupState | None,
    site: str,
    *,
    backup: bool,
    in_effect: Announcement,
    confirmed_at: float | None,
    now: float,
    lease_s: float,
) -> tuple[Announcement, str]:
    """(what to announce, why).

    `desired`: the last desired state the agent read (None: none yet). `confirmed_at`: the start
    of its last successful read of desired state on a live session (None: never). Without any
    desired state the agent changes nothing, except that a primary it cannot confirm is held.
    """
    if desired is None:
        if in_effect == "primary":
            return "held", "no desired state read yet: a primary it cannot confirm is held"
        return in_effect, "no desired state read yet: steering stays as it is"
    wanted = desired.announcement(site, backup)
    if wanted != "primary":
        return wanted, f"desired state at epoch {desired.epoch}"
    if confirmed_at is not None and now < confirmed_at + lease_s:
        return (
            "primary",
            f"desired state at epoch {desired.epoch}, confirmed {now - confirmed_at:.1f} s ago",
        )
    ago = (
        "never confirmed"
        if confirmed_at is None
        else f"last confirmed {now - confirmed_at:.1f} s ago"
    )
    return (
        "held",
        f"desired state at epoch {desired.epoch} {ago}; lease of {lease_s:g} s "
        "expired: held (preferred over a backup, never withdrawn)",
    )


def lease_ends_at(confirmed_at: float | None, lease_s: float) -> float | None:
    """When a primary that cannot confirm must be held (a timer for the agent)."""
    return None if confirmed_at is None else confirmed_at + lease_s


def stale_primary_s(
    *, lease_s: float, watchdog_s: float, stop_hook_s: float, cycle_s: float
) -> float:
    """How long after its last confirmation an old primary can still announce primary."""
    return max(lease_s, watchdog_s) + stop_hook_s + cycle_s


def keep_alive_until(
    confirmed_at: float | None, *, lease_s: float, watchdog_s: float, cycle_s: float
) -> float:
    """The last instant a daemon whose primary stands on its lease alone may feed the
    watchdog: a kill `watchdog_s` later still ends within the stale-primary bound."""
    if confirmed_at is None:
        return float("-inf")
    return confirmed_at + max(lease_s, watchdog_s) + cycle_s - watchdog_s


def surely_demoted_at(committed_at: float, gone_at: float | None, stale_s: float) -> float:
    """When an old primary has surely stopped announcing primary: counted from the last
    instant its agent can have confirmed it, i.e. the switch's commit or the moment the
    leader first saw the agent's session gone, whichever is earlier."""
    start = committed_at if gone_at is None else min(committed_at, gone_at)
    return start + stale_s


def sessions_gone(
    previous: Mapping[str, float], present: Iterable[str], sites: Iterable[str], now: float
) -> dict[str, float]:
    """Site -> when the reader first saw it without an agent session (kept while it stays
    gone, dropped when an agent is back). A site never seen before counts from `now`."""
    here = set(present)
    return {site: previous.get(site, now) for site in sites if site not in here}


def should_apply(desired_epoch: int, applied_epoch: int | None) -> bool:
    """Agents apply only a newer epoch than they have applied (stale writers are fenced)."""
    return applied_epoch is None or desired_epoch > applied_epoch
