"""`failover shadow --config CANDIDATE.yaml`: the candidate's decisions beside the live
leader's, read-only, with Prometheus metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from types import FrameType

import click

from failover.cli.common import EXIT_USAGE, fail, load_or_exit


@click.command()
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The candidate config (the live cluster's, changed where you want).",
)
@click.option(
    "--listen",
    default="127.0.0.1:8790",
    show_default=True,
    help="host:port where /metrics is served.",
)
@click.option(
    "--for",
    "for_s",
    type=float,
    default=None,
    help="Stop after this many seconds (default: until SIGTERM or Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per divergence.")
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="How `failover status` names this shadow (default: host-pid).",
)
def shadow(
    config_file: str, listen: str, for_s: float | None, as_json: bool, name: str | None
) -> None:
    """Follow the live cluster read-only and run a candidate config's decisions beside it.

    Connects to ZooKeeper with the operator identity, reads what the leader reads each
    cycle, runs the candidate's decisions on its own copy of the desired state, writes
    nothing and steers nothing. Prints each divergence (both reasons) and when a group
    agrees again; serves failover_shadow_divergences_total{group,kind} and
    failover_shadow_agree on /metrics; `failover status` shows it attached and how far it
    diverges (a node that lives as long as its session).
    """
    from prometheus_client import CollectorRegistry, start_http_server

    from failover.cli.common import connected
    from failover.cli.replay import stamp
    from failover.config.model import split_host_port
    from failover.coord import CoordinatorError
    from failover.record.shadow import Shadow, ShadowMetrics

    config = load_or_exit(config_file)
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        fail(f"--name: {name!r} is not a plain name (letters, digits, . _ -)", EXIT_USAGE)
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        fail(f"--listen: {exc}", EXIT_USAGE)
    follower = Shadow(config)
    registry = CollectorRegistry()
    registry.register(ShadowMetrics(follower))
    try:
        server, _ = start_http_server(port, host, registry)
    except OSError as exc:
        fail(f"--listen {listen}: {exc.strerror or exc}", EXIT_USAGE)
    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    deadline = None if for_s is None else time.monotonic() + for_s
    cycle_s = config.cluster.daemon.cycle_s
    click.echo(
        f"shadow of cluster {config.cluster.name}: metrics on http://{listen}/metrics", err=True
    )
    problem = ""
    try:
        with connected(config) as coordinator:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                try:
                    now = time.time()
                    events = follower.step(coordinator, now)
                    coordinator.announce_shadow(name, follower.summary(now))
                except CoordinatorError as exc:
                    if str(exc) != problem:
                        click.echo(f"failover: shadow: {exc}; trying again", err=True)
                    problem = str(exc)
                    events = []
                for event in events:
                    if as_json:
                        click.echo(json.dumps(event.as_dict()))
                        continue
                    live, mine = event.live, event.shadow
                    what = f"diverges ({event.kind})" if event.kind else "agrees again"
                    click.echo(
                        f"{stamp(event.at)} {event.group} {what}\n"
                        f"  live    {live.active:<5} {live.phase:<9} {live.code}: "
                        f"{live.reason}\n"
                        f"  shadow  {mine.active:<5} {mine.phase:<9} {event.said[0]}: "
                        f"{event.said[1]}"
                    )
                stop.wait(cycle_s)
    finally:
        server.shutdown()
        follower.close()
