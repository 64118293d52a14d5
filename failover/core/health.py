"""From many observers' verdicts to one situation per serving site and group.

Votes are counted by observer *site*, not by instance: a site votes `down` on a service when
most of its instances with fresh observations say so. A service is down (or up) when at least
`quorum` observer sites agree. One observer's broken network, or a cut between the two serving
sites, therefore never makes a site look down on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from failover.config.model import Config
from failover.core.model import Observation, SiteHealth, Situation, Verdict, target_key


@dataclass(frozen=True, slots=True)
class ServiceLayout:
    site: str
    name: str
    critical: bool
    targets: tuple[str, ...]
    min_up: int


class Layout:
    """What the configuration says about who probes what; derived once per config."""

    def __init__(self, config: Config) -> None:
        self.quorum = config.observer_quorum
        self.stale_after_s = config.policy.stale_after_s
        self.serving = tuple(config.serving_sites)
        self.observer_sites = tuple(config.observer_sites)
        self.witnesses = tuple(s for s in self.observer_sites if s not in self.serving)
        self.services: dict[str, dict[str, tuple[ServiceLayout, ...]]] = {}
        for group_name, group in config.groups.items():
            per_site = {}
            for site in self.serving:
                layouts = []
                for name, service in config.sites[site].services.items():
                    if service.role == "degraded" or name in group.services:
                        layouts.append(
                            ServiceLayout(
                                site,
                                name,
                                service.role == "critical" and name in group.services,
                                tuple(target_key(site, name, t) for t in service.targets()),
                                service.min_up,
                            )
                        )
                per_site[site] = tuple(layouts)
            self.services[group_name] = per_site

    def other(self, site: str) -> str:
        return self.serving[1] if site == self.serving[0] else self.serving[0]


def index(
    observations: Iterable[Observation], now: float, stale_after_s: float
) -> dict[str, dict[str, dict[str, Verdict]]]:
    """target -> observer site -> instance -> verdict, fresh observations only."""
    fresh: dict[str, dict[str, dict[str, Verdict]]] = {}
    for obs in observations:
        if now - obs.at < stale_after_s and obs.verdict != "unknown":
            fresh.setdefault(obs.target, {}).setdefault(obs.site, {})[obs.instance] = obs.verdict
    return fresh


def service_votes(
    service: ServiceLayout, fresh: dict[str, dict[str, dict[str, Verdict]]]
) -> dict[str, Verdict]:
    """observer site -> its vote on the service (sites without a decided vote are left out)."""
    per_instance: dict[str, dict[str, list[Verdict]]] = {}
    for target in service.targets:
        for site, instances in fresh.get(target, {}).items():
            for instance, verdict in instances.items():
                per_instance.setdefault(site, {}).setdefault(instance, []).append(verdict)
    allowed_down = len(service.targets) - service.min_up
    votes: dict[str, Verdict] = {}
    for site, by_instance in per_instance.items():
        up = down = 0
        for seen in by_instance.values():
            if seen.count("up") >= service.min_up:
                up += 1
            elif seen.count("down") > allowed_down:
                down += 1
        if up != down:
            votes[site] = "up" if up > down else "down"
    return votes


def assess(
    layout: Layout, group: str, fresh: dict[str, dict[str, dict[str, Verdict]]]
) -> dict[str, SiteHealth]:
    """The situation of every serving site for one group."""
    return {site: assess_site(layout, group, site, fresh) for site in layout.serving}


def assess_site(
    layout: Layout, group: str, site: str, fresh: dict[str, dict[str, dict[str, Verdict]]]
) -> SiteHealth:
    quorum = layout.quorum
    votes: dict[str, dict[str, Verdict]] = {}
    critical_down: list[str] = []
    degraded_down: list[str] = []
    undecided = False
    down_voters: set[str] = set()
    up_voters: set[str] = set()
    voters: set[str] = set()
    for service in layout.services[group][site]:
        service_vote = service_votes(service, fresh)
        votes[service.name] = service_vote
        downs = [s for s, v in service_vote.items() if v == "down"]
        ups = [s for s, v in service_vote.items() if v == "up"]
        if not service.critical:
            if len(downs) >= quorum:
                degraded_down.append(service.name)
            continue
        voters.update(service_vote)
        down_voters.update(downs)
        up_voters.update(ups)
        if len(downs) >= quorum:
            critical_down.append(service.name)
        elif len(ups) < quorum:
            undecided = True
    critical = sum(1 for s in layout.services[group][site] if s.critical)
    situation: Situation
    if len(voters) < quorum:
        situation = "no_quorum"
        detail = f"{len(voters)} of {len(layout.observer_sites)} observer sites have fresh verdicts"
    elif critical_down:
        situation = "site_down" if len(critical_down) == critical else "service_down"
        detail = "; ".join(
            _evidence(site, name, votes[name], len(voters)) for name in critical_down
        )
    elif down_voters:
        others = up_voters - down_voters
        isolated = down_voters == {layout.other(site)} and bool(others)
        situation = "site_isolated" if isolated else "observers_disagree"
        detail = (
            f"only {layout.other(site)} sees {site} down; "
            f"{', '.join(sorted(others))} see{'s' if len(others) == 1 else ''} it up"
            if isolated
            else "; ".join(
                _split_vote(site, name, vote)
                for name, vote in votes.items()
                if "down" in vote.values()
            )
            + f"; quorum is {quorum}"
        )
    elif undecided:
        situation = "no_quorum"
        detail = f"fewer than {quorum} observer sites agree on every service"
    else:
        situation = "healthy"
        detail = f"every critical service up by at least {quorum} observer sites"
    return SiteHealth(
        site, situation, tuple(critical_down), tuple(degraded_down), votes, len(voters), detail
    )


def _split_vote(site: str, service: str, votes: dict[str, Verdict]) -> str:
    down = sorted(s for s, v in votes.items() if v == "down")
    up = sorted(s for s, v in votes.items() if v == "up")
    return f"{site} {service} down for {', '.join(down)}, up for {', '.join(up) or 'nobody'}"


def _evidence(site: str, service: str, votes: dict[str, Verdict], voters: int) -> str:
    downs = sum(1 for v in votes.values() if v == "down")
    return f"{site} {service} down by {downs}/{voters} observer sites"


def stale_at(observations: Iterable[Observation], now: float, stale_after_s: float) -> float | None:
    """The next moment a fresh observation goes stale (and a verdict may change)."""
    times = [o.at + stale_after_s for o in observations if o.at + stale_after_s > now]
    return min(times) if times else None
