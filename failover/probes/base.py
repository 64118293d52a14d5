"""What every probe shares: the `Probe` interface, shared client resources, error wording."""

from __future__ import annotations

import errno
import ssl
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from failover.config.model import TlsClient
from failover.core.model import CheckResult

if TYPE_CHECKING:
    import aiohttp


class Probe(ABC):
    """One kind of check, bound to its configuration; `run` probes one endpoint once.

    Contract: `run` returns a `CheckResult` (its `latency_s` is filled in by the runner) for
    every answer it understands, and may raise for transport failures (refused, reset, TLS),
    which the runner words with `explain`. It must be safe to cancel at any await: the runner
    enforces the check's hard timeout by cancelling it, and a probe that owns a process or a
    connection releases it on the way out.
    """

    @abstractmethod
    async def run(self, endpoint: str) -> CheckResult:
        """Probe `endpoint` once."""

    def timeout_reason(self, endpoint: str, timeout_s: float) -> str:
        return f"no answer from {endpoint} within {timeout_s:g} s"


class ProbeContext:
    """Client resources that many probes share: one HTTP client session, TLS contexts.

    One HTTP session serves every HTTP check (each probe still opens a fresh connection, as a
    health check must); TLS settings are chosen per request. Use as `async with`.
    """

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._tls: dict[tuple[str | None, bool], ssl.SSLContext] = {}

    async def __aenter__(self) -> ProbeContext:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(
                force_close=True, limit=0, use_dns_cache=True, ttl_dns_cache=60
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                raise_for_status=False,
                timeout=aiohttp.ClientTimeout(total=None),  # the runner's hard timeout rules
            )
        return self._http

    def tls_context(self, tls: TlsClient) -> ssl.SSLContext:
        """A client TLS context for these settings (cached: building one reads the CA file)."""
        key = (tls.ca_file, tls.verify)
        context = self._tls.get(key)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=tls.ca_file)
            except ssl.SSLError:
                raise
            except OSError as exc:  # name the file: the ssl module does not
                raise OSError(exc.errno, exc.strerror, tls.ca_file) from None
            if not tls.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls[key] = context
        return context

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused by {endpoint}",
    errno.ECONNRESET: "connection reset by {endpoint}",
    errno.EHOSTUNREACH: "host unreachable: {endpoint}",
    errno.ENETUNREACH: "network unreachable: {endpoint}",
    errno.ETIMEDOUT: "connection to {endpoint} timed out",
    errno.EPIPE: "{endpoint} closed the connection",
    errno.EADDRNOTAVAIL: "cannot assign a source address for {endpoint}",
}


# This process, not the target, is out of something: the probe says nothing about the target.
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
LOCAL_FAILURE = "this observer cannot probe: "


def local_failure(result: CheckResult) -> bool:
    """True when a failed result is this observer's own problem (out of descriptors, say):
    such a result must make the verdict `unknown`, never `down`."""
    return not result.ok and result.reason.startswith(LOCAL_FAILURE)


def explain(exc: BaseException, endpoint: str) -> str:
    """A short reason for a transport failure: 'connection refused by 10.1.0.14:443'."""
    cause = exc.__cause__ or exc.__context__
    for error in (exc, cause):
        if isinstance(error, OSError) and error.errno in LOCAL_ERRNOS:
            return f"{LOCAL_FAILURE}{error.strerror or 'out of resources'} (probing {endpoint})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS error from {endpoint}: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error from {endpoint}: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {endpoint}"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[exc.errno].format(endpoint=endpoint)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{endpoint}: {exc.strerror}"
    text = str(exc).strip() or type(exc).__name__
    return f"{endpoint}: {first_line(text)}"


def first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
