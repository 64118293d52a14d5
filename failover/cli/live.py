"""`failover gameday PLAYBOOK --live`: the playbook in the lab, scored against the simulator.

Exit 0: it passed live and matched its prediction; 1: it failed live or a verdict or key event
differs from the prediction; 2: a bad playbook or topology; 3: the playbook cannot run live
here (`not supported live`, with why).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from failover.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

EXIT_NOT_LIVE = 3


def _interrupt(signum: int, frame: Any) -> NoReturn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not stop the teardown
    raise KeyboardInterrupt  # SIGTERM tears the lab down as Ctrl-C does


def render(result: Any) -> str:
    """The side-by-side table of a `Score`."""
    from failover.live.gameday import Score

    assert isinstance(result, Score)
    lines = [f"game day (live): {result.title} [{result.playbook}]"]
    if not result.supported:
        lines += [f"  not supported live: {why}" for why in result.why_not]
        return "\n".join(lines)
    assert result.live is not None and result.predicted is not None
    lines += ["", "live timeline:"] + [f"  {line}" for line in result.live.history.lines]
    width = max([len(name) for name, _, _ in result.rows] + [20])

    def cell(v: Any) -> str:
        return "-" if v is None else f"{'ok' if v.passed else 'FAIL'} {v.observed}"[:28]

    lines += ["", f"  {'expectation':<{width}}  {'predicted':<28}  {'live':<28}  match"]
    for name, predicted, live in result.rows:
        same = predicted is not None and live is not None and predicted.passed == live.passed
        lines.append(
            f"  {name:<{width}}  {cell(predicted):<28}  {cell(live):<28}  {'yes' if same else 'NO'}"
        )
    lines += [
        "",
        f"  {'key event (s after the first fault)':<40}  predicted  live     tolerance  match",
    ]
    for event in result.events:

        def t(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        lines.append(
            f"  {event.name:<40}  {t(event.predicted):<9}  {t(event.live):<7}  "
            f"±{event.tolerance_s:g} s{'':<5}{'yes' if event.matched else 'NO'}"
        )
    for violation in result.live.metrics.found:
        lines.append(
            f"  VIOLATION (live) at {violation['at']} s: {violation['name']}: "
            f"{violation['message']}"
        )
    if result.live.aborted:
        lines.append(f"  ABORTED (live): {result.live.aborted}")
    lines.append("")
    lines.append(
        f"live {'PASSED' if result.passed else 'FAILED'}, predicted "
        f"{'PASSED' if result.predicted.passed else 'FAILED'}, "
        f"{'MATCHED' if result.matched else 'MISMATCH'} ({result.live.wall_s:.0f} s in the lab)"
    )
    return "\n".join(lines)


def write_report(result: Any, folder: str) -> str:
    """JSON, both timelines, and (with matplotlib) the predicted and live steps in one plot."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    data = result.as_dict()
    (out / "gameday-live.json").write_text(json.dumps(data, indent=1))
    if result.live is not None and result.predicted is not None:
        (out / "timeline-live.txt").write_text("\n".join(result.live.history.lines) + "\n")
        (out / "timeline-predicted.txt").write_text("\n".join(result.predicted.timeline) + "\n")
        with contextlib.suppress(ImportError):
            _plot(result, out / "overlay.png")
    (out / "table.txt").write_text(render(result) + "\n")
    return str(out)


