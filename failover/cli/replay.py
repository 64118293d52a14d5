"""`failover replay LOG...`: the recorded decisions again, or what a candidate config would
have decided instead."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

from failover.cli.common import EXIT_FAILED, EXIT_USAGE, fail, load_or_exit
from failover.record.replay import FALSE_WITHIN_S


def parse_time(text: str | None, option: str) -> float | None:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(
            f"{option} {text!r}: not Unix seconds nor an ISO 8601 time (e.g. 2026-12-02T03:00:00Z)",
            EXIT_USAGE,
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def stamp(at: float | None) -> str:
    if at is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _summary_line(name: str, doc: dict[str, Any]) -> str:
    times = ", ".join(f"{t:.1f} s" for t in doc["time_to_switch_s"]) or "-"
    return (
        f"{name:<10} switches {doc['switches']}, failovers {doc['failovers']} "
        f"({doc['false_failovers']} false: the old site healthy again within "
        f"{FALSE_WITHIN_S:g} s), time to switch: {times}"
    )


@click.command()
@click.argument("logs", metavar="LOG...", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "--config",
    "candidate_file",
    type=click.Path(dir_okay=False),
    help="A candidate config: print where its decisions would have differed.",
)
@click.option("--from", "start", metavar="T", help="Replay from this time (Unix s or ISO).")
@click.option("--to", "end", metavar="T", help="Replay up to this time (Unix s or ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write a plot of both timelines (recorded, candidate) into this folder.",
)
@click.option(
    "--to-playbook",
    "playbook_file",
    type=click.Path(dir_okay=False),
    help="Write the recorded incident as a simulator playbook (faults inferred from "
    "the observations) to this file.",
)
def replay(
    logs: tuple[str, ...],
    candidate_file: str | None,
    start: str | None,
    end: str | None,
    as_json: bool,
    report_dir: str | None,
    playbook_file: str | None,
) -> None:
    """Replay recorded leader cycles (files under cluster.daemon.record_dir).

    Without --config, the recorded config must reproduce every recorded decision: exit 0 when
    it does, 1 naming the first decision that differs. With --config, print each decision the
    candidate would have taken differently (time, both reason codes and sentences) and the
    switches, failovers and time to switch under each. Exit 2 on a bad log or config.
    """
    from failover.record.read import LogError, headers, merged
    from failover.record.replay import Mismatch
    from failover.record.replay import replay as run_replay

    paths = [Path(p) for p in logs]
    if report_dir:
        from failover.cli.sim import _need_matplotlib

        _need_matplotlib()
    candidate = load_or_exit(candidate_file) if candidate_file else None
    window = (parse_time(start, "--from"), parse_time(end, "--to"))
    notes: list[str] = []
    try:
        found = headers(paths)
        if playbook_file:
            from failover.record.playbook import write_playbook

            written = write_playbook(merged(paths, notes), playbook_file, *window)
            click.echo(f"playbook: {written}")
            return
        outcome = run_replay(merged(paths, notes), candidate, start=window[0], end=window[1])
    except LogError as exc:
        fail(str(exc), EXIT_USAGE)
    except Mismatch as exc:
        fail(f"replay is not faithful: {exc}", EXIT_FAILED)
    for note in notes:
        click.echo(f"failover: note: {note}", err=True)
    data = outcome.as_dict()
    data["cluster"] = found[0].cluster
    data["files"] = [str(p) for p in paths]
    if outcome.cycles == 0:
        fail("no recorded cycle in the given files and time window", EXIT_USAGE)
    if report_dir:
        from failover.record.report import write_report

        data["report"] = write_report(outcome, report_dir)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(
        f"cluster {data['cluster']}: {outcome.cycles} cycles from "
        f"{stamp(outcome.first)} to {stamp(outcome.last)}"
    )
    if candidate is None:
        click.echo("faithful: the recorded config reproduces every recorded decision")
        click.echo(_summary_line("recorded", data["recorded"]))
        if report_dir:
            click.echo(f"report: {data['report']}")
        return
    for diff in outcome.differences:
        click.echo(f"{stamp(diff.at)} {diff.group}")
        for name, said in (("recorded", diff.recorded), ("candidate", diff.candidate)):
            click.echo(f"  {name:<10} {said.active:<5} {said.code}: {said.sentence}")
    if not outcome.differences:
        click.echo("no decision would have differed")
    click.echo(_summary_line("recorded", data["recorded"]))
    click.echo(_summary_line("candidate", data["candidate"]))
    if report_dir:
        click.echo(f"report: {data['report']}")
