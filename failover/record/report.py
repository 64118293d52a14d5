"""`failover replay --report DIR`: both timelines (recorded, candidate) in one plot.

One panel per group: where each config had the group (its active site, or that it was
switching), as steps over the replayed time; the candidate's line is dashed.
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from failover.record.replay import Outcome


def write_report(outcome: Outcome, directory: str | Path) -> str:
    """Write timeline.png and index.html into `directory`; return the HTML file's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    groups = sorted(outcome.timeline) or ["-"]
    first = outcome.first or 0.0
    end = (outcome.last or first) - first
    figure, axes = plt.subplots(len(groups), 1, figsize=(10, 2.2 * len(groups)), squeeze=False)
    for axis, group in zip(axes[:, 0], groups, strict=True):
        points = outcome.timeline.get(group, [])
        levels = sorted({str(p[1]) for p in points} | {str(p[2]) for p in points})
        rank = {name: i for i, name in enumerate(levels)}
        for column, label, style in ((1, "recorded", "-"), (2, "candidate", "--")):
            xs = [t - first for t, *_ in points] + [end]
            ys = [rank[str(p[column])] for p in points]
            ys.append(ys[-1] if ys else 0)
            axis.step(xs, ys, where="post", linestyle=style, label=label)
        for diff in outcome.differences:
            if diff.group == group:
                axis.axvline(diff.at - first, color="grey", alpha=0.3, linewidth=0.8)
        axis.set_yticks(range(len(levels)), levels)
        axis.set_title(f"group {group}")
        axis.legend(loc="upper right")
    axes[-1, 0].set_xlabel(
        "seconds since "
        + datetime.datetime.fromtimestamp(first, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    figure.tight_layout()
    figure.savefig(folder / "timeline.png", dpi=90)
    plt.close(figure)
    rows = "".join(
        f"<tr><td>{d.at - first:.1f}</td><td>{html.escape(d.group)}</td>"
        f"<td>{html.escape(d.recorded.code)}: {html.escape(d.recorded.sentence)}</td>"
        f"<td>{html.escape(d.candidate.code)}: {html.escape(d.candidate.sentence)}</td></tr>"
        for d in outcome.differences
    )
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>failover replay</title>"
        f"<h1>Replay: {outcome.cycles} cycles</h1><img src=timeline.png alt=timeline>"
        "<table border=1><tr><th>s</th><th>group</th><th>recorded</th><th>candidate</th></tr>"
        f"{rows}</table>\n",
        encoding="utf-8",
    )
    return str(page)
