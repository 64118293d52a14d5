"""Escher request signing for the API's write endpoints: verify, refuse replays, lock out.

Escher is an AWS4-style HMAC scheme (the `escherauth` package): the client signs the method,
path, query, the Host and X-Escher-Date headers and a hash of the body with a secret it
shares with the server under a key id. The server here also requires:

- the signed Host to be this daemon's own API address, so that a request signed for one
  daemon cannot be replayed against another;
- each accepted signature to be used once: it is remembered until its date falls out of the
  accepted window (`clock_skew_s`), after which Escher itself refuses it as expired;
- fewer than `max_failures` consecutive failures per key id; after that the key id is locked
  out for `lockout_s`, valid signatures included.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from escherauth import AuthParams, Escher

from failover.config.model import ApiOptions

AUTH_HEADER = "X-Escher-Auth"
DATE_HEADER = "X-Escher-Date"
ALGO_PREFIX = "ESR"
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TRACKED = 10000  # key ids with failures, signatures remembered: bounded memory


class ApiKeysError(Exception):
    """The keys file cannot be used; the message names the file and the line."""


def read_keys(path: str | Path) -> dict[str, str]:
    """`key_id:secret` lines (blank lines and `#` comments skipped) -> {key_id: secret}."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeysError(f"API keys {path}: cannot read: {exc}") from None
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key_id, sep, secret = line.partition(":")
        if not sep or not KEY_ID.match(key_id) or not secret:
            raise ApiKeysError(f"API keys {path}: line {number}: expected key_id:secret with "
                               "a key id of letters, digits, '-' or '_'")
        if key_id in keys:
            raise ApiKeysError(f"API keys {path}: line {number}: key id {key_id} given twice")
        keys[key_id] = secret
    return keys


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the guard decided about one request: HTTP status, the key id it claims, why."""

    status: int  # 200 accepted, 401 bad signature, 403 replayed or no keys, 429 locked out
    key_id: str | None
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status == 200


class RequestGuard:
    """Decides about signed requests; holds replay memory and lockouts (one daemon's)."""

    def __init__(self, options: ApiOptions, own_address: str, keys: dict[str, str],
                 clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.keys = keys
        self.clock = clock
        host, _, port = own_address.rpartition(":")
        self.own_host = host.strip("[]")
        self.own_port = port
        self.failures: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}
        self.seen: dict[str, float] = {}  # signature -> when it can no longer validate

    def check(self, method: str, raw_path: str, headers: Iterable[tuple[str, str]],
              body: str) -> Outcome:
        now = self.clock()
        self._forget(now)
        pairs = [[key, value] for key, value in headers]
        auth = next((v for k, v in pairs if k.lower() == AUTH_HEADER.lower()), None)
        if auth is None:
            return Outcome(401, None, "missing signature: no X-Escher-Auth header")
        try:
            params = AuthParams.from_headers(pairs, ALGO_PREFIX, DATE_HEADER, AUTH_HEADER)
            key_id = params.get_credential_key()
            signature = params.get("signature")
            signed_at = params.get_request_date().timestamp()
        except Exception as exc:  # escherauth raises several kinds on malformed input
            return Outcome(401, None, f"malformed signature: {exc or type(exc).__name__}")
        locked = self.locked_until.get(key_id, 0.0)
        if locked > now:
            return Outcome(429, key_id, f"key {key_id} is locked out for {locked - now:.0f} s "
                           f"more after {self.options.max_failures} failures")
        if not self.keys:
            return self._failed(key_id, now, 403, "no API keys are configured on this daemon")
        host = next((v for k, v in pairs if k.lower() == "host"), "")
        if not self._own_host(host):
            return self._failed(key_id, now, 401, f"signed for host {host!r}, not for this "
                                f"daemon ({self.own_host}:{self.own_port})")
        escher = Escher("", "", self.options.credential_scope, {
            "clock_skew": self.options.clock_skew_s,
            "current_time": datetime.datetime.fromtimestamp(now, datetime.UTC)})
        request = {"method": method, "url": raw_path, "headers": pairs, "body": body}
        try:
            escher.authenticate(request, self.keys)
        except Exception as exc:
            return self._failed(key_id, now, 401, _why(str(exc)))
        if signature in self.seen:
            return self._failed(key_id, now, 403, "replayed: this signature was already used")
        self.seen[signature] = signed_at + self.options.clock_skew_s + 1.0
        self.failures.pop(key_id, None)
        return Outcome(200, key_id, "signature verified")

    def _failed(self, key_id: str, now: float, status: int, reason: str) -> Outcome:
        count = self.failures.get(key_id, 0) + 1
        self.failures[key_id] = count
        if count >= self.options.max_failures:
            self.locked_until[key_id] = now + self.options.lockout_s
            self.failures.pop(key_id, None)
            reason += (f"; key {key_id} locked out for {self.options.lockout_s:g} s after "
                       f"{count} consecutive failures")
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
        for key_id in [k for k, until in self.locked_until.items() if until <= now]:
            del self.locked_until[key_id]
        if len(self.failures) > MAX_TRACKED:
            self.failures.clear()
        if len(self.seen) > MAX_TRACKED:  # far beyond any honest rate: keep the newest
            for signature in sorted(self.seen, key=self.seen.__getitem__)[:-MAX_TRACKED]:
                del self.seen[signature]


def _why(message: str) -> str:
    if "time range" in message:
        return "expired (or not yet valid): the signature's date is outside the accepted window"
    if "do not match" in message:
        return "wrong signature"
    if "Invalid Escher key" in message:
        return "unknown key id"
    return f"invalid signature: {message}"


def signed_headers(method: str, address: str, path: str, body: str, key_id: str, secret: str,
                   credential_scope: str, at: float | None = None,
                   content_type: str = "application/json") -> dict[str, str]:
    """The headers that sign one request for the daemon at `address` (client side)."""
    options: dict[str, object] = {}
    if at is not None:
        options["current_time"] = datetime.datetime.fromtimestamp(at, datetime.UTC)
    escher = Escher(key_id, secret, credential_scope, options)
    request = {"method": method, "url": path, "host": address, "body": body,
               "headers": [["Content-Type", content_type]]}
    signed = escher.sign_request(request, ["content-type"])
    return {key: value for key, value in signed["headers"]}
