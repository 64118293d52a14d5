"""The core's closed vocabulary: every decision kind and reason code, with what it means.

Decisions carry one of these codes and nothing else (`Decision.__post_init__` refuses any
other); `failover explain`, the metrics and the docs enumerate `CODES`. Codes built from a
situation or a blocking reason go through the tables below, never through string formatting.
"""

from __future__ import annotations

from typing import Literal, get_args

DecisionKind = Literal["desired", "alert", "command", "info"]

Code = Literal[
    # desired: the group's desired state changed
    "initial",
    "failover",
    "failback",
    "switchover",
    "promoted",
    "graceful_preparing",
    "graceful_draining",
    "graceful_restoring",
    "graceful_done",
    "graceful_cancelled",
    # alert: an automatic switch is due but blocked
    "fail_open",
    "target_unhealthy",
    "frozen",
    "cooldown",
    "budget",
    "demotion_failed",
    # info: nothing changes, and why
    "hold_down",
    "awaiting_demotion",
    "recovered",
    "override_lapsed",
    "graceful_waiting",
    "active_observers_disagree",
    "active_site_isolated",
    "active_no_quorum",
    "failback_fail_open",
    "failback_target_unhealthy",
    "failback_frozen",
    "failback_cooldown",
    "failback_budget",
    # command: an operator command's outcome
    "accepted",
    "refused",
    "scheduled",
    "noted",
]
Blocked = Literal["fail_open", "target_unhealthy", "frozen", "cooldown", "budget"]

CODES: dict[Code, tuple[DecisionKind, str]] = {
    "initial": ("desired", "the first desired state: the preferred site"),
    "failover": ("desired", "the active site is down after a whole hold-down: switching"),
    "failback": ("desired", "the preferred site is healthy long enough: switching back"),
    "switchover": ("desired", "an operator's switchover started"),
    "promoted": ("desired", "the old site confirmed its demotion, or surely ended: promoting"),
    "graceful_preparing": ("desired", "a graceful switchover began: DNS records get a short TTL"),
    "graceful_draining": (
        "desired",
        "a graceful switchover switched; the old site drains (BGP: held; DNS: caches expire)",
    ),
    "graceful_restoring": ("desired", "a graceful switchover restores the configured DNS TTL"),
    "graceful_done": ("desired", "a graceful switchover ended: the old site is a plain backup"),
    "graceful_cancelled": ("desired", "a graceful switchover was cancelled: a failover wins"),
    "fail_open": ("alert", "both sites are down: staying where a site still serves"),
    "target_unhealthy": ("alert", "the other site is not healthy: not switching"),
    "frozen": ("alert", "automation is frozen: not switching"),
    "cooldown": ("alert", "a switch happened too recently: not switching yet"),
    "budget": ("alert", "the hourly switch budget is spent: not switching"),
    "demotion_failed": (
        "alert",
        "the old site's agent runs but could not demote it: not promoting while it may still "
        "announce primary",
    ),
    "hold_down": ("info", "the active site is down; the hold-down runs"),
    "awaiting_demotion": ("info", "waiting for the old site to confirm or surely end"),
    "recovered": ("info", "the active site came back: the hold-down is cancelled"),
    "override_lapsed": ("info", "an expiring switchover lapsed; the policy decides"),
    "graceful_waiting": ("info", "a graceful switchover waits for its stage to complete"),
    "active_observers_disagree": ("info", "observers disagree about the active site"),
    "active_site_isolated": ("info", "only the other site sees the active site down"),
    "active_no_quorum": ("info", "too few observer sites see the active site"),
    "failback_fail_open": ("info", "failback waits: both sites are down"),
    "failback_target_unhealthy": ("info", "failback waits: the preferred site is unhealthy"),
    "failback_frozen": ("info", "failback waits: automation is frozen"),
    "failback_cooldown": ("info", "failback waits: a switch happened too recently"),
    "failback_budget": ("info", "failback waits: the hourly switch budget is spent"),
    "accepted": ("command", "the command was carried out"),
    "refused": ("command", "the command was refused; its pre-checks say why"),
    "scheduled": ("command", "the switchover will run at its time"),
    "noted": ("command", "a note kept in the audit trail"),
}

ACTIVE_CODES: dict[str, Code] = {
    "observers_disagree": "active_observers_disagree",
    "site_isolated": "active_site_isolated",
    "no_quorum": "active_no_quorum",
}
FAILBACK_CODES: dict[Blocked, Code] = {
    "fail_open": "failback_fail_open",
    "target_unhealthy": "failback_target_unhealthy",
    "frozen": "failback_frozen",
    "cooldown": "failback_cooldown",
    "budget": "failback_budget",
}
SWITCH_CODES: frozenset[Code] = frozenset({"failover", "failback", "switchover"})
AUTOMATIC_SWITCHES: frozenset[Code] = frozenset({"failover", "failback"})

assert set(CODES) == set(get_args(Code)), "every code has a meaning"
