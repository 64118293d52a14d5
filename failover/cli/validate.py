"""`failover validate FILE`: ok (and any risky timer as a warning), or every problem by its
dotted path (exit 2)."""

from __future__ import annotations

import sys

import click

from failover.cli.common import EXIT_USAGE, config_argument, load_or_exit
from failover.config import BgpSteering, Config
from failover.config.secret_files import secret_file_problems


@click.command()
@config_argument
@click.option("--explain", is_flag=True, help="Also describe what the config sets up.")
def validate(config_file: str, explain: bool) -> None:
    """Validate a cluster config: print `ok`, or every error with its path, and exit 2.

    A valid config whose timers are risky (a false failover on a short stall, checks that
    overlap, a session timeout ZooKeeper will not grant) also gets warnings on stderr (exit 0).
    """
    from failover.config.rules import timer_warnings

    config = load_or_exit(config_file)
    errors, warnings = secret_file_problems(config)
    for warning in warnings:
        click.echo(f"{config_file}: warning: {warning}", err=True)
    if errors:
        for error in errors:
            click.echo(f"{config_file}: {error}", err=True)
        click.echo(f"{config_file}: {len(errors)} error(s)", err=True)
        sys.exit(EXIT_USAGE)
    click.echo("ok")
    for warning in timer_warnings(config):
        click.echo(f"{config_file}: warning: {warning}", err=True)
    if explain:
        click.echo(describe(config))


def describe(config: Config) -> str:
    """A plain-language summary of a valid config, for operators and the demo."""
    zk = config.cluster.zookeeper
    lines = [
        f"cluster {config.cluster.name}: ZooKeeper {','.join(zk.hosts)}{zk.chroot}, "
        f"session {zk.session_timeout_s:g} s"
    ]
    for name, site in config.sites.items():
        services = ", ".join(
            f"{s} ({svc.kind}, {svc.check.type}, {svc.role})" for s, svc in site.services.items()
        )
        lines.append(f"site {name} [{site.role}]: {services or 'observes and votes only'}")
    for name, instance in config.instances.items():
        lines.append(
            f"instance {name} in {instance.site}: roles {', '.join(instance.roles)}, "
            f"API {instance.api}"
        )
    for name, group in config.groups.items():
        steering = group.steering
        how = (
            f"BGP {steering.prefix} (lease {steering.lease_s:g} s, backup "
            f"{'announced' if steering.backup else 'withdrawn'})"
            if isinstance(steering, BgpSteering)
            else f"DNS {', '.join(steering.names)} in {steering.zone} (ttl {steering.ttl})"
        )
        lines.append(
            f"group {name}: {', '.join(group.services)} moved by {how}; "
            f"preferred site {config.preferred_site(name)}"
        )
    policy = config.policy
    lines.append(
        f"policy: a site is down when {config.observer_quorum} of "
        f"{len(config.observer_sites)} observer sites agree; hold-down {policy.hold_down_s:g} s, "
        f"cooldown {policy.cooldown_s:g} s, at most {policy.max_switches_per_hour} switches "
        f"an hour, failback {policy.failback}"
    )
    return "\n".join(lines)
