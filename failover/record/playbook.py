"""`failover replay LOG --to-playbook OUT.yaml`: a recorded incident as a simulator game-day.

Faults are read off the recorded observations: a service that a quorum of observer sites
judged down is a `service_down` in its site, from when the first of them saw it fail to when
it came back (each moved back by the check's fall or rise count times its interval, since a
verdict follows the failure by that much); a service that only some observer sites judged
down is a `probe_loss` from each of those sites to it. The expectations are the recorded
outcome: per group, the number of switches and the active site at the end.

The playbook is written next to a topology file (`OUT.topology.yaml`) that holds the
recorded config and a plain world (one ZooKeeper server per site).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from failover.config import Config
from failover.core.model import split_target
from failover.record.format import Cycle
from failover.record.read import LogError
from failover.record.replay import Summary, recorded_config

MARGIN_S = 30.0  # the simulator runs this long past the recording, to let a switch settle


@dataclass
class Episode:
    site: str
    service: str
    voters: frozenset[str]  # observer sites that judged it down
    began: float
    ended: float | None = None
    peak: int = 0  # the most observer sites that judged it down at once


def _votes(cycle: Cycle) -> dict[tuple[str, str], dict[str, tuple[str, float]]]:
    """(site, service) -> observer site -> (verdict, since) of its latest instance."""
    out: dict[tuple[str, str], dict[str, tuple[str, float]]] = {}
    for obs in cycle.view.observations:
        site, service, _ = split_target(obs.target)
        seen = out.setdefault((site, service), {})
        if obs.site not in seen or seen[obs.site][0] != "down":
            seen[obs.site] = (obs.verdict, obs.since)
    return out


def episodes(
    cycles: Iterable[Cycle], config: Config
) -> tuple[list[Episode], float, float, Summary, dict[str, str]]:
    """Down episodes, the first and last cycle times, the recorded switches, the end state."""
    found: list[Episode] = []
    open_: dict[tuple[str, str], Episode] = {}
    summary = Summary()
    first: float | None = None
    last = 0.0
    active: dict[str, str] = {}
    for cycle in cycles:
        first = cycle.now if first is None else first
        last = cycle.now
        for group, state in cycle.states.items():
            summary.note(cycle.now, cycle.start.get(group), state)
            active[group] = state.active
        for key, votes in _votes(cycle).items():
            down = frozenset(s for s, (verdict, _) in votes.items() if verdict == "down")
            episode = open_.get(key)
            if down and episode is None:
                began = min(since for s, (verdict, since) in votes.items() if s in down)
                episode = open_[key] = Episode(key[0], key[1], down, began, peak=len(down))
                found.append(episode)
            elif down and episode is not None:
                episode.voters |= down
                episode.peak = max(episode.peak, len(down))
            elif episode is not None:
                ups = [
                    since
                    for s, (verdict, since) in votes.items()
                    if s in episode.voters and verdict == "up"
                ]
                episode.ended = min(ups) if ups else cycle.now
                del open_[key]
    if first is None:
        raise LogError("no recorded cycle in the given files and time window")
    return found, first, last, summary, active


def playbook(
    cycles: Iterable[Cycle], start: float | None = None, end: float | None = None
) -> tuple[dict[str, Any], Config]:
    """The playbook document (its `topology` still to be set) and the recorded config."""
    chosen = [
        c for c in cycles if (start is None or c.now >= start) and (end is None or c.now <= end)
    ]
    if not chosen:
        raise LogError("no recorded cycle in the given files and time window")
    config = recorded_config(chosen[0])
    found, first, last, summary, active = episodes(chosen, config)
    method = []
    for episode in found:
        check = config.sites[episode.site].services[episode.service].check
        began = max(0.0, episode.began - check.fall * check.interval_s - first)
        ended = (
            None
            if episode.ended is None
            else max(began + 0.1, episode.ended - check.rise * check.interval_s - first)
        )
        quorum = episode.peak >= config.observer_quorum
        faults: list[dict[str, Any]] = (
            [{"kind": "service_down", "site": episode.site, "service": episode.service}]
            if quorum
            else [
                {
                    "kind": "probe_loss",
                    "between": [voter, episode.site],
                    "one_way": True,
                    "loss": 1.0,
                }
                for voter in sorted(episode.voters)
            ]
        )
        for fault in faults:
            step: dict[str, Any] = {
                "name": f"{episode.site} {episode.service} down, seen by "
                f"{', '.join(sorted(episode.voters))}",
                "at_s": round(began, 3),
                "fault": fault,
            }
            if ended is not None:
                step["duration_s"] = round(ended - began, 3)
            method.append(step)
    if not method:
        raise LogError(
            "the recording shows no service judged down by any observer: "
            "nothing to turn into a fault"
        )
    counts = {group: 0 for group in config.groups}
    for switch in summary.switches:
        counts[switch["group"]] += 1
    expectations = [f"switches({g}) == {n}" for g, n in counts.items()]
    expectations += [f"active({g}) == {site}" for g, site in active.items()]
    doc = {
        "title": f"Recorded incident of {config.cluster.name}",
        "description": f"Replayed from {len(chosen)} recorded leader cycles over "
        f"{last - first:.1f} s: the faults the observers saw, and what the "
        "leader did then.",
        "duration_s": round(last - first + MARGIN_S, 3),
        "method": method,
        "expectations": expectations + ["no_dual_primary"],
    }
    return doc, config


def topology(config: Config) -> dict[str, Any]:
    return {
        "name": f"recorded-{config.cluster.name}",
        "description": "the recorded config, in a plain simulated world",
        "config": config.model_dump(mode="json", exclude_defaults=True),
        "world": {"zookeeper": {"servers": {site: 1 for site in config.sites}}},
    }


def write_playbook(
    cycles: Iterable[Cycle], out: str | Path, start: float | None = None, end: float | None = None
) -> str:
    doc, config = playbook(cycles, start, end)
    path = Path(out)
    topo = path.with_name(path.name.removesuffix(".yaml") + ".topology.yaml")
    doc = {
        "title": doc.pop("title"),
        "description": doc.pop("description"),
        "topology": topo.name,
        **doc,
    }
    try:
        topo.write_text(yaml.safe_dump(topology(config), sort_keys=False), encoding="utf-8")
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise LogError(f"{exc.filename or path}: cannot write: {exc.strerror or exc}") from None
    return str(path)
