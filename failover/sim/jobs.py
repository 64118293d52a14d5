"""The leader's DNS worker in the simulated world: each job runs as an event, `apply_s` after
it was submitted, while its process lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from failover.daemon.leader import Job

if TYPE_CHECKING:
    from failover.sim.control import Process


class SimJob:
    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False

    def done(self) -> bool:
        return self.finished


class SimWorker:
    """The leader's DNS worker: a job runs `apply_s` after it was submitted, while its process
    lives (a frozen process finishes it once it runs again; a dead one never)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.jobs: list[SimJob] = []

    def submit(self, fn: Callable[..., None], /, *args: Any) -> Job:
        job = SimJob()
        self.jobs.append(job)
        world = self.process.world
        world.after(world.model.steering.apply_s, self._run, (job, fn, args))
        return job

    def _run(self, arg: tuple[SimJob, Callable[..., None], tuple[Any, ...]]) -> None:
        job, fn, args = arg
        if job.finished:
            return
        process = self.process
        if process.alive and process.daemon.paused:
            process.world.after(process.world.model.steering.apply_s, self._run, arg)
            return
        if process.alive:
            fn(*args)
        job.finished = True
        self.jobs.remove(job)

    def close(self) -> None:
        for job in self.jobs:
            job.finished = True
        self.jobs.clear()
