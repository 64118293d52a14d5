"""`command` checks: a Nagios plugin.

Exit 0 is OK and 1 WARNING: both pass (the service serves, perhaps degraded; the reason says
WARNING). 2 CRITICAL, 3 UNKNOWN and anything else fail. The first line of output (without
performance data after `|`) is the reason. The plugin runs in its own process group, and a
timeout or a cancelled probe kills that whole group, grandchildren included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from failover.config.model import CommandCheck
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext, first_line

STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
OUTPUT_LIMIT = 64 * 1024


class CommandProbe(Probe):
    def __init__(self, check: CommandCheck, context: ProbeContext) -> None:
        self.check = check

    def timeout_reason(self, endpoint: str, timeout_s: float) -> str:
        return f"plugin did not finish within {timeout_s:g} s; its process group was killed"

    async def run(self, endpoint: str) -> CheckResult:
        argv = self.check.command
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return CheckResult(False, reason=f"cannot run {argv[0]}: {exc.strerror}")
        finished = False
        try:
            assert process.stdout is not None
            output = b""
            while chunk := await process.stdout.read(65536):
                if len(output) < OUTPUT_LIMIT:
                    output += chunk
            code = await process.wait()
            finished = True
        finally:
            if not finished:
                await _kill_group(process)
        return judge(code, output.decode(errors="replace"))


def judge(code: int, output: str) -> CheckResult:
    """A plugin's exit code and output -> a result (WARNING passes, see the module doc)."""
    line = first_line(output.split("\n", 1)[0].split("|", 1)[0])
    status = STATUS.get(code)
    if code < 0:
        label = f"killed by signal {-code}"
    else:
        label = status if status is not None else f"exit {code}"
    reason = line or f"plugin exited {code} ({label})"
    if status == "WARNING" and "WARN" not in reason.upper():
        reason = f"WARNING: {reason}"
    return CheckResult(code in (0, 1), reason=reason)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), 5.0)
