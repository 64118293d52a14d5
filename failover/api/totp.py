"""The second factor for operator writes: a TOTP code (RFC 6238, `pyotp`) per key id.

With `cluster.api.totp_file` set (lines `key_id:BASE32SECRET`), a write named in
`totp_actions` (all three by default), and any forced switchover, must carry the operator's
current code in the `X-Failover-TOTP` header, and that header must be signed with the rest
of the request (so a captured code cannot be moved to another request). Each code is used
once per key id. Codes are checked only after the Escher signature verified: whoever fails
here holds the key's secret, so failures are limited per key id (`max_totp_failures`, then
the backoff of `failover.api.limits`) and that key, from anywhere, waits.

Enrolment: `python -c 'import pyotp; print(pyotp.random_base32())'` gives a secret; add
`key_id:SECRET` to the file (chmod 600) and load the secret into an authenticator app, or
show it as a QR code from `pyotp.TOTP(secret).provisioning_uri(name=key_id,
issuer_name="failover")`.
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable
from pathlib import Path

import pyotp

from failover.api.limits import FailureLimiter
from failover.config.model import ApiOptions
from failover.secrets import id_lines, read_secret_file

TOTP_HEADER = "X-Failover-TOTP"
CODE = re.compile(r"[0-9]{6}")
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET = re.compile(r"[A-Z2-7]{16,128}=*")
STEP_S = 30


class TotpError(Exception):
    """The TOTP file cannot be used; the message names the file and the line."""


def read_totp_secrets(path: str | Path) -> dict[str, str]:
    return read_secret_file(path, "TOTP secrets", TotpError, parse_totp_secrets)


def parse_totp_secrets(text: str, path: str) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for number, key_id, secret in id_lines(text):
        secret = secret.replace(" ", "").upper()
        if not KEY_ID.fullmatch(key_id) or not SECRET.fullmatch(secret):
            raise TotpError(
                f"TOTP secrets {path}: line {number}: expected key_id:BASE32SECRET "
                "(at least 16 base32 characters)"
            )
        try:
            pyotp.TOTP(secret).now()
        except (binascii.Error, ValueError):
            raise TotpError(f"TOTP secrets {path}: line {number}: not base32") from None
        secrets[key_id] = secret
    return secrets


class SecondFactor:
    """Checks TOTP codes of verified requests; remembers used codes; limits failures."""

    def __init__(
        self, options: ApiOptions, secrets: dict[str, str], clock: Callable[[], float] = time.time
    ) -> None:
        self.options = options
        self.secrets = secrets
        self.clock = clock
        self.limiter = FailureLimiter(
            options.max_totp_failures,
            options.max_totp_failures,
            options.backoff_s,
            options.lockout_s,
        )
        self.used: dict[tuple[str, str], float] = {}

    def required(self, kind: str, force: bool) -> bool:
        return self.options.totp_file is not None and (force or kind in self.options.totp_actions)

    def check(
        self, key_id: str, code: str | None, signed: tuple[str, ...]
    ) -> tuple[int, str] | None:
        """None when the code is good; else (status, reason)."""
        now = self.clock()
        for used in [k for k, until in self.used.items() if until <= now]:
            del self.used[used]
        wait = self.limiter.wait_s("totp", key_id, now)
        if wait > 0:
            return 429, f"too many wrong second factors for {key_id}: retry in {wait:.0f} s"
        if code is None or TOTP_HEADER.lower() not in signed:
            return 401, f"second factor required: a signed {TOTP_HEADER} header"
        secret = self.secrets.get(key_id)
        good = (
            secret is not None
            and CODE.fullmatch(code) is not None
            and pyotp.TOTP(secret).verify(code, for_time=int(now), valid_window=1)
        )
        if not good:
            backoff = self.limiter.failed("totp", key_id, now)
            return 401, "wrong second factor" + (
                f"; {key_id} waits {backoff:g} s" if backoff else ""
            )
        if (key_id, code) in self.used:
            return 401, "this second factor code was already used"
        self.used[(key_id, code)] = now + 3 * STEP_S
        self.limiter.succeeded("totp", key_id)
        return None
