"""Steering convergence in the lab: from `apply()` to the isp's best route moving (BGP), and
to every authoritative name server answering the new records (DNS).

Builds a fresh lab (removing a running one), runs the trials, removes the lab. Needs root.
The last line printed is one JSON object:
{"bgp_converge_s": {"p50", "p99", "n"}, "dns_converge_s": {"p50", "p99", "n"}}
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import time

import dns.message
import dns.query

from failover.config import BgpSteering, DnsSteering
from failover.core.model import GroupState
from failover.lab import NAME_SERVERS, Lab
from failover.steer import BirdSteerer, Rfc2136Steerer
from failover.steer.netns import netns_socket
from failover.testing.lab import running_lab, unavailable

POLL_S = 0.001
LIMIT_S = 10.0


def summary(samples: list[float]) -> dict[str, float | int]:
    ordered = sorted(samples)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 4), "p99": round(p99, 4), "n": len(ordered)}


def bgp_trials(lab: Lab, trials: int) -> list[float]:
    steering = lab.config.groups["web"].steering
    assert isinstance(steering, BgpSteering)
    sites = {
        site: BirdSteerer("web", site, steering, upstream_socket=lab.bird_socket("isp"))
        for site in ("dc1", "dc2")
    }
    prefix = steering.prefix
    epoch, active = 1, "dc1"
    for site in ("dc2", "dc1"):
        sites[site].apply(GroupState("web", active=active, epoch=epoch))
    samples = []
    for _ in range(trials):
        old, new = active, "dc2" if active == "dc1" else "dc1"
        epoch += 1
        state = GroupState("web", active=new, epoch=epoch)
        start = time.perf_counter()
        sites[old].apply(state)  # demote first, then promote: the agents' order
        sites[new].apply(state)
        deadline = start + LIMIT_S
        while (route := lab.best_route(prefix)) is None or route.protocol != new:
            if time.perf_counter() > deadline:
                raise SystemExit(f"the isp's best route did not move to {new}")
            time.sleep(POLL_S)
        samples.append(time.perf_counter() - start)
        active = new
    for site in sites.values():
        site.close()
    return samples


def answers(server: str, name: str) -> set[str]:
    query = dns.message.make_query(name, "A")
    with netns_socket("fo-client", socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        reply = dns.query.udp(query, server, timeout=0.5, sock=sock)
    return {item.to_text() for rrset in reply.answer for item in rrset}


def dns_trials(lab: Lab, trials: int) -> list[float]:
    steering = lab.config.groups["mail"].steering
    assert isinstance(steering, DnsSteering)
    steer = Rfc2136Steerer("mail", steering, netns="fo-client")
    name = f"mail.{steering.zone}"
    samples = []
    for epoch in range(1, trials + 1):
        site = "dc2" if epoch % 2 else "dc1"
        want = set(steering.names["mail"][site])
        start = time.perf_counter()
        result = steer.apply(GroupState("mail", active=site, epoch=epoch))
        if result.outcome not in ("verified", "unverified"):
            raise SystemExit(f"DNS update {result.outcome}: {result.detail}")
        deadline = start + LIMIT_S
        while any(answers(server, name) != want for server in NAME_SERVERS.values()):
            if time.perf_counter() > deadline:
                raise SystemExit("the name servers did not converge")
            time.sleep(POLL_S)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="trials per method (>= 20)")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"steering benchmark: {reason}", file=sys.stderr)
        raise SystemExit(2)
    with running_lab() as lab:
        bgp = bgp_trials(lab, args.trials)
        dns_samples = dns_trials(lab, args.trials)
    result = {"bgp_converge_s": summary(bgp), "dns_converge_s": summary(dns_samples)}
    print(
        f"bgp: max {max(bgp):.4f} s; dns: max {max(dns_samples):.4f} s "
        f"(goals: bgp p99 <= 0.5 s, dns p99 <= 1.0 s)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
