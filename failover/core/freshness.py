"""Freshness judged on the reader's own clock, never on the observers' wall clocks.

An observer stamps what it publishes with its own wall clock (`Observation.at`). If one site's
clock is off (an NTP failure in one data centre), comparing that stamp with the leader's clock
would drop its votes (clock behind) or keep a dead observer's verdict alive (clock ahead). So
the leader judges age by when *it* first saw each new stamp of an instance, as Patroni judges
members by when it last saw their keys change: skew between sites cannot change a decision.
A stamp the reader has never seen before counts from the moment it reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from failover.core.model import Observation


@dataclass(frozen=True, slots=True)
class Arrival:
    """The latest stamp of one observer instance and when the reader first saw it."""

    stamp: float  # the observer's own `at`, as published
    seen_at: float  # the reader's clock when that stamp first appeared
    skew_s: float  # stamp - seen_at at that moment: the observer's clock offset plus delay


def restamp(
    previous: Mapping[str, Arrival], observations: Iterable[Observation], now: float
) -> tuple[dict[str, Arrival], list[Observation]]:
    """(arrivals, the observations with `at` and `since` on the reader's clock)."""
    by_instance: dict[str, list[Observation]] = {}
    for obs in observations:
        by_instance.setdefault(obs.instance, []).append(obs)
    arrivals: dict[str, Arrival] = {}
    out: list[Observation] = []
    for instance, seen in by_instance.items():
        stamp = max(o.at for o in seen)
        known = previous.get(instance)
        arrival = (
            known
            if known is not None and known.stamp == stamp
            else Arrival(stamp, now, stamp - now)
        )
        arrivals[instance] = arrival
        shift = arrival.seen_at - stamp
        # the constructor, not dataclasses.replace: thousands of observations every cycle
        out += [
            Observation(
                o.instance, o.site, o.target, o.verdict, o.since + shift, o.at + shift, o.reason
            )
            for o in seen
        ]
    return arrivals, out
