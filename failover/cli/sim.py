"""`failover gameday PLAYBOOK` and `failover chaos CAMPAIGN`: the simulator's commands."""

from __future__ import annotations

import json
import os
import sys

import click

from failover.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from failover.cli.progress import Progress
from failover.config import ConfigError


def _bad_input(exc: ConfigError) -> None:
    for problem in exc.problems:
        click.echo(f"{exc.source}: {problem}", err=True)
    click.echo(f"{exc.source}: {len(exc.problems)} error(s)", err=True)
    sys.exit(EXIT_USAGE)


@click.command()
@click.argument("playbook", metavar="PLAYBOOK", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the world.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write an HTML report with a timeline plot into this folder.",
)
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(dir_okay=False),
    help="Write the full event trace to this file.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Run it in the lab (root) and score it against the simulator's prediction "
    "(exit 3: not supported live).",
)
def gameday(
    playbook: str,
    seed: int,
    as_json: bool,
    report_dir: str | None,
    trace_file: str | None,
    live: bool,
) -> None:
    """Run a game-day PLAYBOOK in the simulator: a timeline and a verdict per expectation.

    Exit 0 when every expectation held, 1 when one failed, 2 on a bad playbook. With --live,
    in the lab too: 1 also when live and predicted differ, 3 when it cannot run live.
    """
    if live:
        from failover.cli.live import run

        run(playbook, seed, as_json, report_dir)
    from failover.sim.playbook import load_playbook
    from failover.sim.run import run_playbook

    if report_dir:
        _need_matplotlib()
    try:
        book = load_playbook(playbook)
    except ConfigError as exc:
        _bad_input(exc)
    outcome = run_playbook(book, seed)
    if trace_file:
        with open(trace_file, "w", encoding="utf-8") as handle:
            handle.write(outcome.trace)
    data = outcome.as_dict()
    if report_dir:
        from failover.sim.report import write_report

        data["report"] = write_report(outcome, book, report_dir)
    if as_json:
        click.echo(json.dumps(data, sort_keys=False))
    else:
        click.echo(_readable(outcome, book.spec.description))
        if report_dir:
            click.echo(f"report: {data['report']}")
    sys.exit(EXIT_OK if outcome.passed else EXIT_FAILED)


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        click.echo(
            "failover: --report draws its plot with matplotlib, which is not installed: "
            "pip install 'failover[report]'",
            err=True,
        )
        sys.exit(EXIT_USAGE)


def _readable(outcome: object, description: str) -> str:
    from failover.sim.run import Outcome

    assert isinstance(outcome, Outcome)
    lines = [f"game day: {outcome.title} (seed {outcome.seed})"]
    if description:
        lines.append(" ".join(description.split()))
    lines.append("")
    lines.append("timeline:")
    lines += [f"  {line}" for line in outcome.timeline]
    lines.append("")
    lines.append("steady state:")
    lines += [
        f"  [{'ok' if v.passed else 'FAIL'}] {v.name}: {v.observed}" for v in outcome.steady_state
    ]
    lines.append("expectations:")
    lines += [
        f"  [{'ok' if v.passed else 'FAIL'}] {v.name}: {v.observed}" for v in outcome.expectations
    ]
    for violation in outcome.violations:
        lines.append(
            f"  VIOLATION at {violation['at']} s: {violation['name']}: {violation['message']}"
        )
    if outcome.aborted:
        lines.append(f"  ABORTED: {outcome.aborted}")
    rto = "none" if outcome.rto_s is None else f"{outcome.rto_s:.1f} s"
    lines.append(
        f"switches {outcome.switches}, RTO {rto}, availability "
        f"{outcome.availability * 100:.3f} %, {outcome.unavailable_s:.1f} s unavailable"
    )
    lines.append("PASSED" if outcome.passed else "FAILED")
    return "\n".join(lines)


@click.command()
@click.argument("campaign", metavar="CAMPAIGN", type=click.Path(dir_okay=False))
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the first run.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="cores",
    help="Processes to run on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(dir_okay=False),
    help="Write every run's event trace to this file (meant for a replay of one run).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Run the schedules one after another in the lab (root), each scored against the "
    "simulator's prediction (exit 3: a fault class the lab cannot produce).",
)
def chaos(
    campaign: str,
    runs: int,
    seed: int,
    jobs: int,
    as_json: bool,
    trace_file: str | None,
    live: bool,
) -> None:
    """Run a chaos CAMPAIGN: many seeded random runs, summarised.

    Exit 0 without invariant violations, 1 with any (each failing seed is printed with the
    command that replays it), 2 on a bad campaign file. On a terminal (and without --json) a
    progress line shows runs done, violations so far and the time left. With --live, 1 also
    when a run's outcome differs from the simulator's prediction.
    """
    if live:
        from failover.cli.live import run_chaos

        run_chaos(campaign, runs, seed, as_json)
    from failover.sim.campaign import load_campaign, run_campaign, summarize

    try:
        spec = load_campaign(campaign)
    except ConfigError as exc:
        _bad_input(exc)
    progress = Progress.start(runs, enabled=not as_json)
    try:
        results = run_campaign(
            spec,
            runs,
            seed,
            jobs,
            keep_trace=trace_file is not None,
            on_result=lambda result: progress.advance(len(result.violations)),
        )
    finally:
        progress.finish()
    if trace_file:
        with open(trace_file, "w", encoding="utf-8") as handle:
            for result in results:
                handle.write(f"# run seed {result.seed}\n{result.trace}")
    summary = summarize(spec, results, f"failover chaos {campaign}")
    if as_json:
        click.echo(json.dumps(summary))
    else:
        rto = summary["rto_s"]
        click.echo(
            f"campaign: {summary['title']}: {summary['runs']} runs, "
            f"{summary['simulated_s'] / 3600:.1f} simulated hours"
        )
        click.echo(f"invariant violations: {summary['violations']}")
        click.echo(
            f"false failovers: {summary['false_failovers']} (of {summary['switches']} switches)"
        )
        click.echo(
            f"RTO: p50 {rto['p50']} s, p95 {rto['p95']} s, p99 {rto['p99']} s over "
            f"{rto['episodes']} outages ({rto['unrecovered']} unrecovered at the end)"
        )
        click.echo(f"unavailable: {summary['unavailable_s']:.1f} s")
        click.echo("coverage (runs that hit each fault class):")
        for name, count in summary["coverage"].items():
            share = count * 100 / max(1, summary["runs"])
            click.echo(f"  {name:<24} {count:>6}  {share:5.1f} %{'' if share >= 1 else '  LOW'}")
        for failing in summary["failing"]:
            click.echo(f"FAILING seed {failing['seed']}: {failing['violations'][0]}")
            click.echo(f"  replay: {failing['replay']}")
    sys.exit(EXIT_FAILED if summary["violations"] else EXIT_OK)
