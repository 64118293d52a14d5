"""The agent role: make this site's BGP announcements match the desired state.

It reads the desired state while it has a session, and remembers the last one it saw. Without
a session it keeps steering as it is, except that a primary demotes itself to backup once the
lease runs out (core.agent). It reports what it applied whenever it can.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from failover.config import BgpSteering, Config
from failover.coord import Coordinator, CoordinatorUnavailable
from failover.core import agent as rule
from failover.core.model import Announcement, GroupState
from failover.steer.base import SteerResult
from failover.steer.bird import BirdSteerer

log = logging.getLogger("failover.agent")


@dataclass
class InEffect:
    announcement: Announcement
    epoch: int
    verified: bool


class Agent:
    def __init__(self, config: Config, site: str, steerers: Mapping[str, BirdSteerer]) -> None:
        self.config = config
        self.site = site
        self.steerers = dict(steerers)  # group -> this site's BGP steerer
        self.desired: dict[str, GroupState] = {}
        self.in_effect: dict[str, InEffect] = {}
        self.unreported: dict[str, SteerResult] = {}

    def _read_in_effect(self) -> None:
        """What the kernel tables hold, once, from the cycle's worker thread: pyroute2's
        synchronous netlink cannot run in a thread whose asyncio loop is running."""
        for group, steerer in self.steerers.items():
            if group not in self.in_effect:
                seen = steerer.read()
                self.in_effect[group] = InEffect(seen.announcement, 0, seen.verified)

    def cycle(self, coordinator: Coordinator, now: float) -> float | None:
        """One agent cycle; returns when the lease would run out (None: no timer)."""
        self._read_in_effect()
        session = coordinator.session_state()
        lost_at = coordinator.disconnected_since()
        if session == "connected":
            try:
                for group in self.steerers:
                    state, _ = coordinator.desired(group)
                    if state is not None:
                        self.desired[group] = state
            except CoordinatorUnavailable:
                session = coordinator.session_state()
                lost_at = coordinator.disconnected_since() or now
        wakes: list[float] = []
        for group, steerer in self.steerers.items():
            steering = self.config.groups[group].steering
            assert isinstance(steering, BgpSteering)
            desired = self.desired.get(group)
            want, why = rule.announcement(desired, self.site, backup=steering.backup,
                                          session=session, lost_at=lost_at, now=now,
                                          lease_s=steering.lease_s)
            current = self.in_effect[group]
            epoch = desired.epoch if desired else 0
            if want == "primary" and session != "connected":
                end = rule.lease_ends_at(lost_at, steering.lease_s)
                if end is not None:
                    wakes.append(end)
            if want == current.announcement and current.verified and (
                    not rule.should_apply(epoch, current.epoch)):
                continue
            result = (steerer.apply(desired) if desired is not None and want == desired
                      .announcement(self.site, steering.backup) else steerer.announce(want, epoch))
            self.in_effect[group] = InEffect(result.announcement, epoch, result.verified)
            self.unreported[group] = result
            log.info(f"{group} at {self.site}: {result.announcement} ({result.outcome}); {why}",
                     extra={"fields": {"group": group, "announcement": result.announcement,
                                       "outcome": result.outcome, "epoch": epoch}})
        self._report(coordinator, now)
        return min(wakes) if wakes else None

    def _report(self, coordinator: Coordinator, now: float) -> None:
        if coordinator.session_state() != "connected":
            return
        for group, result in list(self.unreported.items()):
            try:
                coordinator.report_applied(result.applied(now))
            except CoordinatorUnavailable:
                return
            del self.unreported[group]

    def close(self) -> None:
        """Release the steerers' handles; the routes stay as they are."""
        for steerer in self.steerers.values():
            steerer.close()
