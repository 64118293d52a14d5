"""`tcp` checks: connect, optionally send a string and expect one back (firewall pass-through)."""

from __future__ import annotations

import asyncio
import contextlib

from failover.config.model import TcpCheck, split_host_port
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext

READ_LIMIT = 64 * 1024


class TcpProbe(Probe):
    def __init__(self, check: TcpCheck, context: ProbeContext) -> None:
        self.check = check
        self.send = check.send.encode() if check.send is not None else None
        self.expect = check.expect.encode() if check.expect is not None else None

    async def run(self, endpoint: str) -> CheckResult:
        host, port = split_host_port(endpoint)
        reader, writer = await asyncio.open_connection(host, port, limit=READ_LIMIT)
        try:
            if self.send:
                writer.write(self.send)
                await writer.drain()
            if self.expect is None:
                return CheckResult(True, reason=f"connected to {endpoint}")
            received = b""
            while self.expect not in received:
                chunk = await reader.read(4096)
                if not chunk:
                    return CheckResult(
                        False,
                        reason=f"{endpoint} closed the connection before sending "
                        f"{self.check.expect!r}",
                    )
                received += chunk
                if len(received) > READ_LIMIT:
                    return CheckResult(
                        False, reason=f"{endpoint} did not send {self.check.expect!r}"
                    )
            return CheckResult(True, reason=f"{endpoint} answered {self.check.expect!r}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
