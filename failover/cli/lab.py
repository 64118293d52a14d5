"""`failover lab up|down|status`: the two-site lab in network namespaces on this host."""

from __future__ import annotations

import os

import click

from failover.cli.common import EXIT_FAILED, fail, load_or_exit
from failover.lab import EXAMPLE_CONFIG, Lab, LabError

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=str(EXAMPLE_CONFIG),
    show_default=True,
    help="The cluster config the lab serves (prefixes, zones, TSIG keys).",
)


def _lab(config_file: str) -> Lab:
    if os.geteuid() != 0:
        fail("the lab creates network namespaces: run it as root", EXIT_FAILED)
    return Lab(load_or_exit(config_file))


@click.group()
def lab() -> None:
    """Build, inspect or remove the lab (namespaces fo-*, BIRD, BIND)."""


@lab.command()
@config_option
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds to wait for BGP sessions and name servers.",
)
def up(config_file: str, timeout_s: float) -> None:
    """Create the lab, or complete it (idempotent)."""
    the_lab = _lab(config_file)
    try:
        status = the_lab.up(timeout_s)
    except (LabError, TimeoutError) as exc:
        fail(f"lab up: {exc}")
    click.echo("\n".join(status.lines()))


@lab.command()
@config_option
def down(config_file: str) -> None:
    """Remove every namespace, link, process and file the lab made."""
    try:
        removed = _lab(config_file).down()
    except LabError as exc:
        fail(f"lab down: {exc}")
    click.echo("\n".join(f"removed {what}" for what in removed) or "nothing to remove")


@lab.command()
@config_option
def status(config_file: str) -> None:
    """What runs, the BGP sessions and the isp's current best route."""
    try:
        lines = _lab(config_file).status().lines()
    except LabError as exc:
        fail(f"lab status: {exc}")
    click.echo("\n".join(lines))
