"""Clients: where their requests go (BGP as propagated, DNS as cached) and how many succeed.

The success rate is piecewise constant between events; it is integrated exactly into
unavailable seconds, and every dip below `recovered_at` is an outage episode whose RTO runs
from the fault that preceded it to the moment the rate is back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.config.model import BgpSteering
from failover.core.model import Announcement
from failover.sim.topology import CLIENTS, ISP

if TYPE_CHECKING:
    from failover.sim.world import World

DNS_STEPS = 6  # a TTL's worth of caches expiring, in this many steps
# AS-path length of each announcement, as the lab's edge routers prepend (failover.lab.bird)
PATH_LENGTH: dict[Announcement, int] = {"primary": 0, "held": 1, "backup": 3}


def best_path(seen: Mapping[str, Announcement], order: Sequence[str]) -> str | None:
    """The site whose route the upstream router picks, as BGP does: the shortest AS path,
    ties to the first site of `order` (the lab's BIRD: the lowest router id, dc1's); None when
    nobody announces. Never a split."""
    ranked = [(PATH_LENGTH[a], order.index(site)) for site, a in seen.items() if a != "withdrawn"]
    if not ranked:
        return None
    return order[min(ranked)[1]]


@dataclass(slots=True)
class Episode:
    start: float  # when the success rate fell below the threshold
    fault_at: float  # the start of the latest fault before that
    end: float | None = None

    def rto_s(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.fault_at


class Traffic:
    def __init__(self, world: World) -> None:
        self.world = world
        config = world.config
        self.groups = list(config.groups)
        weights = world.model.clients.weights
        raw = {g: weights.get(g, 0.0 if weights else 1.0) for g in self.groups}
        total = sum(raw.values()) or 1.0
        self.weights = {g: raw[g] / total for g in self.groups}
        self.bgp = {g: isinstance(config.groups[g].steering, BgpSteering) for g in self.groups}
        self.members = {g: list(config.groups[g].services) for g in self.groups}
        self.seen: dict[tuple[str, str], Announcement] = {}  # (group, site) as routers see it
        self._arrive: dict[tuple[str, str], float] = {}
        self.share: dict[str, dict[str, float]] = {}  # DNS: group -> site -> client share
        self._dns_gen: dict[str, int] = {}
        self.dirty = True
        self.rate = 1.0
        self.group_rate: dict[str, float] = {g: 1.0 for g in self.groups}
        self.group_lost: dict[str, float] = {g: 0.0 for g in self.groups}
        self.top_series: dict[str, list[tuple[float, str]]] = {g: [(0.0, "")] for g in self.groups}
        self.since = 0.0
        self.unavailable_s = 0.0
        self.series: list[tuple[float, float]] = [(0.0, 1.0)]
        self.episodes: list[Episode] = []
        self.threshold = world.model.clients.recovered_at
        self.uplink_up = {site: True for site in world.serving}  # router-isp link not cut
        self._uplink_gen = {site: 0 for site in world.serving}

    def bootstrap(self) -> None:
        steering = self.world.steering
        for key, announced in steering.route.items():
            self.seen[key] = announced
        for group, (site, _) in steering.dns.items():
            self.share[group] = {s: 1.0 if s == site else 0.0 for s in self.world.serving}
            self._dns_gen[group] = 0
        self.refresh()

    # --- steering as the clients see it -------------------------------------------------

    def route_changed(self, key: tuple[str, str], announced: Announcement) -> None:
        world = self.world
        if announced == "withdrawn" and not world.power[key[1]]:
            delay = world.model.steering.bgp_hold_s
        else:
            low, high = world.model.steering.bgp_propagation_s
            delay = world.rng.uniform(low, high)
        when = max(world.now + delay, self._arrive.get(key, 0.0))
        self._arrive[key] = when
        world.at(when, self._propagated, (key, announced))

    def _propagated(self, arg: tuple[tuple[str, str], Announcement]) -> None:
        key, announced = arg
        if not self.uplink_up[key[1]]:
            return  # the BGP session is cut: the update never reaches the isp
        if self.seen.get(key) != announced:
            self.seen[key] = announced
            self.world.log("bgp", f"{key[0]} routers see {key[1]} {announced}")
            self.dirty = True

    def uplinks_changed(self) -> None:
        """A router's link to the isp was cut or healed. Cut: the clients' way in through it
        fails at once, its BGP session goes silent and the isp drops its routes when the hold
        timer runs out (`bgp_hold_s`). Healed: the session comes back and the isp learns what
        the router announces now, after the usual propagation."""
        world = self.world
        for site in world.serving:
            up = frozenset((world.routers[site], ISP)) not in world.cuts
            if up == self.uplink_up[site]:
                continue
            self.uplink_up[site] = up
            gen = self._uplink_gen[site] = self._uplink_gen[site] + 1
            self.dirty = True
            if up:
                low, high = world.model.steering.bgp_propagation_s
                world.after(world.rng.uniform(low, high), self._session, (site, gen, True))
            else:
                world.after(world.model.steering.bgp_hold_s, self._session, (site, gen, False))

    def _session(self, arg: tuple[str, int, bool]) -> None:
        site, gen, up = arg
        if gen != self._uplink_gen[site]:
            return
        world = self.world
        why = "session re-established" if up else "hold timer expired"
        for group in self.groups:
            key = (group, site)
            if not self.bgp[group]:
                continue
            announced = world.steering.route[key] if up else "withdrawn"
            if self.seen.get(key) != announced:
                self.seen[key] = announced
                world.log("bgp", f"{group} routers see {site} {announced} ({why})")
                self.dirty = True

    def dns_changed(self, group: str, site: str, ttl_s: float) -> None:
        """The name servers answer `site` now; caches let go of the old answer within the
        TTL it was given with (`ttl_s`), a few stragglers only much later."""
        world = self.world
        gen = self._dns_gen[group] = self._dns_gen[group] + 1
        away = {s: v for s, v in self.share[group].items() if s != site}
        follow = 1 - world.model.steering.dns_ignore_ttl_fraction
        for step in range(1, DNS_STEPS + 1):
            world.at(
                world.now + ttl_s * step / DNS_STEPS,
                self._dns_move,
                (group, gen, site, {s: v * follow / DNS_STEPS for s, v in away.items()}),
            )
        stragglers = {s: v * (1 - follow) for s, v in away.items()}
        world.at(
            world.now + max(ttl_s, world.model.steering.dns_ignore_ttl_s),
            self._dns_move,
            (group, gen, site, stragglers),
        )

    def _dns_move(self, arg: tuple[str, int, str, dict[str, float]]) -> None:
        group, gen, site, moves = arg
        if gen != self._dns_gen[group]:
            return
        share = self.share[group]
        for other, amount in moves.items():
            moved = min(amount, share[other])
            share[other] -= moved
            share[site] += moved
        self.dirty = True

    # --- success ---------------------------------------------------------------------------

    def site_success(self, group: str, site: str) -> float:
        world = self.world
        if not world.reach(CLIENTS, site) or not self.uplink_up[site]:
            return 0.0
        timeout = world.model.clients.timeout_s
        rtt = world.rtt_s(CLIENTS, site)
        rate = 1.0 - world.loss_p(CLIENTS, site)
        for name in self.members[group]:
            service = world.services[(site, name)]
            if not service.serving() or rtt + service.latency_s() >= timeout:
                return 0.0
            rate *= 1 - service.fail_p()
        return rate

    def destinations(self, group: str) -> dict[str, float]:
        if not self.bgp[group]:
            return self.share[group]
        sites = self.world.serving
        best = best_path({s: self.seen.get((group, s), "withdrawn") for s in sites}, sites)
        return {} if best is None else {best: 1.0}

    def top(self, group: str) -> str:
        """The site that most of the group's clients reach, `split` or `none`."""
        shares = [(share, site) for site, share in self.destinations(group).items() if share > 0]
        if not shares:
            return "none"
        share, site = max(shares)
        return site if share > 0.5 else "split"

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        world = self.world
        now = world.now
        total = 0.0
        rates = {}
        for group in self.groups:
            rates[group] = round(
                sum(
                    share * self.site_success(group, site)
                    for site, share in self.destinations(group).items()
                    if share > 0
                ),
                9,
            )
            total += self.weights[group] * rates[group]
            top = self.top(group)
            if self.top_series[group][-1][1] == "":
                self.top_series[group] = [(now, top)]
            elif self.top_series[group][-1][1] != top:
                self.top_series[group].append((now, top))
        total = round(total, 9)
        if total == self.rate and rates == self.group_rate:
            return
        for group, rate in self.group_rate.items():
            self.group_lost[group] += (1 - rate) * (now - self.since)
        self.unavailable_s += (1 - self.rate) * (now - self.since)
        self.group_rate = rates
        was_ok = self.rate >= self.threshold
        self.since = now
        if total == self.rate:
            return
        self.rate = total
        self.series.append((now, total))
        world.log("clients", f"success {total * 100:.2f} %")
        is_ok = total >= self.threshold
        if was_ok and not is_ok:
            starts = [f.start for f in world.faults if f.start <= now and f.kind != "operator"]
            self.episodes.append(Episode(now, max(starts, default=now)))
        elif is_ok and not was_ok and self.episodes and self.episodes[-1].end is None:
            self.episodes[-1].end = now

    def lost_s(self, group: str | None) -> float:
        """Seconds of requests lost up to now (all groups weighted, or one group)."""
        now = self.world.now
        if group is None:
            return self.unavailable_s + (1 - self.rate) * (now - self.since)
        return self.group_lost[group] + (1 - self.group_rate[group]) * (now - self.since)

    def availability(self, group: str | None) -> float:
        now = self.world.now
        return 1.0 - self.lost_s(group) / now if now > 0 else 1.0

    def finish(self, now: float) -> None:
        """Account the time up to `now` (end of run)."""
        self.world.now = max(self.world.now, now)
