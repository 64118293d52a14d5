"""`http` and `https` checks (aiohttp): status set, body regex, headers, Host/SNI, custom CA."""

from __future__ import annotations

import asyncio

import aiohttp
import regex
from yarl import URL

from failover.config.model import HttpCheck, split_host_port
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext, explain

BODY_LIMIT = 64 * 1024  # a health page is small; read no more than this for the regex


class HttpProbe(Probe):
    """GET (or HEAD) one URL on a fresh connection; redirects are not followed by default."""

    def __init__(self, check: HttpCheck, context: ProbeContext) -> None:
        self.check = check
        self.context = context
        try:
            self.body_regex = regex.compile(check.body_regex) if check.body_regex else None
        except regex.error as exc:
            raise ValueError(f"body_regex: {exc}") from None
        self.headers = dict(check.headers)
        if check.host:
            self.headers["Host"] = check.host
        self.tls = context.tls_context(check.tls) if check.type == "https" else None
        self.server_name = check.tls.server_name or check.host
        self._urls: dict[str, URL] = {}

    def url(self, endpoint: str) -> URL:
        url = self._urls.get(endpoint)
        if url is None:
            host, port = split_host_port(endpoint)
            netloc = f"[{host}]" if ":" in host else host
            url = self._urls[endpoint] = URL(
                f"{self.check.type}://{netloc}:{port}{self.check.path}"
            )
        return url

    async def run(self, endpoint: str) -> CheckResult:
        check = self.check
        session = self.context.http_session()
        try:
            async with session.request(
                check.method,
                self.url(endpoint),
                headers=self.headers or None,
                allow_redirects=check.follow_redirects,
                ssl=self.tls if self.tls is not None else True,
                server_hostname=self.server_name if self.tls is not None else None,
            ) as response:
                status = response.status
                if status not in check.expect_status:
                    return CheckResult(False, reason=self._status_reason(response, endpoint))
                if self.body_regex is not None and check.method == "GET":
                    body = await response.content.read(BODY_LIMIT)
                    text = body.decode(response.charset or "utf-8", errors="replace")
                    try:  # off the event loop, the GIL released, bounded in time
                        matched = await asyncio.to_thread(
                            _search, self.body_regex, text, check.timeout_s
                        )
                    except TimeoutError:
                        return CheckResult(
                            False,
                            reason=(
                                f"HTTP {status} from {endpoint}, body_regex took longer than "
                                f"{check.timeout_s:g} s"
                            ),
                        )
                    if not matched:
                        return CheckResult(
                            False,
                            reason=f"HTTP {status} from {endpoint}, body does not match "
                            f"/{self.body_regex.pattern}/",
                        )
                return CheckResult(True, reason=f"HTTP {status} from {endpoint}")
        except aiohttp.ClientConnectorCertificateError as exc:
            return CheckResult(False, reason=explain(exc.certificate_error, endpoint))
        except aiohttp.ClientConnectorSSLError as exc:
            return CheckResult(False, reason=explain(exc.os_error, endpoint))
        except aiohttp.ClientConnectorError as exc:
            return CheckResult(False, reason=explain(exc.os_error, endpoint))
        except aiohttp.ServerDisconnectedError:
            return CheckResult(False, reason=f"{endpoint} closed the connection without answering")
        except aiohttp.ClientResponseError as exc:
            return CheckResult(False, reason=f"bad HTTP answer from {endpoint}: {exc.message}")
        except aiohttp.ClientPayloadError as exc:
            return CheckResult(False, reason=f"bad HTTP body from {endpoint}: {exc}")

    def _status_reason(self, response: aiohttp.ClientResponse, endpoint: str) -> str:
        reason = f"HTTP {response.status} from {endpoint}"
        location = response.headers.get("Location")
        if location and 300 <= response.status < 400:
            reason += f" (redirect to {location}; redirects are not followed)"
        return reason


def _search(pattern: regex.Pattern[str], text: str, timeout_s: float) -> bool:
    """A search that releases the GIL and gives up after `timeout_s` (TimeoutError): a
    catastrophic pattern in a config can neither stall the event loop nor the process."""
    return pattern.search(text, timeout=timeout_s, concurrent=True) is not None
