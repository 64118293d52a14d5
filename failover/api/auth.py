"""Escher request signing for the API's write endpoints: bounded parsing, verification, replays.

Escher is an AWS4-style HMAC scheme (the `escherauth` package): the client signs the method,
path, query, the Host and X-Escher-Date headers and a hash of the body with a secret it
shares with the server under a key id. The server here does not hand untrusted headers to
the library's parser (its regular expression backtracks for seconds on a crafted header):
the auth header must match a strict, anchored shape of bounded length first, and the
signature is compared in constant time. It also requires:

- the signed Host to be this daemon's own API address, so that a request signed for one
  daemon cannot be replayed against another;
- each accepted signature to be used once: remembered here until its date falls out of the
  accepted window (`clock_skew_s`), and in the coordinator, in the same transaction that
  queues the command (`Coordinator.submit(..., once=...)`), so that neither a restarted
  daemon nor another daemon of the cluster accepts it again;
- failures are limited per source address and per (source, key id) (`limits`): a key id is
  never locked for everyone, so nobody can lock an operator out by naming its key id.

Refusals never say whether a key id exists: an unknown key id and a wrong signature read the
same ("wrong signature"), and both cost one HMAC.
"""

from __future__ import annotations

import datetime
import hmac
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from escherauth import Escher, EscherRequest
from escherauth.escherauth import EscherException

from failover.api.limits import FailureLimiter
from failover.config.model import ApiOptions
from failover.secrets import id_lines, read_secret_file

AUTH_HEADER = "X-Escher-Auth"
DATE_HEADER = "X-Escher-Date"
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SEEN = 10000  # signatures remembered here: bounded memory


class ApiKeysError(Exception):
    """The keys file cannot be used; the message names the file and the line."""


def read_keys(path: str | Path) -> dict[str, str]:
    """`key_id:secret` lines (blank lines and `#` comments skipped) -> {key_id: secret}."""
    return read_secret_file(path, "API keys", ApiKeysError, parse_keys)


