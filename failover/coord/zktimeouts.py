"""How long a ZooKeeper client waits: for a call, a connect, unacknowledged data, and between
rounds of reconnecting. The daemon's session and the simulator's model of it use these."""

from __future__ import annotations

import socket
from typing import Any

from kazoo.handlers.threading import SequentialThreadingHandler

# kazoo's reconnect loop: after a round of every host without success, sleep `delay` (x1.5 each
# time, at most `max_delay`, with kazoo's jitter of +-40 %) and shuffle the hosts for another.
CONNECTION_RETRY: dict[str, float] = {
    "max_tries": -1,
    "delay": 0.05,
    "backoff": 1.5,
    "max_delay": 0.5,
}


def call_timeout_s(session_timeout_s: float, watchdog_s: float) -> float:
    """How long a daemon waits for one call: a third of the watchdog (never longer than the
    session timeout), so that a cycle during a ZooKeeper fail-over ends and feeds the
    watchdog instead of being killed as stuck."""
    return min(session_timeout_s, watchdog_s / 3)


def connect_timeout_s(session_timeout_s: float, hosts: int) -> float:
    """How long one TCP connect to one server may take. kazoo waits the whole session timeout:
    a server that drops packets silently (a cut link) then costs the session itself, though
    a reachable server of the quorum is next in the list. Bounded so that trying every other
    server fits in half the session timeout."""
    return max(0.05, session_timeout_s / (2 * max(1, hosts)))


def silence_timeout_s(session_timeout_s: float) -> float:
    """How long data sent to a server may stay unacknowledged before the connection is given
    up (TCP_USER_TIMEOUT). kazoo notices a silent server only by an unanswered ping, and it
    pings only after half its read timeout without sending: a daemon that sends a request every
    cycle never pings, so a server that went silent (its site lost power, a link was cut) kept
    the connection until the session had expired (the live chaos run saw 12 s). The kernel
    acknowledges for a live server even while its process is slow, so this fires only for a
    silent network; half the session timeout leaves the other half to reach another server."""
    return max(0.1, session_timeout_s / 2)


class BoundedConnect(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler, with every TCP connect bounded (`connect_timeout_s`) and
    every connection given up after `silence_s` of unacknowledged data (`silence_timeout_s`)."""

    def __init__(self, connect_timeout_s: float, silence_s: float | None = None) -> None:
        super().__init__()
        self.connect_timeout_s = connect_timeout_s
        self.silence_s = silence_s

    def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        asked = kwargs.get("timeout")
        kwargs["timeout"] = min(asked or self.connect_timeout_s, self.connect_timeout_s)
        connection = super().create_connection(*args, **kwargs)
        if self.silence_s is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
            connection.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, round(self.silence_s * 1000)
            )
        return connection
