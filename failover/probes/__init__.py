"""Asynchronous health checks, one module per protocol, and the scheduler that runs them.

async with ProbeContext() as context:
    results = await run_once(targets_of(config), context=context)

scheduler = ProbeScheduler(targets_of(config), on_result)   # on_result(key, state, result)
await scheduler.run()                                       # until scheduler.stop()
"""

from __future__ import annotations

from failover.probes.base import Probe, ProbeContext, explain
from failover.probes.runner import ProbeTarget, make_probe, run_check, run_once, targets_of
from failover.probes.scheduler import Clock, LoopClock, ProbeScheduler, ResultCallback

__all__ = [
    "Clock",
    "LoopClock",
    "Probe",
    "ProbeContext",
    "ProbeScheduler",
    "ProbeTarget",
    "ResultCallback",
    "explain",
    "make_probe",
    "run_check",
    "run_once",
    "targets_of",
]
