"""The status document on a terminal: tables of groups, sites and votes (`failover status`).

The document itself is `failover.status.build_status`, what `GET /status` serves too.
"""

from __future__ import annotations

import time
from typing import Any

from failover.config import Config


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_status(doc: dict[str, Any], config: Config) -> str:
    """The status document as tables, for a terminal."""
    leader = doc["leader"]
    members = doc["members"]
    lines = [
        f"cluster {doc['cluster']} at {_when(doc['at'])}; leader "
        + (f"{leader['instance']} (term {leader['term']})" if leader else "NONE")
        + "; members: "
        + (", ".join(f"{name} ({m['site']})" for name, m in members.items()) or "none"),
        "",
    ]
    lines += _groups(doc) + [""] + _pending(doc) + _shadows(doc) + [""]
    lines += _services(doc, config)
    return "\n".join(lines)


def _shadows(doc: dict[str, Any]) -> list[str]:
    """Candidate configs followed beside the leader (`failover shadow`)."""
    lines = []
    for name, s in doc.get("shadows", {}).items():
        how = (
            "agrees with the leader"
            if s.get("agree")
            else "diverges now in " + ", ".join(s.get("diverging", []))
        )
        lines.append(
            f"shadow {name} attached: {how}; {s.get('divergences', 0)} divergence(s) "
            f"over {s.get('cycles', 0)} cycles"
        )
    return lines


def _groups(doc: dict[str, Any]) -> list[str]:
    rows = [
        [
            "GROUP",
            "ACTIVE",
            "EPOCH",
            "PHASE",
            "FROZEN",
            "BUDGET",
            "SITE",
            "DESIRED",
            "APPLIED",
            "AT EPOCH",
            "VERIFIED",
            "HEALTH",
        ]
    ]
    for group, g in doc["groups"].items():
        frozen = f"yes ({g['frozen_by']})" if g["frozen"] else "no"
        for index_, (site, s) in enumerate(g["sites"].items()):
            head = (
                [
                    group,
                    g["active"],
                    str(g["epoch"]),
                    g["phase"],
                    frozen,
                    f"{g['budget_left']}/{g['budget']}",
                ]
                if index_ == 0
                else [""] * 6
            )
            rows.append(
                head
                + [
                    site,
                    s["desired"],
                    s["applied"] or "-",
                    "-" if s["applied_epoch"] is None else str(s["applied_epoch"]),
                    "yes" if s["verified"] else "no",
                    s["health"]["situation"],
                ]
            )
    lines = table(rows)
    for group, g in doc["groups"].items():
        lines += _group_notes(group, g)
    return lines


def _group_notes(group: str, g: dict[str, Any]) -> list[str]:
    if not g["written"]:
        lines = [f"{group}: no desired state written yet (no leader has run)"]
    else:
        lines = [f"{group}: {g['reason']} [{g['code']}, by {g['by']}, {_when(g['changed_at'])}]"]
    if g["override"]:
        until = g["override"]["until"]
        lines.append(
            f"{group}: override to {g['override']['site']} by "
            f"{g['override']['by']}" + (f" until {_when(until)}" if until else "")
        )
    if g["scheduled"]:
        lines.append(
            f"{group}: switchover to {g['scheduled']['site']} scheduled at "
            f"{_when(g['scheduled']['at'])}"
        )
    plan = g.get("graceful")
    if plan:
        ttl = f", records' TTL {plan['ttl_s']} s" if plan.get("ttl_s") is not None else ""
        lines.append(
            f"{group}: graceful switchover {plan['from_site']} -> {plan['to_site']}: "
            f"{plan['stage']} until {_when(plan['until'])} (switch at {_when(plan['at'])}{ttl})"
        )
    return lines


def _pending(doc: dict[str, Any]) -> list[str]:
    if not doc["pending"]:
        return ["pending commands: none"]
    return ["pending commands:"] + [
        f"  {command['id']} {command['kind']} "
        + (f"to {command['site']} " if command["site"] else "")
        + f"group {command['group'] or 'all'} by {command['by']}"
        + (f": {command['reason']}" if command["reason"] else "")
        for command in doc["pending"]
    ]


def _services(doc: dict[str, Any], config: Config) -> list[str]:
    observers = config.observer_sites
    rows = [["SITE", "SERVICE", "KIND", "ROLE"] + [f"BY {o}" for o in observers]]
    for site, services in doc["services"].items():
        for name, s in services.items():
            rows.append(
                [site, name, s["kind"], s["role"]]
                + [s["votes"].get(o, "unknown") for o in observers]
            )
    lines = table(rows) if len(rows) > 1 else []
    for instance, clock in doc.get("clocks", {}).items():
        if clock["off"]:
            ahead = clock["offset_s"] > 0
            where = (
                "ahead of this clock: its clock is off"
                if ahead
                else "behind this clock: its clock is off, or it stopped publishing"
            )
            lines.append(
                f"clock: {instance}'s observations are stamped "
                f"{abs(clock['offset_s']):g} s {where} (freshness is judged on the "
                "leader's clock)"
            )
    for site, services in doc["services"].items():
        for name, s in services.items():
            for target, by in s["targets"].items():
                bad = [
                    f"{observer} {seen['verdict']}"
                    + (f" ({seen['reason']})" if seen["reason"] else "")
                    for observer, seen in by.items()
                    if seen["verdict"] != "up"
                ]
                if bad:
                    lines.append(f"  {site}/{name}/{target}: " + "; ".join(bad))
    return lines
