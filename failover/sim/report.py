"""A game day's HTML report: verdicts, the timeline, and a plot of what happened.

The plot (PNG) has one panel per view, faults shaded across all of them:
per-site service health, desired vs announced active site, and the client success rate.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failover.sim.playbook import Playbook
    from failover.sim.run import Outcome
    from failover.sim.world import World


class Recorder:
    """Samples the world after every event, keeping a point only when something changed."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.group = next(iter(world.config.groups))
        self.health: dict[str, list[tuple[float, float]]] = {s: [] for s in world.serving}
        self.desired: list[tuple[float, str]] = []
        self.announced: list[tuple[float, str]] = []
        self.primary: list[tuple[float, str]] = []
        self.sample()

    def sample(self) -> None:
        world = self.world
        now = world.now
        for site in world.serving:
            names = list(world.config.sites[site].services)
            up = sum(
                1
                for n in names
                if world.power[site]
                and world.services[(site, n)].serving()
                and not world.services[(site, n)].faulty()
            )
            value = up / len(names) if names else 1.0
            _point(self.health[site], now, value)
        state = world.control.desired[self.group]
        _point(self.desired, now, state.active if state.phase != "switching" else "switching")
        _point(self.announced, now, world.traffic.top(self.group))
        if world.steering.bgp[self.group]:
            primaries = [
                s for s in world.serving if world.steering.route[(self.group, s)] == "primary"
            ]
        else:
            primaries = [world.steering.dns[self.group][0]]
        _point(
            self.primary,
            now,
            primaries[0] if len(primaries) == 1 else "none" if not primaries else "split",
        )


def _point(series: list[tuple[float, Any]], now: float, value: Any) -> None:
    if not series or series[-1][1] != value:
        series.append((now, value))


def _steps(series: list[tuple[float, Any]], end: float) -> tuple[list[float], list[Any]]:
    xs = [t for t, _ in series] + [end]
    ys = [v for _, v in series] + [series[-1][1]]
    return xs, ys


def plot(outcome: Outcome, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    world: World = outcome.series["world"]
    recorder: Recorder = outcome.series["recorder"]
    end = float(outcome.series["end"])
    figure, axes = plt.subplots(
        3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [1.2, 1, 1.2]}
    )
    health, sites, clients = axes
    for site, points in recorder.health.items():
        hx, hy = _steps(points, end)
        health.step(hx, [y * 100 for y in hy], where="post", label=site)
    health.set_ylabel("services up (%)")
    health.set_ylim(-5, 105)
    health.legend(loc="lower left", fontsize=8)
    health.set_title(outcome.title, fontsize=11)
    levels: dict[str, float] = {site: float(i) for i, site in enumerate(world.serving)}
    levels.update({"switching": 0.5, "split": 0.5, "none": -0.5})
    for label, line, style in (
        ("desired active", recorder.desired, "-"),
        ("announced primary", recorder.primary, "-."),
        ("client traffic to", recorder.announced, "--"),
    ):
        xs, ys = _steps(line, end)
        sites.step(
            xs,
            [levels.get(y, -0.5) for y in ys],
            where="post",
            linestyle=style,
            label=f"{label} ({recorder.group})",
        )
    sites.set_yticks([-0.5, 0, 0.5, 1], ["none", world.serving[0], "between", world.serving[1]])
    sites.set_ylim(-0.8, 1.3)
    sites.legend(loc="lower left", fontsize=8)
    rate_xs, rate_ys = _steps(world.traffic.series, end)
    clients.step(rate_xs, [y * 100 for y in rate_ys], where="post", color="tab:green")
    clients.set_ylabel("requests ok (%)")
    clients.set_ylim(-5, 105)
    clients.set_xlabel("simulated seconds")
    clients.set_xlim(0, end)
    for fault in world.faults:
        if fault.start > end:
            continue
        for axis in axes:
            if fault.kind == "operator":
                axis.axvline(fault.start, color="tab:purple", linestyle=":", linewidth=1)
            else:
                axis.axvspan(
                    fault.start,
                    min(end, fault.end if fault.end is not None else end),
                    color="tab:red",
                    alpha=0.12,
                )
    for violation in world.checker.violations:
        for axis in axes:
            axis.axvline(violation.at, color="black", linewidth=1.5)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(outcome: Outcome, playbook: Playbook, folder: str) -> str:
    """Write index.html and timeline.png into `folder`; returns the HTML file's path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    plot(outcome, out / "timeline.png")
    esc = html.escape

    def rows(verdicts: list[Any]) -> str:
        return "".join(
            f"<tr class={'ok' if v.passed else 'fail'}><td>{'ok' if v.passed else 'FAIL'}</td>"
            f"<td>{esc(v.name)}</td><td>{esc(v.observed)}</td></tr>"
            for v in verdicts
        )

    violations = "".join(
        f"<li><b>{esc(v['name'])}</b> at {v['at']} s: {esc(v['message'])}"
        f"<pre>{esc(chr(10).join(v['trace']))}</pre></li>"
        for v in outcome.violations
    )
    rto = "none" if outcome.rto_s is None else f"{outcome.rto_s:.1f} s"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(outcome.title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 72em; }}
table {{ border-collapse: collapse; }} td {{ padding: 2px 10px; border-bottom: 1px solid #ddd; }}
tr.ok td:first-child {{ color: #070; }} tr.fail td:first-child {{ color: #b00; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 85%; }}
</style></head><body>
<h1>{esc(outcome.title)}</h1>
<p>{esc(" ".join(playbook.spec.description.split()))}</p>
<p><b>{"PASSED" if outcome.passed else "FAILED"}</b> &middot; seed {outcome.seed} &middot;
topology {esc(playbook.topology.name)} &middot; switches {outcome.switches} &middot; RTO {rto}
&middot; availability {outcome.availability * 100:.3f} % &middot;
{outcome.unavailable_s:.1f} s unavailable
{"&middot; aborted: " + esc(outcome.aborted) if outcome.aborted else ""}</p>
<img src="timeline.png" alt="timeline plot" width="990">
<h2>Steady state</h2><table>{rows(outcome.steady_state)}</table>
<h2>Expectations</h2><table>{rows(outcome.expectations)}</table>
<h2>Invariant violations</h2>{"<ul>" + violations + "</ul>" if violations else "<p>none</p>"}
<h2>Timeline</h2><pre>{esc(chr(10).join(outcome.timeline))}</pre>
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return str(path)
