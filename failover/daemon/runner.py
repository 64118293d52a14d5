"""`failover run`: one asyncio process per instance, with the observer, leader and agent roles.

The loop wakes on coordinator watches, on verdict changes and on the core's timers, and at
least every `cycle_s`. Coordinator and steering calls are blocking and bounded: they run in a
worker thread so that probes, the API and the watchdog keep going. The observer's verdicts
are published by a worker of their own beside the cycle (one publish at a time), so that a
large publish does not delay decisions; the coordinator is called from several threads.
SIGTERM releases the leadership at once and leaves steering as it is (the supervisor's stop
hook demotes); SIGHUP reloads a valid config or keeps the old one and says why, between two
cycles.

The watchdog is fed after each cycle that completed (so a cycle stuck in a blocking call is
killed by the supervisor), while the probe loop runs, and, while a primary stands on its lease
alone, only as long as `core.agent.keep_alive_until` allows: a stale primary then ends within
the bound the leader waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from failover import __version__
from failover.api.metrics import DaemonMetrics
from failover.config import BgpSteering, Config, ConfigError, DnsSteering, load_config
from failover.coord import (
    Coordinator,
    CoordinatorError,
    Leadership,
    Member,
)
from failover.daemon.agent import Agent
from failover.daemon.leader import Leader
from failover.daemon.notify import Notifier
from failover.daemon.observer import Observer, Verdicts
from failover.daemon.roles import Cycle
from failover.steer.base import Steerer
from failover.steer.bird import BirdSteerer

log = logging.getLogger("failover.daemon")
SWITCH_INTERVAL_S = 0.0005
# The collector's thresholds (CPython's default: 700, 10, 10). A leader of 1,000 checks per
# observer allocates thousands of objects a cycle; at the defaults the collections that
# follow, full ones walking the whole heap, took a leader cycle from 8 ms to 30-170 ms (same
# data, no I/O). Refcounting frees nearly everything here; cycles are still collected.
GC_THRESHOLDS = (50_000, 20, 100)
SLOW_CYCLE_S = 0.1  # a cycle this long is logged with where its time went (at most every 10 s)


def make_coordinator(config: Config, instance: str) -> Coordinator:
    """The daemon's ZooKeeper client. One call waits at most a third of the watchdog (and
    never longer than the session timeout), so that a cycle during a ZooKeeper fail-over
    ends, and feeds the watchdog, instead of being killed as stuck."""
    from failover.coord.zktimeouts import call_timeout_s
    from failover.coord.zookeeper import ZooKeeperCoordinator

    op_timeout_s = call_timeout_s(
        config.cluster.zookeeper.session_timeout_s, config.cluster.daemon.watchdog_s
    )
    return ZooKeeperCoordinator.from_config(
        config, instance, clock=time.time, op_timeout_s=op_timeout_s
    )


def dns_steerers(config: Config) -> dict[str, Steerer]:
    from failover.steer.dns import Rfc2136Steerer

    return {
        group: Rfc2136Steerer(group, g.steering)
        for group, g in config.groups.items()
        if isinstance(g.steering, DnsSteering)
    }


def bgp_steerers(config: Config, site: str) -> dict[str, BirdSteerer]:
    return {
        group: BirdSteerer(group, site, _local(g.steering, site))
        for group, g in config.groups.items()
        if isinstance(g.steering, BgpSteering) and site in g.steering.sites
    }


def _local(steering: BgpSteering, site: str) -> BgpSteering:
    """The steering without the site's `netns` when this process already lives in it.

    pyroute2 enters another namespace through a forked helper; a helper forked from the
    daemon shares the asyncio loop's signal wake-up socket, and the signal that ends it
    reaches the daemon's loop as a SIGTERM of its own (the daemon stopped at its first cycle).
    """
    bgp = steering.sites[site]
    if bgp.netns is None:
        return steering
    try:
        mine, there = os.stat("/proc/self/ns/net"), os.stat(f"/run/netns/{bgp.netns}")
    except OSError:
        return steering
    if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
        return steering
    sites = {**steering.sites, site: bgp.model_copy(update={"netns": None})}
    return steering.model_copy(update={"sites": sites})


class Daemon:
    def __init__(
        self,
        config: Config,
        instance: str,
        config_path: str | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.config_path = config_path
        self.instance = instance
        self.coordinator = coordinator or make_coordinator(config, instance)
        self.notifier = Notifier()
        self.wake = asyncio.Event()
        self.stopping = False
        self.reload_requested = False
        self.clock_offset_s = 0.0  # testing only: how far off this site's wall clock is
        self.started_at = time.time()
        self.cycles = 0
        self.phases: dict[str, float] = {}  # the last cycle's seconds per part
        self.last_publish_s = 0.0  # how long the last publish (beside the cycle) took
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")
        self._publish_job: Future[None] | None = None
        self._wake_from_thread: Callable[[], None] | None = None
        self.slow_reported_at = 0.0
        self.last_error = ""
        self.metrics = DaemonMetrics(instance, config.instances[instance].site)
        self._configure(config)

    # --- configuration -------------------------------------------------------------------

    def _configure(self, config: Config) -> None:
        self._install(config, self._roles(config))

    def _roles(self, config: Config) -> tuple[Leader | None, Agent | None, Observer | None]:
        """The roles `config` gives this instance, built without touching the running ones
        (a secret file that cannot be read, or a steerer that cannot be made, raises here)."""
        roles = tuple(config.instances[self.instance].roles)
        site = config.instances[self.instance].site
        leader = Leader(config, dns_steerers(config)) if "leader" in roles else None
        try:
            record_dir = config.cluster.daemon.record_dir
            if leader is not None and record_dir:
                from failover.record.log import Recorder

                leader.recorder = Recorder(config, self.instance, record_dir)
            agent = (
                Agent(config, site, bgp_steerers(config, site))
                if "agent" in roles and site in config.serving_sites
                else None
            )
            observer = (
                Observer(config, self.instance, self.wake.set) if "observer" in roles else None
            )
        except BaseException:
            if leader is not None:
                leader.close()
            raise
        return leader, agent, observer

    def _install(
        self, config: Config, roles: tuple[Leader | None, Agent | None, Observer | None]
    ) -> None:
        """Swap in a whole new set of roles at once (between cycles)."""
        self.config = config
        placed = config.instances[self.instance]
        self.site = placed.site
        self.roles = tuple(placed.roles)
        self.member = Member(self.instance, self.site, __version__, self.roles, self.started_at)
        self.leader, self.agent, self.observer = roles
        self.cycle = Cycle(
            self.coordinator,
            self.member,
            self.leader,
            self.agent,
            publish=self._publish_due,
            problem=self._problem,
        )
        self.metrics.recorder = self.leader.recorder if self.leader is not None else None
        if self.observer is not None:
            self.observer.on_result = self.metrics.probe
            self.observer.on_lag = self.metrics.probe_lag

    def request_reload(self) -> None:
        """SIGHUP: reload between two cycles, never while a cycle uses the roles."""
        self.reload_requested = True
        self.wake.set()

    async def reload(self) -> None:
        """All or nothing: the new config is read and checked off the event loop, its roles
        built beside the running ones, and only then swapped in; any problem keeps the old
        config whole and says why."""
        self.reload_requested = False
        if not self.config_path:
            return
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error(f"reload refused, keeping the old config: {exc}")
            return
        if self.instance not in config.instances:
            log.error(
                f"reload refused, keeping the old config: {self.config_path}: "
                f"instances: no instance {self.instance!r}"
            )
            return
        from failover.config.secret_files import secret_file_problems

        errors, _ = await asyncio.to_thread(secret_file_problems, config)
        if errors:
            log.error("reload refused, keeping the old config: " + "; ".join(errors))
            return
        try:
            roles = self._roles(config)
        except Exception as exc:  # a steerer or recorder the new config cannot make
            log.error(f"reload refused, keeping the old config: {type(exc).__name__}: {exc}")
            return
        old_observer, old_leader, old_agent = self.observer, self.leader, self.agent
        self._install(config, roles)
        if old_observer is not None:
            await old_observer.stop()
        if old_leader is not None:
            old_leader.close()
        if old_agent is not None:
            old_agent.close()
        if self.observer is not None:
            self.observer.start()
        log.info("config reloaded", extra={"fields": {"path": self.config_path}})
        self.wake.set()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> int:
        # The cycle waits on ZooKeeper answers that kazoo's thread receives: each answer
        # changes hands twice under the GIL. With the probe loop busy, the default 5 ms switch
        # interval made every round trip cost up to 10 ms (100 groups: cycles of 0.2 s).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        gc.set_threshold(*GC_THRESHOLDS)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

        def wake_from_thread() -> None:
            loop.call_soon_threadsafe(self.wake.set)

        def wake(_topic: str) -> None:
            wake_from_thread()

        self._wake_from_thread = wake_from_thread

        self.coordinator.subscribe(wake)
        if self.observer is not None:
            self.observer.start()
        api = await self._start_api()
        await asyncio.to_thread(self._connect)
        self.notifier.ready(f"{self.instance} in {self.site}")
        log.info("started", extra={"fields": {"site": self.site, "roles": list(self.roles)}})
        try:
            while not self.stopping:
                if self.reload_requested:
                    await self.reload()
                started = time.perf_counter()
                try:
                    wake_at = await asyncio.to_thread(self.cycle_once, time.time())
                except Exception:  # the agent's part failed: no progress, no keep-alive
                    log.exception("cycle failed")
                    wake_at = None
                else:
                    self._took(time.perf_counter() - started)
                    self.keep_alive(time.time())
                await self._sleep_until(wake_at)
        finally:
            self.notifier.stopping()
            self._publisher.shutdown(wait=False, cancel_futures=True)
            await asyncio.to_thread(self._release)
            if self.leader is not None:
                self.leader.close()
            if self.agent is not None:
                self.agent.close()
            if self.observer is not None:
                await self.observer.stop()
            if api is not None:
                await api.cleanup()
            log.info("stopped")
        return 0

    def _took(self, seconds: float) -> None:
        self.metrics.cycle_time.observe(seconds)
        now = time.monotonic()
        if seconds < SLOW_CYCLE_S or now - self.slow_reported_at < 10.0:
            return
        self.slow_reported_at = now
        parts = ", ".join(f"{name} {took:.3f}" for name, took in self.phases.items())
        parts += f"; the last publish beside it {self.last_publish_s:.3f}"
        log.info(
            f"slow cycle: {seconds:.3f} s ({parts})",
            extra={
                "fields": {
                    "cycle_s": round(seconds, 4),
                    **{f"{name}_s": round(took, 4) for name, took in self.phases.items()},
                    "last_publish_s": round(self.last_publish_s, 4),
                }
            },
        )

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()

    async def _sleep_until(self, wake_at: float | None) -> None:
        timeout = self.config.cluster.daemon.cycle_s
        if wake_at is not None:
            timeout = max(0.01, min(timeout, wake_at - time.time() + 0.001))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    def keep_alive(self, now: float) -> bool:
        """Feed the watchdog after a completed cycle, if the probe loop runs and no primary
        has outlived what its lease allows (`core.agent.keep_alive_until`)."""
        observer = self.observer
        if observer is not None and not observer.running:
            return False
        if self.agent is not None and not self.agent.may_keep_alive(now):
            return False
        self.notifier.watchdog()
        return True

    def _connect(self) -> None:
        try:
            self.coordinator.connect(timeout_s=self.config.cluster.zookeeper.session_timeout_s)
        except CoordinatorError as exc:
            log.warning(f"no coordinator session yet: {exc}; retrying in the background")

    def _release(self) -> None:
        """A clean stop: give up leadership at once; steering stays as it is."""
        with contextlib.suppress(CoordinatorError):
            self.coordinator.resign()
        with contextlib.suppress(CoordinatorError):
            self.coordinator.close()

    def cycle_once(self, now: float) -> float | None:
        """One pass over the roles (`roles.Cycle`); returns the earliest timer any asked for."""
        self.cycles += 1
        wake_at = self.cycle.run(now)
        self.phases = self.cycle.phases
        if self.observer is not None and self.observer.verdicts.dirty and not self.publishing:
            wake_at = now if wake_at is None else min(wake_at, now)
        return wake_at

    @property
    def leadership(self) -> Leadership | None:
        return self.cycle.leadership

    def _publish_due(self, now: float) -> None:
        observer = self.observer
        if observer is not None and observer.verdicts.publish_due() and not self.publishing:
            self._publish(observer.verdicts, now)

    @property
    def publishing(self) -> bool:
        """A publish of this observer's verdicts is under way beside the cycle."""
        return self._publish_job is not None and not self._publish_job.done()

    def _publish(self, verdicts: Verdicts, now: float) -> None:
        """Publish beside the cycle: with 1,000 checks a publish (a 174 kB ZooKeeper write the
        ensemble commits to disk) took 20-70 ms, and it delayed every decision behind it.
        When it ends the loop wakes, so that a verdict changed meanwhile is published next."""

        def job() -> None:
            started = time.perf_counter()
            try:
                verdicts.publish(self.coordinator, now, self.clock_offset_s)
            except CoordinatorError as exc:
                self._problem(f"publish: {type(exc).__name__}: {exc}")
            except Exception:
                log.exception("publish failed")
            finally:
                self.last_publish_s = time.perf_counter() - started
                if self._wake_from_thread is not None:
                    self._wake_from_thread()

        self._publish_job = self._publisher.submit(job)

    def _problem(self, text: str) -> None:
        if text != self.last_error:
            log.warning(text)
        self.last_error = text

    async def _start_api(self) -> Any:
        from failover.api.server import start_api

        return await start_api(self)
