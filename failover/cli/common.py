"""What every subcommand shares: exit codes, loading the config without a traceback, the
`--config`/`--timeout` options, durations, and an operator's ZooKeeper session."""

from __future__ import annotations

import contextlib
import getpass
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

import click

from failover.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from failover.coord import Coordinator

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


@contextlib.contextmanager
def connected(config: Config) -> Iterator[Coordinator]:
    """A ZooKeeper session as the operator; any coordinator error ends the command (exit 1)."""
    from failover.coord import CoordinatorError, CoordinatorUnavailable, NotAuthorized
    from failover.coord.zookeeper import ZooKeeperCoordinator

    for name in ("failover.coord", "kazoo"):  # the session's retries are not the user's news
        logging.getLogger(name).setLevel(logging.CRITICAL)
    zk = config.cluster.zookeeper
    try:
        coordinator = ZooKeeperCoordinator.from_config(
            config, f"operator-{operator_name()}", role="operator"
        )
    except CoordinatorError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        coordinator.connect(timeout_s=min(zk.session_timeout_s, 5.0))
        yield coordinator
    except NotAuthorized as exc:
        fail(
            f"ZooKeeper refused the operator identity: {exc} "
            "(check cluster.zookeeper.operator_auth)"
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
