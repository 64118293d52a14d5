"""The agent role: make this site's BGP announcements match the desired state.

Every cycle it reads the desired state while it has a session; the start of the last read that
succeeded is its confirmation. A primary it cannot confirm for `lease_s` is held (core.agent):
preferred over any backup, never withdrawn. It reports what it applied whenever it can.
`primary_on_lease` tells the runner whether a primary is only held up by the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from failover.config import BgpSteering, Config
from failover.coord import Coordinator, CoordinatorUnavailable
from failover.core import agent as rule
from failover.core.model import Announcement, GroupState
from failover.steer.base import RouteSteerer, SteerResult

log = logging.getLogger("failover.agent")
RECHECK_S = 2.0  # how often the agent reads back what the kernel tables hold


@dataclass
class InEffect:
    announcement: Announcement
    epoch: int
    verified: bool


class Agent:
    def __init__(self, config: Config, site: str, steerers: Mapping[str, RouteSteerer]) -> None:
        self.config = config
        self.site = site
        self.steerers = dict(steerers)  # group -> this site's BGP steerer
        self.desired: dict[str, GroupState] = {}
        self.in_effect: dict[str, InEffect] = {}
        self.unreported: dict[str, SteerResult] = {}
        self.confirmed_at: float | None = None  # start of the last successful read
        self.cycle_started_at = 0.0
        # the last cycle's read of the desired state or report went unanswered on a connected
        # session (a silent server): the rest of that cycle must not wait on it again
        self.unanswered = False
        self.read_at = float("-inf")  # when the kernel tables were last read

    def _read_in_effect(self, now: float) -> None:
        """What the kernel tables hold: at the first cycle, then every `RECHECK_S`, from the
        cycle's worker thread (pyroute2's synchronous netlink cannot run in a thread whose
        asyncio loop is running). A route changed behind the agent's back (a stray stop hook,
        a hand, a flushed table) counts as not applied: the cycle puts it right."""
        recheck = now - self.read_at >= RECHECK_S
        for group, steerer in self.steerers.items():
            known = self.in_effect.get(group)
            if known is not None and not recheck:
                continue
            seen = steerer.read()
            if known is None:
                self.in_effect[group] = InEffect(seen.announcement, 0, seen.verified)
            elif seen.outcome != "failed" and seen.announcement != known.announcement:
                log.warning(
                    f"{group} at {self.site}: {seen.announcement} in effect where "
                    f"{known.announcement} was applied (changed outside the agent)",
                    extra={"fields": {"group": group, "announcement": seen.announcement}},
                )
                self.in_effect[group] = InEffect(seen.announcement, known.epoch, False)
        if recheck:
            self.read_at = now

    def cycle(self, coordinator: Coordinator, now: float) -> float | None:
        """One agent cycle; returns when the lease would run out (None: no timer)."""
        self._read_in_effect(now)
        self.cycle_started_at = now
        self.unanswered = False
        if coordinator.session_state() == "connected":
            try:
                for group in self.steerers:
                    state, _ = coordinator.desired(group)
                    if state is not None:
                        self.desired[group] = state
                self.confirmed_at = now
            except CoordinatorUnavailable:
                self.unanswered = True  # the last confirmation stands; the lease counts from it
        wakes: list[float] = []
        for group, steerer in self.steerers.items():
            steering = self.config.groups[group].steering
            assert isinstance(steering, BgpSteering)
            desired = self.desired.get(group)
            current = self.in_effect[group]
            want, why = rule.announcement(
                desired,
                self.site,
                backup=steering.backup,
                in_effect=current.announcement,
                confirmed_at=self.confirmed_at,
                now=now,
                lease_s=steering.lease_s,
            )
            epoch = desired.epoch if desired else current.epoch
            if want == "primary":
                end = rule.lease_ends_at(self.confirmed_at, steering.lease_s)
                if end is not None:
                    wakes.append(end)
            if (
                want == current.announcement
                and current.verified
                and (not rule.should_apply(epoch, current.epoch))
            ):
                continue
            result = (
                steerer.apply(desired)
                if desired is not None and want == desired.announcement(self.site, steering.backup)
                else steerer.announce(want, epoch)
            )
            self.in_effect[group] = InEffect(result.announcement, epoch, result.verified)
            if result.outcome == "failed" and result.epoch < epoch:
                # reported at the epoch it tried: the leader learns that this epoch's change
                # did not happen (e.g. a demotion that failed leaves the primary in effect)
                result = replace(result, epoch=epoch)
            self.unreported[group] = result
            log.info(
                f"{group} at {self.site}: {result.announcement} ({result.outcome}); {why}",
                extra={
                    "fields": {
                        "group": group,
                        "announcement": result.announcement,
                        "outcome": result.outcome,
                        "epoch": epoch,
                    }
                },
            )
        self._report(coordinator, now)
        return min(wakes) if wakes else None

    def may_keep_alive(self, now: float) -> bool:
        """Whether the daemon may feed the watchdog now: yes, unless a primary in effect was
        not confirmed by the last cycle and has stood on its lease for too long."""
        return now <= self.keep_alive_until()

    def keep_alive_until(self) -> float:
        """The last instant the daemon may feed the watchdog (`core.agent.keep_alive_until`):
        unbounded unless a primary in effect was not confirmed by the last cycle."""
        if self.confirmed_at is not None and self.confirmed_at >= self.cycle_started_at:
            return float("inf")
        daemon = self.config.cluster.daemon
        limits = [
            rule.keep_alive_until(
                self.confirmed_at,
                lease_s=self.config.lease_s(group),
                watchdog_s=daemon.watchdog_s,
                cycle_s=daemon.cycle_s,
            )
            for group, effect in self.in_effect.items()
            if effect.announcement == "primary"
        ]
        return min(limits, default=float("inf"))

    def _report(self, coordinator: Coordinator, now: float) -> None:
        if coordinator.session_state() != "connected":
            return
        for group, result in list(self.unreported.items()):
            try:
                coordinator.report_applied(result.applied(now))
            except CoordinatorUnavailable:
                self.unanswered = True
                return
            del self.unreported[group]

    def close(self) -> None:
        """Release the steerers' handles; the routes stay as they are."""
        for steerer in self.steerers.values():
            steerer.close()
