"""`icmp` checks: one echo request (icmplib).

icmplib is small, typed by its docs and maintained; it speaks both raw ICMP sockets (root) and
the kernel's unprivileged ICMP datagram sockets (allowed by `net.ipv4.ping_group_range`), and
matches replies by id and sequence, which is the fiddly part of writing it by hand.
"""

from __future__ import annotations

import os

import icmplib

from failover.config.model import IcmpCheck
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext


class IcmpProbe(Probe):
    """Send one echo request; a reply is a pass. Raw sockets as root, datagram ones otherwise."""

    def __init__(
        self, check: IcmpCheck, context: ProbeContext, privileged: bool | None = None
    ) -> None:
        self.check = check
        self.privileged = os.geteuid() == 0 if privileged is None else privileged

    async def run(self, endpoint: str) -> CheckResult:
        try:
            host = await icmplib.async_ping(
                endpoint, count=1, timeout=self.check.timeout_s, privileged=self.privileged
            )
        except icmplib.SocketPermissionError:
            return CheckResult(
                False,
                reason="no permission for ICMP sockets (run as root or allow this group in "
                "net.ipv4.ping_group_range)",
            )
        except icmplib.NameLookupError:
            return CheckResult(False, reason=f"cannot resolve {endpoint}")
        except icmplib.ICMPLibError as exc:
            return CheckResult(False, reason=f"ICMP error for {endpoint}: {exc}")
        if not host.is_alive:
            return CheckResult(False, reason=f"no echo reply from {endpoint}")
        return CheckResult(True, reason=f"echo reply from {endpoint} in {host.avg_rtt:.1f} ms")
