"""The secret files a config names: present, readable, well-formed, and kept private.

`failover validate` reads each one (never printing what it holds): a missing, unreadable or
malformed secret file is an error found before the daemon needs it (a TSIG secret used to be
read only when the leader first steered); a group- or world-readable one is a warning.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable, Iterator

from failover.config.load import MAX_FILE_BYTES
from failover.config.model import Config, DnsSteering, PostgresCheck

MIN_PASSWORD = 16


def secret_files(config: Config) -> Iterator[tuple[str, str, Callable[[str], str | None]]]:
    """(dotted path in the config, file, a check of its text) for every secret file."""
    zk = config.cluster.zookeeper
    for name, auth in (("daemon_auth", zk.daemon_auth), ("operator_auth", zk.operator_auth)):
        if auth is not None:
            yield (f"cluster.zookeeper.{name}.credentials_file", auth.credentials_file, _digest)
    if zk.tls.key_file:
        yield "cluster.zookeeper.tls.key_file", zk.tls.key_file, _anything
    if config.cluster.api.tls is not None:
        yield "cluster.api.tls.key_file", config.cluster.api.tls.key_file, _anything
    if config.cluster.api.keys_file:
        yield "cluster.api.keys_file", config.cluster.api.keys_file, _api_keys
    if config.cluster.api.totp_file:
        yield "cluster.api.totp_file", config.cluster.api.totp_file, _totp
    for group, spec in config.groups.items():
        if isinstance(spec.steering, DnsSteering):
            yield (
                f"groups.{group}.steering.tsig.secret_file",
                spec.steering.tsig.secret_file,
                _base64,
            )
    for site, site_spec in config.sites.items():
        for service, service_spec in site_spec.services.items():
            check = service_spec.check
            if isinstance(check, PostgresCheck) and check.password_file:
                yield (
                    f"sites.{site}.services.{service}.check.password_file",
                    check.password_file,
                    _anything,
                )


def secret_file_problems(config: Config) -> tuple[list[str], list[str]]:
    """(errors, warnings), each naming the config path and the file, never the secret."""
    errors: list[str] = []
    warnings: list[str] = []
    if config.cluster.zookeeper.daemon_auth is None:
        warnings.append(
            "cluster.zookeeper.daemon_auth: not set: every ZooKeeper node will be "
            "readable and writable by anyone who can reach the ensemble"
        )
    for where, path, check in secret_files(config):
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            errors.append(f"{where}: {path}: cannot read: {exc.strerror}")
            continue
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                errors.append(f"{where}: {path}: not a regular file")
                continue
            data = handle.read(MAX_FILE_BYTES + 1)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"{where}: {path}: not UTF-8 text")
            continue
        problem = check(text) if len(data) <= MAX_FILE_BYTES else "far too large"
        if problem:
            errors.append(f"{where}: {path}: {problem}")
        elif check is _digest and len(text.strip().partition(":")[2]) < MIN_PASSWORD:
            warnings.append(
                f"{where}: {path}: a password under {MIN_PASSWORD} characters; "
                "its digest is readable by operators and can be guessed offline"
            )
        if info.st_mode & 0o077:
            warnings.append(
                f"{where}: {path}: readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); chmod 600 it"
            )
    return errors, warnings


def _anything(text: str) -> str | None:
    return None if text.strip() else "empty"


def _digest(text: str) -> str | None:
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password or "\n" in text.strip():
        return "expected one line user:password"
    return None


def _api_keys(text: str) -> str | None:
    from failover.api.auth import ApiKeysError, parse_keys

    try:
        parse_keys(text, "")
    except ApiKeysError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def _totp(text: str) -> str | None:
    from failover.api.totp import TotpError, parse_totp_secrets

    try:
        parse_totp_secrets(text, "")
    except TotpError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def _base64(text: str) -> str | None:
    try:
        base64.b64decode(text.strip(), validate=True)
    except ValueError:
        return "not base64"
    return None if text.strip() else "empty"


__all__ = ["secret_file_problems", "secret_files"]
