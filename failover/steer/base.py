"""The steering contract: what every adapter promises, its result, and the fail-open guard."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from failover.core.model import Announcement, Applied, GroupState

Outcome = Literal["verified", "unverified", "refused", "failed"]


class SteerError(RuntimeError):
    """A steerer cannot be built from its configuration (a missing key file, a bad name)."""


@dataclass(frozen=True, slots=True)
class SteerResult:
    """What is in effect for a group after `apply()` or `read()`, and how sure we are.

    outcome: `verified` (every place that must show it does), `unverified` (sent, but not
    every place shows it by the deadline: `detail` names which), `refused` (not done on
    purpose: the fail-open guard, a stale epoch, a rejected key), `failed` (could not be done).
    `announcement` is what is in effect as far as the steerer can tell afterwards.
    """

    group: str
    site: str
    epoch: int
    announcement: Announcement
    outcome: Outcome
    detail: str = ""
    changed: bool = False

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"

    def applied(self, at: float) -> Applied:
        return Applied(
            group=self.group,
            site=self.site,
            epoch=self.epoch,
            announcement=self.announcement,
            at=at,
            verified=self.verified,
            detail=self.detail or self.outcome,
        )


class Steerer(ABC):
    """Makes one part of the world carry a group's traffic as the desired state says.

    Contract, for every implementation:
    - `apply(state)` is idempotent: applying the same state again sends nothing new and
      returns the same announcement (`changed` False). It never raises for the network or the
      peer: the result's `outcome` tells (`refused` or `failed`, with a reason in `detail`).
    - It returns within `deadline_s` (the constructor's default, or the call's): transient
      errors are retried with bounded back-off until then; verification polls until then.
    - It never passes through a state worse than both ends: a primary is de-preferred (backup)
      before it is withdrawn; records are replaced in one atomic update.
    - A plan in which no site of the group would announce anything is refused unless
      `force=True` (`fail_open_problem`).
    - `read()` reports what is in effect now, without changing anything.
    """

    group: str
    site: str

    @abstractmethod
    def apply(
        self, state: GroupState, *, force: bool = False, deadline_s: float | None = None
    ) -> SteerResult:
        """Make what this steerer controls match `state`; verify it; say what is in effect."""

    @abstractmethod
    def read(self) -> SteerResult:
        """What is in effect now (and whether every place that must show it agrees)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets or handles; the steerer may not be used afterwards."""


class RouteSteerer(Steerer):
    """One site's announcement of one BGP group (what an agent drives): besides `apply`, it
    can put a given announcement in effect (the lease's hold, a stop hook)."""

    @abstractmethod
    def announce(
        self,
        announcement: Announcement,
        epoch: int,
        *,
        plan: dict[str, Announcement] | None = None,
        force: bool = False,
        deadline_s: float | None = None,
    ) -> SteerResult:
        """Put `announcement` in effect at this site. Without `plan` (what every site of the
        group will announce) a withdrawal counts as the last one, refused unless forced."""


def bgp_plan(state: GroupState, sites: list[str], backup: bool) -> dict[str, Announcement]:
    """What every site of a BGP group must announce under `state`."""
    return {site: state.announcement(site, backup=backup) for site in sites}


def fail_open_problem(group: str, plan: Mapping[str, Announcement]) -> str | None:
    """Why `plan` must be refused (no site would announce the group), or None if it is safe."""
    if any(announcement != "withdrawn" for announcement in plan.values()):
        return None
    sites = ", ".join(sorted(plan)) or "no site"
    return (
        f"fail-open guard: no site would announce group {group} "
        f"({sites}: withdrawn); force is required to withdraw it everywhere"
    )
