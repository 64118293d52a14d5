"""What every subcommand shares: exit codes and loading the config without a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from failover.config import Config, ConfigError, load_config

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
