"""`failover run`, the stop hook `failover demote`, and the lab's `failover supervise`."""

from __future__ import annotations

import asyncio
import sys

import click

from failover.cli.common import EXIT_USAGE, fail, load_or_exit


def _instance(config_file: str, instance: str):  # type: ignore[no-untyped-def]
    config = load_or_exit(config_file)
    if instance not in config.instances:
        fail(
            f"{config_file}: instances: no instance {instance!r} "
            f"(known: {', '.join(config.instances)})",
            EXIT_USAGE,
        )
    return config


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--instance", required=True, help="This daemon's name under `instances`.")
@click.option(
    "--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
@click.option(
    "--clock-offset-s",
    type=click.FloatRange(-86400, 86400),
    default=0.0,
    hidden=True,
    help="Testing only: stamp observations with a wall clock this far "
    "off, as a site whose NTP failed would.",
)
def run(config_file: str, instance: str, log_level: str, clock_offset_s: float) -> None:
    """Run one daemon instance: observer, leader and agent roles."""
    from failover.daemon import log
    from failover.daemon.runner import Daemon

    config = _instance(config_file, instance)
    from failover.config.secret_files import secret_file_problems

    errors, _ = secret_file_problems(config)  # found now, not when first needed
    if errors:
        for error in errors:
            click.echo(f"{config_file}: {error}", err=True)
        sys.exit(EXIT_USAGE)
    log.setup(instance, log_level)
    from failover.api.connections import raise_descriptor_limit

    raise_descriptor_limit()  # the probes' share must survive whatever the API is sent

    async def main() -> int:
        daemon = Daemon(config, instance, config_path=config_file)
        daemon.clock_offset_s = clock_offset_s
        return await daemon.run()

    sys.exit(asyncio.run(main()))


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--instance", required=True)
def demote(config_file: str, instance: str) -> None:
    """Stop hook: demote this instance's site from primary to held (never withdraw).

    Run by the supervisor (systemd ExecStopPost=) after the daemon ends, however it ended.
    A held site stays preferred over a backup: until a leader promotes the other site the
    traffic stays where it is, and a daemon restarted soon takes primary back.
    """
    from failover.daemon.runner import bgp_steerers

    config = _instance(config_file, instance)
    site = config.instances[instance].site
    failed = False
    for group, steerer in bgp_steerers(config, site).items():
        seen = steerer.read()
        if seen.announcement != "primary":
            click.echo(f"{group} at {site}: {seen.announcement}; nothing to demote")
            continue
        announce = steerer.announce
        result = announce("held", 0)
        failed |= result.outcome == "failed"
        click.echo(f"{group} at {site}: primary -> {result.announcement} ({result.outcome})")
    sys.exit(1 if failed else 0)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--watchdog-s",
    type=click.FloatRange(min=0.1),
    required=True,
    help="Kill the child when it sends no WATCHDOG=1 for this long.",
)
@click.option("--stop-hook", default="", help="Command run whenever the child ends.")
@click.option(
    "--restart-s",
    type=click.FloatRange(min=0),
    default=None,
    help="Restart the child this long after it ends (default: do not).",
)
@click.option(
    "--nice",
    type=click.IntRange(-20, 19),
    default=None,
    help="Start the child with this nice value (systemd's Nice=).",
)
@click.option(
    "--sched",
    type=click.Choice(["other", "batch", "idle", "fifo", "rr"]),
    default=None,
    help="Scheduling policy of the child (CPUSchedulingPolicy=); "
    "fifo and rr are real-time and reset on fork, so check commands run normally.",
)
@click.option(
    "--sched-priority",
    type=click.IntRange(0, 99),
    default=0,
    help="Real-time priority 1..99 for --sched fifo or rr (CPUSchedulingPriority=).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def supervise(
    watchdog_s: float,
    stop_hook: str,
    restart_s: float | None,
    nice: int | None,
    sched: str | None,
    sched_priority: int,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as systemd would with Type=notify, WatchdogSec= and ExecStopPost=.

    --nice, --sched and --sched-priority start it as Nice=, CPUSchedulingPolicy= and
    CPUSchedulingPriority= would (with CPUSchedulingResetOnFork=yes)."""
    import shlex

    from failover.daemon.supervisor import (
        Priority,
        PriorityError,
        Supervisor,
        SupervisorOptions,
    )

    try:
        priority = Priority(nice=nice, policy=sched, rt_priority=sched_priority)
    except ValueError as exc:
        fail(f"supervise: {exc}", EXIT_USAGE)
    options = SupervisorOptions(
        command=command,
        watchdog_s=watchdog_s,
        stop_hook=shlex.split(stop_hook),
        restart_s=restart_s,
        priority=priority,
    )
    try:
        sys.exit(Supervisor(options).run())
    except PriorityError as exc:
        fail(f"supervise: {exc}", EXIT_USAGE)
