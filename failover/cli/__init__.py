"""The `failover` command: one click group; each subcommand lives in its own module."""

from __future__ import annotations

import sys

import click

from failover.cli.common import EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="failover")
def cli() -> None:
    """High-availability failover controller for a service run from two data centres."""


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


def _register() -> None:
    from failover.cli import daemon, probe, validate
    from failover.cli import demo as demo_commands
    from failover.cli import lab as lab_commands
    from failover.cli import operator as operator_commands
    from failover.cli import sim as sim_commands

    for module in (validate, probe, lab_commands, daemon, sim_commands, operator_commands,
                   demo_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()

__all__ = ["EXIT_USAGE", "cli", "main"]
