"""The second factor of commands an operator queues through ZooKeeper (the CLI).

The CLI writes its command straight into the operator's `requests/<operator>/` folder, so the
API's TOTP check never sees it. The leader checks it instead, when it takes the command: with
`cluster.api.totp_file` set, a switchover, freeze or unfreeze named in `totp_actions`, and any
forced switchover, must carry the current TOTP code of the identity that queued it (the
folder's name, a line `<operator>:BASE32SECRET` of the same file the API reads). Each code is
used once across the cluster and across leaders: the leader queues an audit note with the
code's once-only id (`once/<sha256>`, as the API does for signatures), and a code already used
is refused. Wrong codes are limited per operator (`max_totp_failures`, then the backoff of
`failover.api.limits`). Commands the daemons queued (`commands/`, from the API, which checked
its own second factor) need nothing here. The code is dropped from the command before the
leader records it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import pyotp

from failover.api.limits import FailureLimiter
from failover.api.totp import CODE, STEP_S, TotpError, read_totp_secrets
from failover.config import Config
from failover.coord import AlreadyUsed, Coordinator, CoordinatorError
from failover.core.model import Command

log = logging.getLogger("failover.leader")
WRITES = ("switchover", "freeze", "unfreeze")


def operator_of(command: Command) -> str | None:
    """The identity whose `requests/` folder a command came from (None: a daemon's)."""
    operator, dot, _ = command.id.rpartition(".")
    return operator if dot else None


class CommandSecondFactor:
    def __init__(self, config: Config) -> None:
        self.config = config
        options = config.cluster.api
        self.limiter = FailureLimiter(
            options.max_totp_failures,
            options.max_totp_failures,
            options.backoff_s,
            options.lockout_s,
        )
        self._secrets: dict[str, str] = {}
        self._seen: tuple[str | None, float] = (None, -1.0)

    def required(self, command: Command) -> bool:
        options = self.config.cluster.api
        return (
            options.totp_file is not None
            and operator_of(command) is not None
            and command.kind in WRITES
            and (command.force or command.kind in options.totp_actions)
        )

    def check(
        self, coordinator: Coordinator, command: Command, now: float
    ) -> tuple[Command, str | None]:
        """(the command without its code, the reason it is refused or None)."""
        code, command = command.totp, replace(command, totp=None)
        if not self.required(command):
            return command, None
        operator = operator_of(command) or ""
        wait = self.limiter.wait_s("totp", operator, now)
        if wait > 0:
            return command, f"too many wrong second factors from {operator}: retry in {wait:.0f} s"
        if not code:
            return command, (
                f"second factor required for {command.kind}"
                + (" --force" if command.force else "")
                + " (failover ... --totp CODE)"
            )
        secret = self.secrets().get(operator)
        if secret is None or not CODE.fullmatch(code):
            good = False
        else:
            good = pyotp.TOTP(secret).verify(code, for_time=int(now), valid_window=1)
        if not good:
            backoff = self.limiter.failed("totp", operator, now)
            return command, "wrong or expired second factor" + (
                f"; {operator} waits {backoff:g} s" if backoff else ""
            )
        once = hashlib.sha256(f"totp:{operator}:{code}".encode()).hexdigest()
        note = Command(
            "",
            "note",
            f"leader:{operator}",
            f"second factor of {command.id} used",
            requested_at=now,
        )
        try:
            coordinator.submit(note, once, now + 3 * STEP_S)
        except AlreadyUsed:
            return command, "this second factor code was already used"
        except CoordinatorError as exc:
            return command, f"the second factor could not be recorded as used: {exc}"
        self.limiter.succeeded("totp", operator)
        return command, None

    def secrets(self) -> dict[str, str]:
        """The TOTP secrets, re-read when the file changed."""
        path = self.config.cluster.api.totp_file
        mtime = -1.0
        if path is not None:
            try:
                mtime = Path(path).stat().st_mtime
            except OSError:
                mtime = -1.0
        if self._seen != (path, mtime):
            self._secrets = {}
            if path is not None:
                try:
                    self._secrets = read_totp_secrets(path)
                except TotpError as exc:
                    log.error(f"{exc}; operator commands that need a second factor are refused")
            self._seen = (path, mtime)
        return self._secrets
