"""Connection limits for the API: how many at once, per source, and how long a request may take
to arrive. The probes share the process's descriptors, so the API must never use them all.

`ConnectionGuard` wraps aiohttp's protocol factory: a connection over `max_connections` (or
over `per_source` from one source) is closed at once; a connection that has not delivered a
request's headers within `header_timeout_s` of opening (or of its previous answer) is closed.
The `middleware` tells the guard when a request has arrived and when it was answered.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from failover.api.limits import source_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GuardedProtocol(asyncio.Protocol):
    """One connection: the aiohttp handler inside, a header deadline around it."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.source = "unknown"
        self.counted = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.source = source_of(peer[0] if isinstance(peer, tuple) and peer else None)
        if not self.guard.admit(self):
            transport.abort()
            return
        self.counted = True
        self.inner.connection_made(transport)
        self.arm()

    def arm(self) -> None:
        self.disarm()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.guard.header_timeout_s, self._too_slow)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _too_slow(self) -> None:
        self.guard.timed_out += 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.counted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.counted else None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        if self.counted:
            self.counted = False
            self.guard.release(self)
            self.inner.connection_lost(exc)


class ConnectionGuard:
    """Counts open connections (in all, per source) and closes the ones over the limits."""

    def __init__(
        self, max_connections: int, header_timeout_s: float, per_source: int | None = None
    ) -> None:
        self.max_connections = max_connections
        self.per_source = per_source or max(1, max_connections // 4)
        self.header_timeout_s = header_timeout_s
        self.open: dict[int, GuardedProtocol] = {}  # id(transport) -> protocol
        self.by_source: dict[str, int] = {}
        self.refused = 0
        self.timed_out = 0

    def factory(self, inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        return lambda: GuardedProtocol(inner(), self)

    def admit(self, protocol: GuardedProtocol) -> bool:
        held = self.by_source.get(protocol.source, 0)
        if len(self.open) >= self.max_connections or held >= self.per_source:
            self.refused += 1
            return False
        self.by_source[protocol.source] = held + 1
        self.open[id(protocol.transport)] = protocol
        return True

    def release(self, protocol: GuardedProtocol) -> None:
        self.open.pop(id(protocol.transport), None)
        left = self.by_source.get(protocol.source, 1) - 1
        if left > 0:
            self.by_source[protocol.source] = left
        else:
            self.by_source.pop(protocol.source, None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        protocol = self.open.get(id(request.transport))
        if protocol is not None:
            protocol.disarm()  # the headers arrived; the handler bounds the body itself
        try:
            return await handler(request)
        finally:
            if protocol is not None and protocol.counted:
                protocol.arm()


class ClientErrorFilter(logging.Filter):
    """Drops aiohttp's error log of a request it could not parse (too long a line, too many
    headers, bad syntax): the client's fault, answered 400, and a flood of them must not flood
    the log. Counted in `dropped`."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            self.dropped += 1
            return False
        return True


CLIENT_ERRORS = ClientErrorFilter()
logging.getLogger("aiohttp.server").addFilter(CLIENT_ERRORS)


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through a `ConnectionGuard`."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, **options: Any
    ) -> None:
        super().__init__(runner, host, port, **options)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        tls: dict[str, Any] = {}
        if self._ssl_context is not None:  # the handshake is bounded like the headers
            tls = {"ssl": self._ssl_context, "ssl_handshake_timeout": self.guard.header_timeout_s}
        self._server = await loop.create_server(
            self.guard.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            **tls,
        )


def raise_descriptor_limit(wanted: int = 65536) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard
