"""`failover demo`: the whole system in the lab, end to end, in readable steps.

Builds the lab with ZooKeeper, real services and three supervised daemons; shows the status;
stops dc1's database; follows the isp's best route and the name servers' answers until the
traffic is on dc2 and prints how long it took; repairs the database and switches back by hand
with `failover switchover`; tears everything down. Daemon logs stay in files under the run
dir; their tails are printed when something fails.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from failover.config import BgpSteering
from failover.lab.stack import Stack

FAULT_SITE = "dc1"
FAULT_SERVICE = "db"


@dataclass
class Timeline:
    """What the demo saw change, with times from the fault."""

    fault_at: float
    bgp_s: float | None = None
    dns_s: float | None = None
    changes: list[str] = field(default_factory=list)


class Demo:
    def __init__(self, stack: Stack | None = None, echo: Callable[[str], None] = print) -> None:
        self.stack = stack or Stack()
        self.echo = echo
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    def heading(self, text: str) -> None:
        self.echo("")
        self.echo(f"== {text}")

    def show_cli(self, *args: str) -> bool:
        self.echo(f"$ failover {shlex.join(args)}")
        done = self.stack.cli(*args)
        for line in (done.stdout + done.stderr).rstrip().splitlines():
            self.echo(f"  {line}")
        return done.returncode == 0

    def traffic(self) -> str:
        route = self.stack.route()
        answers = self.stack.dns_answers()
        where = f"via {route[0]} ({route[1]})" if route else "none"
        names = ", ".join(f"{role} {' '.join(a) or '-'}" for role, a in answers.items())
        return (
            f"isp best route {self.stack.prefix}: {where}; DNS answers: {names}; "
            f"client GET http://{self.stack.front}/: {self.stack.client_get()}"
        )

    # --- the scenario --------------------------------------------------------------------------

    def run(self) -> int:
        stack = self.stack
        config = stack.config
        try:
            self.heading("building the lab: network, ZooKeeper, services, daemons")
            stack.up(say=self.say)
            self.say(
                f"steady: every group on {config.preferred_site(stack.bgp_group)}, "
                f"leader {stack.leader()}"
            )
            self.say(self.traffic())
            for name, group in config.groups.items():
                steering = group.steering
                how = (
                    f"BGP {steering.prefix}"
                    if isinstance(steering, BgpSteering)
                    else f"DNS {', '.join(steering.names)} in {steering.zone}"
                )
                self.echo(f"  group {name}: {how}; needs {', '.join(group.services)}")

            with contextlib.suppress(TimeoutError):  # a quieter status: every vote decided
                stack.wait_healthy(timeout_s=15.0, every_vote=True)
            self.heading("status")
            self.show_cli("status")

            timeline = self.fault()
            self.heading("why: the audit trail")
            self.show_cli("history", "--limit", "8")

            self.heading(
                f"repair: {FAULT_SITE}'s database starts again "
                f"(failback is {config.policy.failback}: nothing moves by itself)"
            )
            stack.start_service(FAULT_SITE, FAULT_SERVICE)
            took = stack.wait_healthy([FAULT_SITE])
            self.say(
                f"{FAULT_SITE} healthy again after {took:.1f} s; traffic stays: {self.traffic()}"
            )

            self.heading("switch back by hand")
            if not self.show_cli(
                "switchover",
                "--to",
                FAULT_SITE,
                "--reason",
                "demo: database repaired",
                "--wait",
                "--timeout",
                "60s",
            ):
                raise RuntimeError("the switchover back failed")
            stack.wait_steady(FAULT_SITE, 20.0)
            self.say(self.traffic())

            self.heading("result")
            self.report(timeline)
            return 0
        except Exception as exc:
            self.echo("")
            self.echo(f"demo FAILED: {type(exc).__name__}: {exc}")
            self.echo("--- log tails ---")
            self.echo(stack.log_tails())
            return 1
        finally:
            self.heading("teardown")
            removed = stack.down()
            self.say(f"removed {len(removed)} things: namespaces, processes, run files")
            self.say(f"done in {time.monotonic() - self.started:.0f} s")

    def fault(self) -> Timeline:
        stack = self.stack
        other = next(s for s in stack.config.serving_sites if s != FAULT_SITE)
        check = stack.config.sites[FAULT_SITE].services[FAULT_SERVICE].check
        bound = check.interval_s * (check.fall - 1) + check.timeout_s
        hold_down = stack.config.policy.hold_down_s
        self.heading(f"the fault: {FAULT_SITE}'s database (PostgreSQL) stops")
        self.echo(
            f"  detection within {bound:g} s (interval {check.interval_s:g} s x "
            f"(fall {check.fall} - 1) + timeout {check.timeout_s:g} s), then hold-down "
            f"{hold_down:g} s, then {FAULT_SITE} demoted before {other} is promoted"
        )
        stack.stop_service(FAULT_SITE, FAULT_SERVICE)
        timeline = Timeline(time.monotonic())
        self.say(f"stopped {FAULT_SITE}'s database")
        last_route = stack.route()
        last_dns = stack.dns_answers()
        last_answer = stack.client_get()
        deadline = timeline.fault_at + 60.0
        while timeline.bgp_s is None or timeline.dns_s is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"traffic did not move to {other} within 60 s: {stack.describe()}"
                )
            route, answers = stack.route(), stack.dns_answers()
            now = time.monotonic() - timeline.fault_at
            if route != last_route:
                where = f"via {route[0]} ({route[1]})" if route else "none"
                self.say(f"isp best route {stack.prefix}: {where}")
                last_route = route
                if route == (other, "primary") and timeline.bgp_s is None:
                    timeline.bgp_s = now
            answer = stack.client_get()
            if answer != last_answer:
                self.say(f"client GET http://{stack.front}/: {answer}")
                last_answer = answer
            if answers != last_dns:
                names = ", ".join(f"{role} {' '.join(a) or '-'}" for role, a in answers.items())
                self.say(f"DNS answers: {names}")
                last_dns = answers
                if stack.dns_site(answers) == other and timeline.dns_s is None:
                    timeline.dns_s = now
            time.sleep(0.02)
        stack.wait_steady(other, 30.0)
        epochs = ", ".join(
            f"{g} epoch {s.epoch}"
            for g in stack.config.groups
            if (s := stack.desired(g)) is not None
        )
        self.say(f"steady on {other} ({epochs}), applied and verified by both sites")
        self.echo(
            f"  measured failover: BGP {timeline.bgp_s:.2f} s, DNS {timeline.dns_s:.2f} s "
            "after the fault"
        )
        return timeline

    def report(self, timeline: Timeline) -> None:
        check = self.stack.config.sites[FAULT_SITE].services[FAULT_SERVICE].check
        bound = check.interval_s * (check.fall - 1) + check.timeout_s
        hold_down = self.stack.config.policy.hold_down_s
        self.echo(f"  fault: {FAULT_SITE}'s database stopped")
        self.echo(f"  BGP: the isp's best route via the other site after {timeline.bgp_s:.2f} s")
        self.echo(f"  DNS: both name servers answering the other site after {timeline.dns_s:.2f} s")
        self.echo(
            f"  (detection takes at most {bound:g} s, then the hold-down {hold_down:g} s: "
            f"steering starts within {bound + hold_down:g} s of the fault)"
        )
        self.echo("  switched back to dc1 by hand with `failover switchover`")
