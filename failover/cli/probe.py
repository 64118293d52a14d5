"""`failover probe FILE`: run every check once; a table (or JSON); exit 0 all pass, 1 any fails."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from failover.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    config_argument,
    fail,
    load_or_exit,
)
from failover.core.model import CheckResult
from failover.probes import ProbeTarget, run_once, targets_of

COLUMNS = ("site", "service", "kind", "check", "target", "verdict", "latency", "reason")


@click.command()
@config_argument
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="Probe only this site's services (repeatable).",
)
@click.option(
    "--concurrency",
    default=64,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Checks run at once.",
)
def probe(config_file: str, as_json: bool, sites: tuple[str, ...], concurrency: int) -> None:
    """Run every configured check once and print site, service, kind, target, verdict,
    latency and reason. Exit 0 when all pass, 1 when any fails, 2 on a config error."""
    config = load_or_exit(config_file)
    unknown = sorted(set(sites) - set(config.sites))
    if unknown:
        fail(
            f"unknown site(s): {', '.join(unknown)} (known: {', '.join(config.sites)})", EXIT_USAGE
        )
    targets = targets_of(config, sites or None)
    results = asyncio.run(run_once(targets, concurrency=concurrency))
    rows = [row(target, result) for target, result in zip(targets, results, strict=True)]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "results": rows,
                    "passed": sum(r["ok"] for r in rows),
                    "failed": sum(not r["ok"] for r in rows),
                },
                indent=2,
            )
        )
    else:
        click.echo(table(rows))
    raise SystemExit(EXIT_OK if all(r["ok"] for r in rows) else EXIT_FAILED)


def row(target: ProbeTarget, result: CheckResult) -> dict[str, Any]:
    return {
        "site": target.site,
        "service": target.service,
        "kind": target.kind,
        "check": target.check_type,
        "target": target.endpoint,
        "key": target.key,
        "ok": result.ok,
        "verdict": "pass" if result.ok else "fail",
        "latency_s": round(result.latency_s, 6),
        "reason": result.reason,
    }


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no checks configured"
    cells = [
        [
            str(r["site"]),
            str(r["service"]),
            str(r["kind"]),
            str(r["check"]),
            str(r["target"]),
            str(r["verdict"]),
            f"{r['latency_s'] * 1000:.1f} ms",
            str(r["reason"]),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells
    ]
    failed = sum(r["verdict"] == "fail" for r in rows)
    lines.append(f"{len(rows)} checks: {len(rows) - failed} pass, {failed} fail")
    return "\n".join(lines)
