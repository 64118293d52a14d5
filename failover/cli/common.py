"""What every subcommand shares: exit codes, loading the config without a traceback, the
`--config`/`--timeout` options, durations, and an operator's ZooKeeper session."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

import click

from failover.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from failover.coord import Coordinator
    from failover.coord.zklayout import Identity

EXIT_OK = 0
EXIT_FAILED = 1  # a refused or failed operation, a failing check
EXIT_USAGE = 2  # usage or configuration error

config_argument = click.argument("config_file", metavar="FILE", type=click.Path(dir_okay=False))


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"failover: {message}", err=True)
    sys.exit(code)


def load_or_exit(path: str) -> Config:
    """Load a config, or print every problem by its path and exit 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        click.echo(f"{exc.source}: {len(exc.problems)} error(s)", err=True)
        sys.exit(EXIT_USAGE)


config_option = click.option(
    "--config",
    "config_file",
    envvar="FAILOVER_CONFIG",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="The cluster config (default: $FAILOVER_CONFIG).",
)


def timeout_option(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--timeout",
        "timeout",
        default=default,
        show_default=True,
        metavar="DURATION",
        help="The longest to wait for the leader.",
    )


def operator_name() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment (no passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


identity_option = click.option(
    "--identity",
    envvar="FAILOVER_IDENTITY",
    default=None,
    metavar="NAME|FILE",
    help="Your own ZooKeeper identity: an operator of cluster.zookeeper.operators whose "
    "credentials_file the config names, or a file holding name:password "
    "(default: $FAILOVER_IDENTITY, else the shared operator_auth).",
)


def operator_identity(config: Config, identity: str | None) -> Identity | None:
    """The identity the CLI talks to ZooKeeper as (None: the config's shared operator_auth);
    a missing or unusable one ends the command (exit 2)."""
    from failover.coord import CoordinatorError
    from failover.coord.zklayout import read_identity

    zk = config.cluster.zookeeper
    if identity is None:
        if zk.operators and zk.operator_auth is None:
            fail(
                "no operator identity: give --identity NAME|FILE or set FAILOVER_IDENTITY "
                f"(operators: {', '.join(zk.operators)})",
                EXIT_USAGE,
            )
        return None
    known = zk.operators.get(identity)
    path = known.credentials_file if known is not None else identity
    if known is not None and path is None:
        fail(
            f"--identity: the config has only the digest of {identity!r}; give the file "
            "holding its name:password",
            EXIT_USAGE,
        )
    try:
        return read_identity(str(path), "--identity")
    except CoordinatorError as exc:
        fail(str(exc), EXIT_USAGE)


totp_option = click.option(
    "--totp",
    default=None,
    metavar="CODE",
    help="Your current TOTP code, when the config asks for a second factor "
    "(cluster.api.totp_file and totp_actions; a forced switchover always); asked for on a "
    "terminal if missing.",
)


def totp_code(config: Config, kind: str, force: bool, given: str | None) -> str | None:
    """The second factor this write carries (None when the config asks for none); asked for
    on a terminal, else a missing or malformed one ends the command (exit 2)."""
    options = config.cluster.api
    if options.totp_file is None or not (force or kind in options.totp_actions):
        return given
    if given is None:
        if not sys.stdin.isatty():
            fail(
                f"{kind}{' --force' if force else ''} needs a second factor: --totp CODE",
                EXIT_USAGE,
            )
        given = str(click.prompt("TOTP code", hide_input=False)).strip()
    if not (len(given) == 6 and given.isdigit()):
        fail("--totp: a TOTP code is 6 digits", EXIT_USAGE)
    return given


def who(identity: Identity | None) -> str:
    """What a command says about who sent it (the leader records the identity that queued
    it; with the shared identity this claim is kept beside it)."""
    return identity.user if identity is not None else operator_name()


@contextlib.contextmanager
def connected(config: Config, identity: Identity | None = None) -> Iterator[Coordinator]:
    """A ZooKeeper session as the operator; any coordinator error ends the command (exit 1)."""
    from failover.coord import CoordinatorError, CoordinatorUnavailable, NotAuthorized
    from failover.coord.zookeeper import ZooKeeperCoordinator

    for name in ("failover.coord", "kazoo"):  # the session's retries are not the user's news
        logging.getLogger(name).setLevel(logging.CRITICAL)
    zk = config.cluster.zookeeper
    if identity is None:
        identity = operator_identity(config, os.environ.get("FAILOVER_IDENTITY") or None)
    try:
        coordinator = ZooKeeperCoordinator.from_config(
            config, f"operator-{operator_name()}", role="operator", identity=identity
        )
    except CoordinatorError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        coordinator.connect(timeout_s=min(zk.session_timeout_s, 5.0))
        yield coordinator
    except NotAuthorized as exc:
        fail(
            f"ZooKeeper refused the operator identity: {exc} "
            "(check --identity, or cluster.zookeeper.operator_auth)"
        )
    except CoordinatorUnavailable as exc:
        fail(f"ZooKeeper unreachable ({', '.join(zk.hosts)}): {exc}")
    except CoordinatorError as exc:
        fail(f"ZooKeeper: {exc}")
    finally:
        coordinator.close()


def duration_or_exit(text: str, what: str) -> float:
    from failover.api.commands import BadRequest, parse_duration

    try:
        return parse_duration(text)
    except BadRequest as exc:
        fail(f"{what}: {exc}", EXIT_USAGE)
