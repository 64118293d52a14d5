"""`failover history` (the audit trail, and `--verify` of its hash chain) and
`failover explain ID` (one decision: its inputs, the rule that fired, the pre-checks, who, why).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click

from failover.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    config_option,
    connected,
    fail,
    load_or_exit,
)
from failover.cli.render import table
from failover.coord import AuditEntry, verify_chain
from failover.coord.audit import check_heads, logged_heads
from failover.core.codes import CODES

KINDS = {
    "desired": "the group's desired state changed",
    "alert": "operators must look",
    "command": "an operator command's outcome",
    "info": "nothing changes; why",
}
ENTRY_ID = re.compile(r"^(?:entry-|#)?(\d+)$")
COMMAND_ID = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_.-]{0,63}\.)?cmd-\d+$")  # an operator's: alice.


def when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"


def summary(entry: AuditEntry) -> dict[str, Any]:
    """The fields `history` shows for one entry."""
    payload = entry.payload
    decision = payload.get("decision") or {}
    command = payload.get("command") or {}
    evidence = decision.get("evidence") or {}
    by = command.get("by") or evidence.get("by") or ("auto" if decision else "-")
    return {
        "seq": entry.seq,
        "at": entry.at,
        "time": when(entry.at),
        "kind": entry.kind,
        "group": decision.get("group", ""),
        "code": decision.get("code", ""),
        "sentence": decision.get("sentence", ""),
        "by": by,
        "command_id": decision.get("command_id") or command.get("id") or None,
        "leader": payload.get("leader"),
        "term": payload.get("term"),
        "hash": entry.hash,
    }


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if it is broken.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Only the newest N entries (--verify still checks every retained one).",
)
@click.option(
    "--heads",
    "head_logs",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="LOG",
    help="With --verify: daemon logs whose logged audit heads the "
    "chain must match (detects a rewritten, rehashed chain).",
)
def history(
    config_file: str, as_json: bool, verify: bool, limit: int | None, head_logs: tuple[str, ...]
) -> None:
    """The audit trail, oldest first: seq, time, kind, group, code, by, sentence."""
    config = load_or_exit(config_file)
    with connected(config) as coordinator:
        entries = coordinator.audit()
        head = coordinator.audit_head() if verify else None
    shown = entries[-limit:] if limit else entries
    problems = verify_chain(entries, head) if verify else []
    if verify and head_logs:
        problems += check_heads(entries, head, logged_heads(_lines(head_logs)))
    if as_json:
        doc: dict[str, Any] = {"entries": [summary(entry) for entry in shown]}
        if verify:
            doc["chain"] = {
                "verified": not problems,
                "problems": problems,
                "head": list(head) if head else None,
                "retained": len(entries),
            }
        click.echo(json.dumps(doc, indent=2))
    else:
        rows = [["SEQ", "TIME", "KIND", "GROUP", "CODE", "BY", "SENTENCE"]]
        for entry in shown:
            s = summary(entry)
            rows.append(
                [
                    str(s["seq"]),
                    s["time"],
                    s["kind"],
                    s["group"] or "-",
                    s["code"] or "-",
                    s["by"],
                    s["sentence"],
                ]
            )
        click.echo("\n".join(table(rows)) if shown else "the audit trail is empty")
    if not verify:
        return
    if problems:
        first = re.match(r"(?:entry|head names entry) (\d+)", problems[0])
        name = f"entry {first.group(1)}" if first else "the head"
        click.echo(f"audit chain BROKEN: first bad: {name}", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(EXIT_FAILED)
    if not as_json:
        span = f"entries {entries[0].seq}-{entries[-1].seq}" if entries else "no entries"
        click.echo(
            f"audit chain verified: {len(entries)} retained ({span}); head "
            f"{head[0] if head else 0} matches"
        )


def _lines(paths: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines += handle.readlines()
        except OSError as exc:
            click.echo(f"failover: {path}: cannot read: {exc.strerror}", err=True)
            raise SystemExit(EXIT_USAGE) from None
    return lines


# --- explain -----------------------------------------------------------------------------------


def find(entries: list[AuditEntry], ident: str) -> list[AuditEntry]:
    match = ENTRY_ID.match(ident)
    if match:
        return [entry for entry in entries if entry.seq == int(match.group(1))]
    return [entry for entry in entries if summary(entry)["command_id"] == ident]


def rule(code: str) -> str:
    """A reason code with what it means (`failover.core.codes`)."""
    meaning = CODES.get(code)  # type: ignore[call-overload]
    return f"{code} ({meaning[1]})" if meaning else f"{code} (reason code)"


def describe_command(command: dict[str, Any]) -> str:
    """`cmd-12: switchover to dc2 for web (forced, expires after 600 s)`."""
    what = command.get("kind", "?")
    if command.get("site"):
        what += f" to {command['site']}"
    what += f" for {command.get('group') or 'every group'}"
    extras = []
    if command.get("force"):
        extras.append("forced")
    if command.get("graceful") is not None:
        extras.append("graceful" if command["graceful"] else "not graceful")
    if command.get("at") is not None:
        extras.append(f"scheduled at {when(float(command['at']))}")
    if command.get("expires_s") is not None:
        extras.append(f"expires after {float(command['expires_s']):g} s")
    return f"{command.get('id') or '-'}: {what}" + (f" ({', '.join(extras)})" if extras else "")


def render(entry: AuditEntry) -> str:
    payload = entry.payload
    decision = payload.get("decision") or {}
    command = payload.get("command") or {}
    kind = entry.kind
    lines = [f"audit entry {entry.seq} at {when(entry.at)}: {kind} ({KINDS.get(kind, kind)})"]

    def field(name: str, value: str) -> None:
        lines.append(f"  {name.ljust(10)}  {value}")

    field("decision", decision.get("sentence", "-"))
    field("rule", rule(decision.get("code", "-")))
    if decision.get("group"):
        field("group", f"{decision['group']}, epoch {decision.get('epoch', '-')}")
    if payload.get("leader"):
        field("leader", f"{payload['leader']}, term {payload.get('term', '-')}")
    if command:
        field("command", describe_command(command))
        field("who", command.get("by") or "-")
        field("why", command.get("reason") or "(no reason given)")
        if command.get("requested_at"):
            field("requested", when(float(command["requested_at"])))
    else:
        by = (decision.get("evidence") or {}).get("by")
        field("who", by or "auto (the policy, by itself)")
    checks = decision.get("checks") or []
    if checks:
        lines.append("  pre-checks")
        width = max(len(str(c.get("name", ""))) for c in checks)
        for check in checks:
            lines.append(
                f"    {'pass' if check.get('passed') else 'FAIL'}  "
                f"{str(check.get('name', '')).ljust(width)}  {check.get('detail', '')}"
            )
    evidence = {k: v for k, v in (decision.get("evidence") or {}).items() if k != "by"}
    if evidence:
        field("evidence", ", ".join(f"{k}={v}" for k, v in sorted(evidence.items())))
    health = payload.get("health") or {}
    for group, sites in health.items():
        lines.append(f"  health of {group} (what the rules saw)")
        for site, h in sites.items():
            lines.append(f"    {site}: {h.get('situation')}: {h.get('detail', '')}")
            for service, votes in (h.get("votes") or {}).items():
                shown = " ".join(f"{o}={v}" for o, v in sorted(votes.items())) or "no votes"
                lines.append(f"      {service}: {shown}")
    field("hash", f"{entry.hash} (previous {entry.prev_hash})")
    return "\n".join(lines)


@click.command()
@config_option
@click.argument("ident", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the entry (or entries) as JSON.")
def explain(config_file: str, ident: str, as_json: bool) -> None:
    """One decision: ID is an audit entry's number (as `history` shows it) or a command id
    (cmd-..., alice.cmd-...): the decision, the rule that fired, its inputs, the pre-checks,
    who and why."""
    if not ENTRY_ID.match(ident) and not COMMAND_ID.match(ident):
        fail(
            f"ID: {ident!r} is neither an audit entry number (42) nor a command id "
            "(cmd-0000000042, alice.cmd-0000000042)",
            EXIT_USAGE,
        )
    config = load_or_exit(config_file)
    with connected(config) as coordinator:
        entries = coordinator.audit()
    found = find(entries, ident)
    if not found:
        span = f"{entries[0].seq}-{entries[-1].seq}" if entries else "none"
        fail(f"no audit entry for {ident} (retained entries: {span})")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "kind": e.kind,
                        "payload": e.payload,
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in found
                ],
                indent=2,
            )
        )
        return
    click.echo("\n\n".join(render(entry) for entry in found))
