"""Running checks: which targets a config has, one check with its hard timeout, all of them once."""

from __future__ import annotations

import asyncio
import importlib
import os
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from failover.config.model import (
    CheckBase,
    CommandCheck,
    Config,
    DnsCheck,
    HttpCheck,
    IcmpCheck,
    PostgresCheck,
    SmtpCheck,
    TcpCheck,
)
from failover.core.model import CheckResult, target_key
from failover.probes.base import Probe, ProbeContext, explain


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One probed thing: a service's endpoint at a site, and the check that probes it."""

    site: str
    service: str
    kind: str
    endpoint: str
    check: CheckBase

    @property
    def check_type(self) -> str:
        return str(getattr(self.check, "type", type(self.check).__name__))

    @property
    def key(self) -> str:
        return target_key(self.site, self.service, self.endpoint)


def targets_of(config: Config, sites: Iterable[str] | None = None) -> list[ProbeTarget]:
    """Every target of every service of every (or the named) site, in config order."""
    wanted = set(sites) if sites is not None else None
    return [
        ProbeTarget(site_name, service_name, service.kind, endpoint, service.check)
        for site_name, site in config.sites.items()
        if wanted is None or site_name in wanted
        for service_name, service in site.services.items()
        for endpoint in service.targets()
    ]


class BrokenProbe(Probe):
    """A check that could not be set up (its CA file is missing, say): every run says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def run(self, endpoint: str) -> CheckResult:
        return CheckResult(False, reason=self.reason)


def make_probe(check: CheckBase, context: ProbeContext) -> Probe:
    """The probe for a check's type; a `BrokenProbe` naming the problem if it cannot be built."""
    try:
        return _make_probe(check, context)
    except (OSError, ssl.SSLError, ValueError) as exc:
        what = (
            f"{exc.strerror}: {exc.filename}"
            if isinstance(exc, OSError) and exc.strerror
            else str(exc)
        )
        return BrokenProbe(f"cannot set up the {getattr(check, 'type', 'check')} check: {what}")


# check type -> (module under failover.probes, class); imported on first use
_PROBES: dict[type[CheckBase], tuple[str, str]] = {
    HttpCheck: ("http", "HttpProbe"),
    TcpCheck: ("tcp", "TcpProbe"),
    SmtpCheck: ("smtp", "SmtpProbe"),
    PostgresCheck: ("postgres", "PostgresProbe"),
    DnsCheck: ("dns", "DnsProbe"),
    IcmpCheck: ("icmp", "IcmpProbe"),
    CommandCheck: ("command", "CommandProbe"),
}


def _make_probe(check: CheckBase, context: ProbeContext) -> Probe:
    try:
        module, name = _PROBES[type(check)]
    except KeyError:
        raise TypeError(f"no probe for {type(check).__name__}") from None
    kind: type[Probe] = getattr(importlib.import_module(f"failover.probes.{module}"), name)
    return kind(check, context)  # type: ignore[call-arg]


async def run_check(probe: Probe, check: CheckBase, endpoint: str) -> CheckResult:
    """Probe once under the check's hard timeout; never raises (but for cancellation).

    A present `disable_file` fails the check without probing (maintenance). The latency is
    wall time from the start of the probe to its outcome, whatever the outcome.
    """
    if check.disable_file is not None and os.path.exists(check.disable_file):
        return CheckResult(False, 0.0, f"disabled by {check.disable_file}")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout_s):
            result = await probe.run(endpoint)
    except TimeoutError:
        reason = probe.timeout_reason(endpoint, check.timeout_s)
        return CheckResult(False, time.perf_counter() - started, reason)
    except Exception as exc:  # every failure becomes a reason; a probe must not stop the loop
        return CheckResult(False, time.perf_counter() - started, explain(exc, endpoint))
    return replace(result, latency_s=time.perf_counter() - started)


async def run_once(
    targets: list[ProbeTarget], concurrency: int = 64, context: ProbeContext | None = None
) -> list[CheckResult]:
    """Every target once, at most `concurrency` at a time; results in the targets' order."""
    slots = asyncio.Semaphore(concurrency)
    own = context is None
    context = context or ProbeContext()
    probes: dict[int, Probe] = {}

    async def one(target: ProbeTarget) -> CheckResult:
        probe = probes.get(id(target.check))
        if probe is None:
            probe = probes[id(target.check)] = make_probe(target.check, context)
        async with slots:
            return await run_check(probe, target.check, target.endpoint)

    try:
        return list(await asyncio.gather(*(one(target) for target in targets)))
    finally:
        if own:
            await context.close()
