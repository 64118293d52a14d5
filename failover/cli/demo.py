"""`failover demo`: the whole system in the lab, a database failure, and the switch back."""

from __future__ import annotations

import os
import sys

import click

from failover.cli.common import EXIT_FAILED, fail


@click.command()
def demo() -> None:
    """Build the lab with ZooKeeper, real services and three daemons; stop dc1's database;
    show traffic moving to dc2 and how long it took; switch back by hand; tear it all down."""
    if os.geteuid() != 0:
        fail("the demo builds the lab in network namespaces: run it as root", EXIT_FAILED)
    from failover.demo import Demo
    from failover.testing.lab import unavailable

    reason = unavailable()
    if reason:
        fail(f"the lab cannot run here: {reason}", EXIT_FAILED)
    sys.exit(Demo(echo=lambda line: click.echo(line)).run())