def parse_keys(text: str, path: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for number, key_id, secret in id_lines(text):
        if not KEY_ID.match(key_id) or not secret:
            raise ApiKeysError(
                f"API keys {path}: line {number}: expected key_id:secret with "
                "a key id of letters, digits, '-' or '_'"
            )
        if key_id in keys:
            raise ApiKeysError(f"API keys {path}: line {number}: key id {key_id} given twice")
        keys[key_id] = secret
    return keys


MAX_AUTH_HEADER = 512
MAX_HOST_HEADER = 262
AUTH_SHAPE = re.compile(
    r"ESR-HMAC-(SHA256|SHA512) Credential=([A-Za-z0-9_-]{1,64})/([0-9]{8})/"
    r"([A-Za-z0-9_./-]{1,128}), SignedHeaders=([a-z0-9-]{1,64}(?:;[a-z0-9-]{1,64}){0,15}), "
    r"Signature=([0-9a-f]{64,128})"
)
DATE_SHAPE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
DUMMY_SECRET = "no such key: the same work as for a real one"


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """The parts of a well-shaped X-Escher-Auth header."""

    hash_algo: str
    key_id: str
    short_date: str
    scope: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_auth_header(value: str) -> AuthHeader | None:
    """A strict, linear-time parse of the header (None when it is not of the expected shape)."""
    if len(value) > MAX_AUTH_HEADER:
        return None
    match = AUTH_SHAPE.fullmatch(value)
    if match is None:
        return None
    algo, key_id, short_date, scope, signed, signature = match.groups()
    if len(signature) != (64 if algo == "SHA256" else 128):
        return None
    return AuthHeader(algo, key_id, short_date, scope, tuple(signed.split(";")), signature)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the guard decided about one request: HTTP status, the key id it claims, why."""

    status: int  # 200 accepted, 401 bad signature, 403 replayed or no keys, 429 backing off
    key_id: str | None
    reason: str
    signature: str = ""  # of an accepted request: its replay id
    valid_until: float = 0.0  # of an accepted request: when its signature stops validating
    signed_headers: tuple[str, ...] = ()  # of an accepted request: the names it signed

    @property
    def accepted(self) -> bool:
        return self.status == 200


class RequestGuard:
    """Decides about signed requests; holds this daemon's replay memory and failure limits."""

    def __init__(
        self,
        options: ApiOptions,
        own_address: str,
        keys: dict[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.keys = keys
        self.clock = clock
        host, _, port = own_address.rpartition(":")
        self.own_host = host.strip("[]")
        self.own_port = port
        self.limiter = FailureLimiter(
            options.max_failures, options.max_source_failures, options.backoff_s, options.lockout_s
        )
        self.seen: dict[str, float] = {}  # signature -> when it can no longer validate

    def configure(self, options: ApiOptions, keys: dict[str, str]) -> None:
        """New keys or options (a reload); replay memory and failure counts are kept."""
        self.options, self.keys = options, keys
        limiter = self.limiter
        limiter.max_failures, limiter.max_source_failures = (
            options.max_failures,
            options.max_source_failures,
        )
        limiter.backoff_s, limiter.lockout_s = options.backoff_s, options.lockout_s

    def check(
        self,
        method: str,
        raw_path: str,
        headers: Iterable[tuple[str, str]],
        body: str,
        source: str = "unknown",
    ) -> Outcome:
        now = self.clock()
        self._forget(now)
        found: dict[str, list[str]] = {}
        for key, value in headers:
            found.setdefault(key.lower(), []).append(value)
        auth = found.get(AUTH_HEADER.lower(), [])
        if not auth:
            return self._failed(
                source, None, now, 401, "missing signature: no X-Escher-Auth header"
            )
        parsed = parse_auth_header(auth[0]) if len(auth) == 1 else None
        if parsed is None:
            return self._failed(
                source,
                None,
                now,
                401,
                "malformed signature: the X-Escher-Auth header is not of the expected shape",
            )
        key_id = parsed.key_id
        wait = self.limiter.wait_s(source, key_id, now)
        if wait > 0:
            return Outcome(
                429, key_id, f"too many failed requests from {source}: retry in {wait:.0f} s"
            )
        problem = self._problem(method, raw_path, found, body, parsed, now)
        if problem is not None:
            status, reason = problem
            return self._failed(source, key_id, now, status, reason)
        if parsed.signature in self.seen:
            return self._failed(
                source, key_id, now, 403, "replayed: this signature was already used"
            )
        signed_at = _request_time(found[DATE_HEADER.lower()][0])
        self.limiter.succeeded(source, key_id)
        return Outcome(
            200,
            key_id,
            "signature verified",
            parsed.signature,
            signed_at + self.options.clock_skew_s + 1.0,
            parsed.signed_headers,
        )

    def remember(self, outcome: Outcome) -> None:
        """An accepted request was used: refuse its signature from now on (here)."""
        self.seen[outcome.signature] = outcome.valid_until

    def replayed(self, source: str, outcome: Outcome) -> Outcome:
        """The coordinator knew the signature already: a replay, counted against the source."""
        self.remember(outcome)
        return self._failed(
            source, outcome.key_id, self.clock(), 403, "replayed: this signature was already used"
        )

    def _problem(
        self,
        method: str,
        raw_path: str,
        found: dict[str, list[str]],
        body: str,
        parsed: AuthHeader,
        now: float,
    ) -> tuple[int, str] | None:
        if not self.keys:
            return 403, "no API keys are configured on this daemon"
        hosts, dates = found.get("host", []), found.get(DATE_HEADER.lower(), [])
        if len(hosts) != 1 or len(hosts[0]) > MAX_HOST_HEADER:
            return 401, "malformed request: exactly one Host header is required"
        if not self._own_host(hosts[0]):
            return 401, (
                f"signed for host {hosts[0][:80]!r}, not for this daemon "
                f"({self.own_host}:{self.own_port})"
            )
        if len(dates) != 1 or not DATE_SHAPE.fullmatch(dates[0]):
            return 401, "malformed signature: X-Escher-Date must be one YYYYMMDDTHHMMSSZ"
        signed = set(parsed.signed_headers)
        if (
            not {"host", DATE_HEADER.lower()} <= signed
            or len(signed) != len(parsed.signed_headers)
            or any(name not in found for name in signed)
        ):
            return 401, "malformed signature: Host and X-Escher-Date must be signed, once"
        try:
            signed_at = _request_time(dates[0])
        except ValueError:
            return 401, "malformed signature: X-Escher-Date is not a time"
        skew = self.options.clock_skew_s
        if not now - skew <= signed_at <= now + skew or dates[0][:8] != parsed.short_date:
            return 401, (
                "expired (or not yet valid): the signature's date is outside the accepted window"
            )
        if parsed.scope != self.options.credential_scope:
            return 401, "wrong signature"
        secret = self.keys.get(parsed.key_id)
        expected = self._signature(
            secret or DUMMY_SECRET, method, raw_path, found, body, parsed, signed_at
        )
        if not hmac.compare_digest(expected.encode(), parsed.signature.encode()) or secret is None:
            return 401, "wrong signature"
        return None

    def _signature(
        self,
        secret: str,
        method: str,
        raw_path: str,
        found: dict[str, list[str]],
        body: str,
        parsed: AuthHeader,
        signed_at: float,
    ) -> str:
        escher = Escher("", "", self.options.credential_scope, {"hash_algo": parsed.hash_algo})
        headers = [[name, value] for name in parsed.signed_headers for value in found[name]]
        moment = datetime.datetime.fromtimestamp(signed_at, datetime.UTC)
        try:
            request = EscherRequest(
                {"method": method, "url": raw_path, "headers": headers, "body": body}
            )
            return str(
                escher.generate_signature(secret, request, list(parsed.signed_headers), moment)
            )
        except EscherException:  # a request Escher cannot canonicalize: no signature fits
            return ""

    def _failed(
        self, source: str, key_id: str | None, now: float, status: int, reason: str
    ) -> Outcome:
        backoff = self.limiter.failed(source, key_id, now)
        if backoff > 0:
            reason += f"; requests from {source} wait {backoff:g} s"
        return Outcome(status, key_id, reason)

    def _own_host(self, host: str) -> bool:
        name, _, port = host.rpartition(":")
        if port != self.own_port:
            return False
        if self.own_host in ("0.0.0.0", "::", ""):  # a wildcard listener: the port decides
            return True
        return name.strip("[]") == self.own_host

    def _forget(self, now: float) -> None:
        for signature in [s for s, until in self.seen.items() if until <= now]:
            del self.seen[signature]
        if len(self.seen) > MAX_SEEN:  # far beyond any honest rate: keep the newest
            for signature in sorted(self.seen, key=self.seen.__getitem__)[:-MAX_SEEN]:
                del self.seen[signature]


def _request_time(text: str) -> float:
    moment = datetime.datetime.strptime(text, "%Y%m%dT%H%M%SZ")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def signed_headers(
    method: str,
    address: str,
    path: str,
    body: str,
    key_id: str,
    secret: str,
    credential_scope: str,
    at: float | None = None,
    content_type: str = "application/json",
    totp: str | None = None,
) -> dict[str, str]:
    """The headers that sign one request for the daemon at `address` (client side); with
    `totp`, the operator's current code, signed with the rest."""
    options: dict[str, object] = {}
    if at is not None:
        options["current_time"] = datetime.datetime.fromtimestamp(at, datetime.UTC)
    escher = Escher(key_id, secret, credential_scope, options)
    headers = [["Content-Type", content_type]]
    if totp is not None:
        headers.append(["X-Failover-TOTP", totp])
    request = {"method": method, "url": path, "host": address, "body": body, "headers": headers}
    signed = escher.sign_request(request, [name.lower() for name, _ in headers])
    return {key: value for key, value in signed["headers"]}
