"""BGP steering through BIRD: the agent's kernel route is the announcement.

The site's BIRD learns one dedicated kernel table (`learn` in a `kernel` protocol) and exports
the group's prefix to the upstream: clean while the route's metric is below the group's held
metric (primary), with one AS-path prepend below the backup metric (held: a former primary
that cannot confirm it still is one), with more at or above it (backup), not at all without a
route (withdrawn). When several routes for the prefix exist BIRD uses the lowest metric, so a change
adds the new route before it deletes the old one: the prefix is never absent in between.
"""

from __future__ import annotations

import errno
import time
from typing import Any

from pyroute2 import IPRoute, NetlinkError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from failover.config.model import BgpSteering
from failover.core.model import Announcement, GroupState
from failover.steer.base import (
    RouteSteerer,
    SteerError,
    SteerResult,
    bgp_plan,
    fail_open_problem,
)
from failover.steer.birdctl import BirdError, protocol_info, protocol_state, show_routes
from failover.steer.transcript import Transcript

RTPROT_STATIC = 4


class _Transient(Exception):
    """A netlink or socket error worth another try."""


class BirdSteerer(RouteSteerer):
    """The agent of one site for one BGP group: owns the prefix's route in the site's table.

    `upstream_socket` (the lab's isp BIRD) adds a second verification: the upstream holds this
    site's route as announced (clean, prepended, or none), identified by the site's AS.
    """

    def __init__(
        self,
        group: str,
        site: str,
        steering: BgpSteering,
        *,
        upstream_socket: str | None = None,
        deadline_s: float = 5.0,
        poll_s: float = 0.01,
        transcript: Transcript | None = None,
    ) -> None:
        if site not in steering.sites:
            raise SteerError(f"group {group}: site {site!r} has no BGP settings")
        self.group = group
        self.site = site
        self.steering = steering
        self.bgp = steering.sites[site]
        self.upstream_socket = upstream_socket
        self.deadline_s = deadline_s
        self.poll_s = poll_s
        self.transcript = transcript
        self.epoch = 0
        self._ipr: Any = None
        self._local_as: int | None = None

    # --- the contract ----------------------------------------------------------------------

    def apply(
        self, state: GroupState, *, force: bool = False, deadline_s: float | None = None
    ) -> SteerResult:
        plan = bgp_plan(state, list(self.steering.sites), self.steering.backup)
        return self.announce(
            plan[self.site], state.epoch, plan=plan, force=force, deadline_s=deadline_s
        )

    def read(self) -> SteerResult:
        try:
            in_effect = self._in_effect(self._metrics(time.monotonic() + self.deadline_s))
        except (_Transient, OSError, NetlinkError) as exc:
            return self._result("withdrawn", "failed", f"cannot read the kernel table: {exc}")
        problem = self._check(in_effect)
        return self._result(in_effect, "unverified" if problem else "verified", problem or "")

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    # --- announcing ------------------------------------------------------------------------

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
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.deadline_s)
        if announcement == "withdrawn" and not force:
            problem = fail_open_problem(self.group, plan or {self.site: "withdrawn"})
            if problem:
                return self._refused(problem, deadline)
        try:
            changed = self._converge(announcement, deadline)
        except (_Transient, OSError, NetlinkError) as exc:
            return self._result(
                self._safe_in_effect(deadline),
                "failed",
                f"{self.site}: cannot change the kernel route: {exc}",
            )
        self.epoch = epoch
        problem = self._wait_for(announcement, deadline)
        return self._result(
            announcement, "unverified" if problem else "verified", problem or "", changed
        )

    def _refused(self, problem: str, deadline: float) -> SteerResult:
        return self._result(self._safe_in_effect(deadline), "refused", problem)

    def _converge(self, announcement: Announcement, deadline: float) -> bool:
        metrics = self._metrics(deadline)
        target = {
            "primary": self.steering.metric_primary,
            "held": self.steering.metric_held,
            "backup": self.steering.metric_backup,
        }.get(announcement)
        changed = False
        if target is None and self._in_effect(metrics) == "primary":
            # de-prefer before withdraw: the upstream moves to the other path first
            self._converge("backup", deadline)
            if self.transcript:
                self.transcript.record(f"{self.site} wait backup in effect")
            self._wait_for("backup", deadline)
            metrics, changed = self._metrics(deadline), True
        if target is not None and target not in metrics:
            self._route("add", target, deadline)
            changed = True
        for metric in sorted(metrics):
            if metric != target:
                self._route("del", metric, deadline)
                changed = True
        return changed

    # --- the kernel table ------------------------------------------------------------------

    def _netlink(self) -> Any:
        if self._ipr is None:
            self._ipr = IPRoute(netns=self.bgp.netns) if self.bgp.netns else IPRoute()
        return self._ipr

    def _retrying(self, deadline: float) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(5) | stop_after_delay(max(0.0, deadline - time.monotonic())),
            wait=wait_exponential(multiplier=0.02, max=0.5),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )

    def _metrics(self, deadline: float) -> set[int]:
        """The metrics of this prefix's routes in the site's table (normally one or none)."""
        network, _, length = self.steering.prefix.partition("/")
        for attempt in self._retrying(deadline):
            with attempt:
                try:
                    routes = self._netlink().route("dump", table=self.bgp.table)
                except (OSError, NetlinkError) as exc:
                    self.close()
                    raise _Transient(str(exc)) from exc
        return {
            int(route.get("priority") or 0)
            for route in routes
            if route.get("dst") == network
            and str(route.get("dst_len")) == length
            and route.get("table") == self.bgp.table
        }

    def _route(self, verb: str, metric: int, deadline: float) -> None:
        if self.transcript:
            self.transcript.record(
                f"{self.site} route {verb} {self.steering.prefix} "
                f"table {self.bgp.table} metric {metric}"
            )
        for attempt in self._retrying(deadline):
            with attempt:
                try:
                    self._netlink().route(
                        verb,
                        dst=self.steering.prefix,
                        table=self.bgp.table,
                        priority=metric,
                        proto=RTPROT_STATIC,
                        type="blackhole",
                    )
                except NetlinkError as exc:
                    if (verb, exc.code) in (("add", errno.EEXIST), ("del", errno.ESRCH)):
                        return
                    raise _Transient(f"route {verb}: {exc}") from exc
                except OSError as exc:
                    self.close()
                    raise _Transient(f"route {verb}: {exc}") from exc

    def _in_effect(self, metrics: set[int]) -> Announcement:
        if not metrics:
            return "withdrawn"
        best = min(metrics)
        if best < self.steering.metric_held:
            return "primary"
        return "held" if best < self.steering.metric_backup else "backup"

    def _safe_in_effect(self, deadline: float) -> Announcement:
        try:
            return self._in_effect(self._metrics(deadline))
        except (_Transient, OSError, NetlinkError):
            return "withdrawn"

    # --- verification ----------------------------------------------------------------------

    def _wait_for(self, announcement: Announcement, deadline: float) -> str | None:
        """Poll until BIRD (and the upstream) show `announcement`; the last problem if not."""
        while True:
            problem = self._check(announcement)
            if problem is None or time.monotonic() >= deadline:
                return problem
            time.sleep(self.poll_s)

    def _check(self, announcement: Announcement) -> str | None:
        try:
            return self._check_local(announcement) or self._check_upstream(announcement)
        except BirdError as exc:
            return str(exc)

    def _check_local(self, announcement: Announcement) -> str | None:
        socket_path, protocol = self.bgp.bird_socket, self.bgp.protocol
        prefix = self.steering.prefix
        if protocol is None:
            routes = [r for r in show_routes(socket_path, prefix) if r.metric is not None]
            metric = min((r.metric for r in routes if r.metric is not None), default=None)
            seen = self._in_effect(set() if metric is None else {metric})
            return None if seen == announcement else f"{self.site} BIRD holds {seen}"
        exported = show_routes(socket_path, prefix, export=protocol)
        seen = as_path_announcement(exported[0].as_path if exported else None)
        if seen != announcement:
            return f"{self.site} BIRD exports {prefix} to {protocol} as {seen}"
        state = protocol_state(socket_path, protocol)
        if state != "Established" and announcement != "withdrawn":
            return f"{self.site} BIRD session {protocol} is {state}"
        return None

    def _check_upstream(self, announcement: Announcement) -> str | None:
        if self.upstream_socket is None or self.bgp.protocol is None:
            return None
        if self._local_as is None:
            local_as = protocol_info(self.bgp.bird_socket, self.bgp.protocol).get("Local AS", "")
            if not local_as.isdigit():
                return f"{self.site} BIRD protocol {self.bgp.protocol} shows no local AS"
            self._local_as = int(local_as)
        ours = [
            r
            for r in show_routes(self.upstream_socket, self.steering.prefix)
            if r.as_path[:1] == (self._local_as,)
        ]
        seen = as_path_announcement(ours[0].as_path[1:] if ours else None)
        if seen != announcement:
            return f"upstream holds {self.site}'s route as {seen}"
        if announcement == "primary" and not ours[0].best:
            return f"upstream holds {self.site}'s route as primary but prefers another"
        return None

    def _result(
        self, announcement: Announcement, outcome: str, detail: str, changed: bool = False
    ) -> SteerResult:
        return SteerResult(
            group=self.group,
            site=self.site,
            epoch=self.epoch,
            announcement=announcement,
            outcome=outcome,  # type: ignore[arg-type]
            detail=detail,
            changed=changed,
        )


def as_path_announcement(path: tuple[int, ...] | None) -> Announcement:
    """An exported route's AS path (without the sender's own AS) -> what it announces."""
    if path is None:
        return "withdrawn"
    return "primary" if not path else "held" if len(path) == 1 else "backup"
