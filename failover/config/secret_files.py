"""The secret files a config names: present, readable, well-formed, and kept private.

`failover validate` reads each one (never printing what it holds): a missing, unreadable or
malformed secret file is an error found before the daemon needs it (a TSIG secret used to be
read only when the leader first steered); a group- or world-readable one is a warning.
"""

from __future__ import annotations

import base64
import math
import os
import stat
from collections.abc import Callable, Iterator

from failover.config.load import MAX_FILE_BYTES
from failover.config.model import Config, DnsSteering, PostgresCheck

# A ZooKeeper digest id is an unsalted SHA-1 of `user:password`, and whoever may read a node
# may read its ACL (`getACL`): operators can read the daemons' digest (and each other's) and
# search for the password offline, at billions of guesses a second on one GPU. So a ZooKeeper
# password must be long and random: at least MIN_PASSWORD characters and MIN_PASSWORD_BITS
# estimated (length x log2 of the alphabet its character classes span; a character used
# for more than a quarter of it, or a pattern of few characters, counts for little).
# `openssl rand -base64 30` gives about 240.
MIN_PASSWORD = 20
MIN_PASSWORD_BITS = 120
_CLASSES = (
    (26, str.islower),
    (26, str.isupper),
    (10, str.isdigit),
)


def secret_files(config: Config) -> Iterator[tuple[str, str, Callable[[str], str | None]]]:
    """(dotted path in the config, file, a check of its text) for every secret file."""
    zk = config.cluster.zookeeper
    for name, auth in (("daemon_auth", zk.daemon_auth), ("operator_auth", zk.operator_auth)):
        if auth is not None:
            yield (f"cluster.zookeeper.{name}.credentials_file", auth.credentials_file, _digest)
    for operator, identity in zk.operators.items():
        if identity.credentials_file is not None:
            yield (
                f"cluster.zookeeper.operators.{operator}.credentials_file",
                identity.credentials_file,
                _operator_digest(operator),
            )
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
    zk = config.cluster.zookeeper
    if zk.daemon_auth is None and not zk.insecure_open_acl:
        errors.append(
            "cluster.zookeeper.daemon_auth: not set: every ZooKeeper node would be readable "
            "and writable by anyone who can reach the ensemble (set daemon_auth, or "
            "insecure_open_acl: true for a lab on loopback)"
        )
    elif zk.daemon_auth is None:
        warnings.append(
            "cluster.zookeeper.insecure_open_acl: INSECURE: no daemon_auth, so every "
            "ZooKeeper node is readable and writable by anyone who can reach the ensemble"
        )
    if zk.operator_auth is not None and zk.operators:
        warnings.append(
            "cluster.zookeeper.operator_auth: a shared operator identity beside operators: "
            "its commands are audited as that one identity, whoever sent them"
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
        elif where.startswith("cluster.zookeeper."):
            weak = weak_password(text.strip().partition(":")[2])
            if weak:
                errors.append(f"{where}: {path}: {weak}")
        if info.st_mode & 0o077:
            warnings.append(
                f"{where}: {path}: readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); chmod 600 it"
            )
    return errors, warnings


def password_bits(password: str) -> float:
    """A generous estimate of a password's strength against an offline search, in bits."""
    if not password:
        return 0.0
    alphabet = sum(size for size, test in _CLASSES if any(test(c) for c in password))
    if any(not (c.isascii() and c.isalnum()) for c in password):
        alphabet += 33
    most = max(password.count(c) for c in set(password))
    length = len(password) - max(0, most - len(password) // 4)  # repeats add little,
    length = min(length, 4 * len(set(password)))  # and so do patterns of few characters
    return length * math.log2(max(alphabet, 2))


def weak_password(password: str) -> str | None:
    """Why a ZooKeeper password is too weak (its digest can be read and searched offline)."""
    bits = password_bits(password)
    if len(password) >= MIN_PASSWORD and bits >= MIN_PASSWORD_BITS:
        return None
    return (
        f"the password is too weak ({len(password)} characters, about {bits:.0f} bits; at "
        f"least {MIN_PASSWORD} characters and {MIN_PASSWORD_BITS} bits): its digest is "
        "readable by operators and can be searched offline (use `openssl rand -base64 30`)"
    )


def _operator_digest(name: str) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        problem = _digest(text)
        user = text.strip().partition(":")[0]
        if problem is None and user != name:
            return f"names user {user!r}, not the operator {name!r}"
        return problem

    return check


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


__all__ = ["password_bits", "secret_file_problems", "secret_files", "weak_password"]