def _plot(result: Any, path: Path) -> None:
    """The first group's active site and the isp's best route, predicted and live."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from failover.live.gameday import routes_seen

    history = result.live.history
    world = result.predicted.series["world"]
    group = next(iter(world.config.groups))
    sites = list(world.config.serving_sites)

    def level(site: str) -> float:
        return float(sites.index(site)) if site in sites else 0.5

    active = {
        "live": [
            (t, level(s.active) if s.phase != "switching" else 0.5)
            for t, s in history.desired.get(group, [])
        ],
        "predicted": [
            (t, level(s.active) if s.phase != "switching" else 0.5)
            for t, _, s in world.control.history
            if s.group == group
        ],
    }
    route = {
        "live": [(t, level(v[0]) if v and v[1] == "primary" else 0.5) for t, v in history.best],
        "predicted": [(t, level(site)) for t, site in routes_seen(result.predicted)],
    }
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    end = max(history.end, float(result.predicted.series["end"]) - 60.0)
    for ax, title, data in ((axes[0], f"{group} active", active), (axes[1], "isp route", route)):
        for label, style in (("predicted", "--"), ("live", "-")):
            series = data[label]
            if series:
                xs = [t for t, _ in series] + [end]
                ys = [v for _, v in series] + [series[-1][1]]
                ax.step(xs, ys, style, where="post", label=f"{title} ({label})")
        ax.set_yticks(range(len(sites)), sites)
        ax.legend(loc="lower right")
    axes[1].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(playbook_path: str, seed: int, as_json: bool, report_dir: str | None) -> NoReturn:
    from failover.config import ConfigError
    from failover.lab.netns import LabError
    from failover.live.gameday import gameday, unsupported
    from failover.sim.playbook import load_playbook

    try:
        book = load_playbook(playbook_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        sys.exit(EXIT_USAGE)
    skipped = unsupported(book, playbook_path)
    if skipped is not None:
        click.echo(json.dumps(skipped.as_dict()) if as_json else render(skipped))
        sys.exit(EXIT_NOT_LIVE)
    if os.geteuid() != 0:
        click.echo("failover gameday --live: the lab needs root (network namespaces)", err=True)
        sys.exit(EXIT_USAGE)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = gameday(
            book, playbook_path, seed, say=lambda text: click.echo(f"... {text}", err=True)
        )
    except (ValueError, LabError) as exc:  # the lab's config and the topology differ
        click.echo(f"failover gameday --live: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if report_dir:
        write_report(result, report_dir)
    click.echo(json.dumps(result.as_dict()) if as_json else render(result))
    sys.exit(EXIT_OK if result.passed and result.matched else EXIT_FAILED)


def run_chaos(campaign_path: str, runs: int, seed: int, as_json: bool) -> NoReturn:
    """`failover chaos CAMPAIGN --live`: the summary, mismatches and replay commands."""
    import time

    from failover.config import ConfigError
    from failover.live.chaos import not_live, run_live_campaign, summarize
    from failover.sim.campaign import load_campaign

    try:
        campaign = load_campaign(campaign_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        sys.exit(EXIT_USAGE)
    why = not_live(campaign)
    if why:
        for line in why:
            click.echo(f"{campaign_path}: not supported live: {line}", err=True)
        sys.exit(EXIT_NOT_LIVE)
    if os.geteuid() != 0:
        click.echo("failover chaos --live: the lab needs root (network namespaces)", err=True)
        sys.exit(EXIT_USAGE)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()

    def each(run_seed: int, result: Any) -> None:
        state = "matched" if result.matched else "MISMATCH"
        found = len(result.live.metrics.found) if result.live else 0
        click.echo(f"run {run_seed}: {state}, {found} violation(s)", err=True)

    try:
        results = run_live_campaign(
            campaign,
            runs,
            seed,
            say=lambda text: click.echo(f"... {text}", err=True),
            on_result=each,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = summarize(
        campaign, results, f"failover chaos {campaign_path}", time.monotonic() - started
    )
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"campaign (live): {summary['title']}: {summary['runs']} runs "
            f"in {summary['wall_s']:.0f} s"
        )
        click.echo(f"invariant violations: {summary['violations']}")
        click.echo(
            f"mismatches with the prediction: {summary['mismatches']} "
            f"({summary['mismatches_near_tie']} near ties: the simulator's own outcome flips)"
        )
        click.echo(f"switches: {summary['switches']}")
        click.echo("coverage (runs that hit each fault class):")
        for name, count in summary["coverage"].items():
            click.echo(f"  {name:<24} {count:>6}")
        for failing in summary["failing"]:
            click.echo(
                f"FAILING seed {failing['seed']}: "
                + "; ".join(failing["violations"] + failing["mismatched"])
            )
            if failing.get("near_tie"):
                click.echo(f"  near tie: the simulator's outcomes {failing['near_tie']}")
            click.echo(f"  replay live: {failing['replay_live']}")
            click.echo(f"  replay simulated: {failing['replay_simulated']}")
    sys.exit(EXIT_FAILED if summary["violations"] or summary["mismatches"] else EXIT_OK)
