"""A ZooKeeper server that stops answering while the session still looks connected (it went
silent, the client has not noticed yet): each call waits its bound (a third of the watchdog)
and fails. The live chaos runs saw a daemon killed by its watchdog that way, though nothing
was stuck: the cycle's sleep (1 s), the agent's read (1 s) and the leader's first call (1 s)
made 3 s without a keep-alive. After the agent's call went unanswered, the rest of the cycle
does not wait on the same server again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from failover.coord import CoordinatorUnavailable, MemoryCoordinator, MemoryStore
from failover.daemon.runner import Daemon
from tests.core.world import example_isolated

WAIT_S = 0.3  # the call's bound, scaled down


class Silent(MemoryCoordinator):
    """A connected session whose server answers nothing while `silent`."""

    silent = False
    calls: list[str]

    def _unanswered(self, what: str) -> None:
        self.calls.append(what)
        time.sleep(WAIT_S)
        raise CoordinatorUnavailable(f"{what}: no answer within {WAIT_S:g} s")

    def desired(self, group: str) -> Any:
        if self.silent:
            self._unanswered(f"read state/{group}")
        return super().desired(group)

    def register(self, member: Any) -> None:
        if self.silent:
            self._unanswered("register")
        super().register(member)

    def campaign(self) -> Any:
        if self.silent:
            self._unanswered("campaign")
        return super().campaign()


def test_a_cycle_waits_on_a_silent_server_once(caplog: pytest.LogCaptureFixture) -> None:
    config = example_isolated()
    clock = [1000.0]
    store = MemoryStore(lambda: clock[0])
    coordinator = Silent(store, "dc1-a")
    coordinator.calls = []
    store.tick()
    daemon = Daemon(config, "dc1-a", coordinator=coordinator)
    daemon.cycle_once(clock[0])  # it leads, its agent applies
    assert daemon.leadership is not None
    coordinator.silent = True
    clock[0] += 1.0
    started = time.monotonic()
    daemon.cycle_once(clock[0])
    took = time.monotonic() - started
    assert coordinator.calls == ["read state/web"], coordinator.calls
    assert took < 1.5 * WAIT_S, f"the cycle waited {took:.2f} s on a silent server"
    assert daemon.last_error == "coordinator unavailable: the agent's call went unanswered"
    coordinator.silent = False  # it answers again: the next cycle does everything
    clock[0] += 1.0
    daemon.cycle_once(clock[0])
    assert daemon.leadership is not None
