"""A planned switchover in the lab, as clients see it: graceful against abrupt.

Builds the full stack (`failover.lab.stack.Stack`), then runs clients from the lab's client
namespace while an operator switches over, and then takes the old site down for maintenance
(its front door and its mail server stop), as a planned switchover is for:

- `http`: a new connection per request through the front door (the BGP prefix), every 20 ms;
- `kept_alive`: one HTTP/1.1 connection kept open through the front door, a request every
  100 ms; a request that fails on a reused connection is retried once on a new one, as
  browsers do (RFC 9112 9.3.1); each reset connection is counted (`kept_alive_resets`);
- `dns`: a stub resolver that honours TTLs (dnspython's Resolver with its Cache, asking the
  two authoritative servers) resolves the DNS group's name every 100 ms and talks SMTP to the
  address it got (banner, QUIT).

Run 1, graceful: `failover switchover --to dc2 --graceful --at +TTL+3s --wait`; when it returns
(the plan ended: TTL back) dc1's front and mail stop, and the clients run one more TTL.
Run 2, abrupt: dc1 repaired, `failover switchover --to dc1 --abrupt --wait`; when it returns
(applied and verified) dc2's front and mail stop, and the clients run one more TTL.

`dns_stale_answers_after_t_s`: how long after every authoritative server answered the new
site the resolver still returned the old one (its cache). Needs root; removes the lab after.

The last line printed is one JSON object: the graceful run's {"requests", "failed",
"dns_stale_answers_after_t_s", ...}, with the abrupt run under "abrupt".
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import sys
import threading
import time
from typing import Any

import dns.exception
import dns.resolver

from failover.config import DnsSteering
from failover.lab.sites import FRONT_PORT
from failover.lab.stack import DNS_ERRORS, Stack
from failover.lab.topology import NAME_SERVERS, netns
from failover.steer.netns import enter_netns, netns_socket
from failover.testing.lab import unavailable

CLIENT = netns("client")


class Clients:
    """The client loops, and what each request got: (monotonic time, ok, site or error)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        steering = stack.config.groups[stack.dns_group].steering
        assert isinstance(steering, DnsSteering)
        name, per_site = next(iter(steering.names.items()))
        self.fqdn = name if name.endswith(".") else f"{name}.{steering.zone}"
        self.site_of = {a: s for s, addresses in per_site.items() for a in addresses}
        self.http: list[tuple[float, bool, str]] = []
        self.kept: list[tuple[float, bool, str]] = []
        self.dns: list[tuple[float, bool, str]] = []
        self.resets = 0
        self.authoritative: list[tuple[float, str | None]] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=loop, daemon=True)
            for loop in (self._http, self._kept, self._dns, self._authoritative)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    # --- the loops ---------------------------------------------------------------------------

    def _http(self) -> None:
        while not self.stop.wait(0.02):
            self.http.append(self._get(None))

    def _kept(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stop.wait(0.1):
            if conn is not None:
                outcome = self._get(conn)
                if outcome[1]:
                    self.kept.append(outcome)
                    continue
                self.resets += 1
                conn.close()
            conn = self._connect()  # a new connection, and the request retried on it once
            self.kept.append(self._get(conn) if conn else (time.monotonic(), False, "connect"))

    def _connect(self) -> http.client.HTTPConnection | None:
        conn = http.client.HTTPConnection(self.stack.front, FRONT_PORT, timeout=1.0)
        sock = netns_socket(CLIENT, socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(1.0)
        try:
            sock.connect((self.stack.front, FRONT_PORT))
        except OSError:
            sock.close()
            return None
        conn.sock = sock
        return conn

    def _get(self, conn: http.client.HTTPConnection | None) -> tuple[float, bool, str]:
        own = conn is None
        at = time.monotonic()
        try:
            conn = conn or self._connect()
            if conn is None:
                return at, False, "connect"
            conn.request("GET", "/", headers={"Host": "front"})
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            if response.status != 200:
                return at, False, f"status {response.status}"
            return at, True, "dc1" if "dc1" in body else "dc2" if "dc2" in body else body[:20]
        except (OSError, http.client.HTTPException) as exc:
            return at, False, type(exc).__name__
        finally:
            if own and conn is not None:
                conn.close()

    def _dns(self) -> None:
        enter_netns(CLIENT)  # this thread, for good: the resolver's and SMTP's sockets
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(NAME_SERVERS.values())
        resolver.cache = dns.resolver.Cache()
        resolver.lifetime = 1.0
        while not self.stop.wait(0.1):
            at = time.monotonic()
            try:
                address = next(iter(resolver.resolve(self.fqdn, "A"))).to_text()
            except dns.exception.DNSException as exc:
                self.dns.append((at, False, type(exc).__name__))
                continue
            site = self.site_of.get(address, address)
            try:
                with socket.create_connection((address, 25), timeout=1.0) as sock:
                    sock.settimeout(1.0)
                    banner = sock.recv(512)
                    sock.sendall(b"QUIT\r\n")
                    bye = sock.recv(512)
                ok = banner.startswith(b"220") and bye.startswith(b"221")
                self.dns.append((at, ok, site if ok else f"{site}: {banner[:20]!r}"))
            except OSError as exc:
                self.dns.append((at, False, f"{site}: {type(exc).__name__}"))

    def _authoritative(self) -> None:
        while not self.stop.wait(0.1):
            with contextlib.suppress(*DNS_ERRORS):
                self.authoritative.append((time.monotonic(), self.stack.dns_site()))

    # --- the figures -------------------------------------------------------------------------

    def summary(self, old: str, new: str) -> dict[str, Any]:
        switched = next((t for t, site in self.authoritative if site == new), None)
        stale = [t for t, ok, site in self.dns if site.startswith(old)]
        stale_s = (
            0.0 if switched is None or not stale else round(max(0.0, max(stale) - switched), 2)
        )
        loops = {"http": self.http, "kept_alive": self.kept, "dns": self.dns}
        failed = {name: sum(1 for _, ok, _ in got if not ok) for name, got in loops.items()}
        errors: dict[str, int] = {}
        for got in loops.values():
            for _, ok, what in got:
                if not ok:
                    errors[what] = errors.get(what, 0) + 1
        return {
            "requests": sum(len(got) for got in loops.values()),
            "failed": sum(failed.values()),
            "dns_stale_answers_after_t_s": stale_s,
            "failed_by_client": failed,
            "requests_by_client": {name: len(got) for name, got in loops.items()},
            "kept_alive_resets": self.resets,
            "errors": errors,
        }


def switchover(
    stack: Stack, old: str, new: str, graceful: bool, ttl_s: int, tail_s: float
) -> dict[str, Any]:
    clients = Clients(stack)
    clients.start()
    try:
        time.sleep(2.0)  # the clients settle on the old site
        started = time.monotonic()
        args = ["switchover", "--to", new, "--reason", "planned maintenance", "--wait"]
        args += ["--graceful", "--at", f"+{ttl_s + 3}s"] if graceful else ["--abrupt"]
        done = stack.cli(*args, timeout_s=4 * ttl_s + 120)
        if done.returncode != 0:
            raise SystemExit(f"switchover failed: {done.stdout}{done.stderr}")
        took_s = time.monotonic() - started
        print(
            f"{'graceful' if graceful else 'abrupt'} switchover to {new}: {took_s:.1f} s",
            file=sys.stderr,
        )
        maintenance = stack.sites[old]  # what the switchover was for: the old site goes down
        assert maintenance.front is not None
        maintenance.front.stop()
        stack.stop_service(old, "mail")
        time.sleep(tail_s)
    finally:
        clients.finish()
    figures = clients.summary(old, new)
    figures["operator_s"] = round(took_s, 1)
    stack.start_service(old, "mail")
    maintenance.front.start()
    return figures


def run(ttl_s: int, short_s: int, drain_s: float) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "policy": {
            "cooldown_s": 0,
            "max_switches_per_hour": 100,
            "graceful_ttl_s": short_s,
            "drain_s": drain_s,
        },
        "groups": {"mail": {"steering": {"ttl": ttl_s}}},
    }
    stack = Stack(overrides, agents_first=True)
    try:
        stack.up()
        stack.wait_healthy(timeout_s=60.0)
        stack.wait_steady("dc1", 60.0)
        graceful = switchover(stack, "dc1", "dc2", True, ttl_s, ttl_s + 3)
        stack.wait_healthy(timeout_s=60.0)
        abrupt = switchover(stack, "dc2", "dc1", False, ttl_s, ttl_s + 3)
    except Exception:
        print(stack.log_tails(), file=sys.stderr)
        raise
    finally:
        stack.down()
    return {
        **graceful,
        "ttl_s": ttl_s,
        "graceful_ttl_s": short_s,
        "drain_s": drain_s,
        "abrupt": abrupt,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ttl", type=int, default=20, help="the DNS group's configured TTL")
    parser.add_argument("--short-ttl", type=int, default=2, help="policy.graceful_ttl_s")
    parser.add_argument("--drain", type=float, default=5.0, help="policy.drain_s")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        raise SystemExit(f"cannot run the lab here: {reason}")
    print(json.dumps(run(args.ttl, args.short_ttl, args.drain)))


if __name__ == "__main__":
    main()
