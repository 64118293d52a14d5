"""Builds the snapshots the core receives: observations from a compact description."""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from failover.config import BgpSteering, Config, load_config
from failover.core.model import Applied, Command, GroupState, Observation, Verdict, target_key

if TYPE_CHECKING:
    from failover.core import View
    from failover.core.model import Decision, Step

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"


def example() -> Config:
    return load_config(EXAMPLE)


def example_isolated() -> Config:
    """The example, each site's BGP steering in a network namespace of this test process's
    own (`ut<pid>-dc1`) and with no BIRD to verify against. A daemon built from it in a unit
    test writes real kernel routes (pyroute2 creates the namespace it is given): with the
    example's `fo-dc1` it wrote `primary` into the lab's table whenever a lab or live
    game-day ran beside the unit tests. The namespaces are deleted when the process exits."""
    config = example()
    groups = {}
    for name, group in config.groups.items():
        steering = group.steering
        if isinstance(steering, BgpSteering):
            sites = {
                site: bgp.model_copy(
                    update={"netns": _private(site), "bird_socket": f"/nonexistent/{site}.ctl"}
                )
                for site, bgp in steering.sites.items()
            }
            group = group.model_copy(
                update={"steering": steering.model_copy(update={"sites": sites})}
            )
        groups[name] = group
    return config.model_copy(update={"groups": groups})


@functools.cache
def _private(site: str) -> str:
    name = f"ut{os.getpid()}-{site}"
    atexit.register(subprocess.run, ["ip", "netns", "delete", name], capture_output=True)
    return name


def observations(
    config: Config,
    now: float,
    down: Iterable[tuple[str, str, str]] = (),
    absent: Iterable[str] = (),
    unknown: Iterable[tuple[str, str, str]] = (),
) -> list[Observation]:
    """Every instance sees every target up, except (observer site, site, service) in `down`.

    Instances of an observer site in `absent` publish nothing (dead or cut off).
    """
    down_set, unknown_set, absent_set = set(down), set(unknown), set(absent)
    result = []
    for instance, placed in config.instances.items():
        if placed.site in absent_set:
            continue
        for site in config.serving_sites:
            for name, service in config.sites[site].services.items():
                key = (placed.site, site, name)
                verdict: Verdict = (
                    "down" if key in down_set else "unknown" if key in unknown_set else "up"
                )
                for target in service.targets():
                    result.append(
                        Observation(
                            instance, placed.site, target_key(site, name, target), verdict, 0.0, now
                        )
                    )
    return result


def everyone_sees(config: Config, site: str, service: str) -> list[tuple[str, str, str]]:
    return [(observer, site, service) for observer in config.observer_sites]


def confirmed(group: str, site: str, epoch: int, now: float) -> dict[tuple[str, str], Applied]:
    return {(group, site): Applied(group, site, epoch, "backup", now, True)}


class Run:
    """Drives an engine through time with described observations; keeps every decision."""

    def __init__(self, config: Config | None = None) -> None:
        from failover.core import Engine

        self.config = config or example()
        self.engine = Engine(self.config)
        self.states: dict[str, GroupState] = {}
        self.decisions: list[Decision] = []
        self.applied: dict[tuple[str, str], Applied] = {}
        self._last: Step | None = None

    @property
    def last(self) -> Step:
        """The latest step's outcome."""
        assert self._last is not None, "no step yet"
        return self._last

    def view(
        self, now: float, down: Iterable[tuple[str, str, str]] = (), absent: Iterable[str] = ()
    ) -> View:
        from failover.core import View

        return View(now, observations(self.config, now, down, absent), dict(self.applied))

    def step(
        self, now: float, down: Iterable[tuple[str, str, str]] = (), absent: Iterable[str] = ()
    ) -> Step:
        return self._took(self.engine.step(self.states, self.view(now, down, absent)))

    def command(
        self,
        now: float,
        command: Command,
        down: Iterable[tuple[str, str, str]] = (),
        absent: Iterable[str] = (),
    ) -> Step:
        return self._took(self.engine.command(self.states, command, self.view(now, down, absent)))

    def _took(self, step: Step) -> Step:
        self._last = step
        self.states = dict(step.states)
        self.decisions += step.decisions
        return step

    def confirm(self, group: str, site: str, now: float) -> None:
        """The site's agent reports it applied the current desired state."""
        state = self.states[group]
        self.applied[(group, site)] = Applied(
            group, site, state.epoch, state.announcement(site), now, True
        )

    def codes(self, group: str = "web") -> list[str]:
        return [d.code for d in self.decisions if d.group == group]

    def state(self, group: str = "web") -> GroupState:
        return self.states[group]
