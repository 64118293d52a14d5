"""Operator commands that talk to ZooKeeper directly, as the operator identity:
`failover status`, `switchover`, `freeze`, `unfreeze` (and, from `cli.history`, `history`
and `explain`).

Exit codes: 0 done, 1 refused or failed (with the reason; ZooKeeper unreachable too),
2 usage or config error.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from failover.api.commands import BadRequest, parse_at
from failover.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    config_option,
    connected,
    duration_or_exit,
    fail,
    identity_option,
    load_or_exit,
    operator_identity,
    timeout_option,
    totp_code,
    totp_option,
    who,
)
from failover.cli.render import render_status
from failover.config import Config
from failover.coord import (
    CommandResult,
    Coordinator,
    CoordinatorError,
)
from failover.coord.snapshot import read_snapshot
from failover.core import Engine, View
from failover.core.commands import FORCEABLE, blocking, prechecks
from failover.core.model import Command, GroupState, PreCheck
from failover.status import build_status

T = TypeVar("T")
POLL_S = 0.02


def poll(read: Callable[[], T | None], timeout_s: float) -> T | None:
    """Call `read` until it returns something (not None), for at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


def await_result(coordinator: Coordinator, command_id: str, timeout_s: float) -> CommandResult:
    result = poll(lambda: coordinator.command_result(command_id), timeout_s)
    if result is None:
        leader = coordinator.leader()
        why = (
            f"{leader.instance} leads but has not answered"
            if leader
            else "no daemon leads the cluster"
        )
        fail(
            f"{command_id}: no result within {timeout_s:g} s ({why}); the command stays "
            "queued and is carried out when a leader takes it"
        )
    return result


def show_result(result: CommandResult) -> None:
    click.echo(
        f"{result.command_id}: {'accepted' if result.ok else 'REFUSED'} "
        f"[{result.code}] by {result.leader} (term {result.term}): {result.sentence}"
    )


# --- status ------------------------------------------------------------------------------------


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh until interrupted (a terminal is redrawn; --json: one line each).",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    metavar="S",
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --watch: stop after N refreshes.",
)
@identity_option
def status(
    config_file: str,
    as_json: bool,
    watch: bool,
    interval_s: float,
    count: int | None,
    identity: str | None,
) -> None:
    """Per group: desired against applied per site, epoch, leader, frozen, budget left,
    pending commands; per site and service: the verdict of each observer site."""
    if count is not None and not watch:
        fail("--count N goes with --watch", EXIT_USAGE)
    config = load_or_exit(config_file)
    with connected(config, operator_identity(config, identity)) as coordinator:
        if watch:
            watch_status(coordinator, config, as_json, interval_s, count)
            return
        doc = build_status(coordinator, config)
    click.echo(json.dumps(doc, indent=2, sort_keys=True) if as_json else render_status(doc, config))


def watch_status(
    coordinator: Coordinator, config: Config, as_json: bool, interval_s: float, count: int | None
) -> None:
    """`status --watch`: redraw every `interval_s` until Ctrl-C (exit 0) or `count` refreshes.

    A read that fails (ZooKeeper away for a moment) is shown and retried, not fatal."""
    redraw = not as_json and sys.stdout.isatty()
    shown = 0
    try:
        while count is None or shown < count:
            started = time.monotonic()
            try:
                doc: dict[str, Any] | None = build_status(coordinator, config)
                problem = ""
            except CoordinatorError as exc:
                doc, problem = None, str(exc) or type(exc).__name__
            if as_json:
                click.echo(
                    json.dumps(
                        doc if doc is not None else {"error": problem, "at": time.time()},
                        sort_keys=True,
                    )
                )
            else:
                if redraw:
                    click.clear()
                click.echo(f"every {interval_s:g} s (Ctrl-C ends)")
                click.echo(
                    render_status(doc, config)
                    if doc is not None
                    else f"cannot read the cluster's state: {problem}; retrying"
                )
                if not redraw:
                    click.echo("")
            shown += 1
            if count is None or shown < count:
                time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return


# --- switchover --------------------------------------------------------------------------------


def show_checks(group: str, checks: tuple[PreCheck, ...], scheduled: bool, force: bool) -> None:
    click.echo(f"{group}: pre-checks")
    width = max(len(check.name) for check in checks)
    for check in checks:
        mark = "pass" if check.passed else "FAIL"
        note = ""
        if not check.passed and force and check.name in FORCEABLE:
            note = " (overridden by --force)"
        elif scheduled and check.name != "target":
            note = " (checked again at the scheduled time)"
        click.echo(f"  {mark}  {check.name.ljust(width)}  {check.detail}{note}")


def read_view(
    coordinator: Coordinator, config: Config, now: float
) -> tuple[View, dict[str, GroupState | None]]:
    cluster = read_snapshot(coordinator, list(config.groups))
    states: dict[str, GroupState | None] = {g: cluster.states.get(g) for g in config.groups}
    return View(now, cluster.observations, cluster.applied), states


@click.command()
@config_option
@click.option("--to", "site", required=True, metavar="SITE", help="The site to make active.")
@click.option(
    "--group",
    default=None,
    metavar="GROUP",
    help="Only this group (default: every group not already on SITE).",
)
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@click.option("--force", is_flag=True, help="Override the health, freeze and budget checks.")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="TIME",
    help="Schedule it: ISO 8601 time or +30s / +5m.",
)
@click.option(
    "--expires",
    "expires_text",
    default=None,
    metavar="DURATION",
    help="The override lapses after this long (30m, 2h); then the policy decides: "
    "with manual failback nothing moves back, with auto failback it moves back only "
    "as an automatic failback (preferred site healthy long enough, not blocked).",
)
@click.option(
    "--graceful/--abrupt",
    "graceful",
    default=None,
    help="Graceful: a planned switchover that loses nothing (DNS: a short TTL one old TTL "
    "before the switch, the configured one after; BGP: the old site held while it drains). "
    "Default: policy.graceful_switchover.",
)
@click.option("--wait", is_flag=True, help="Return when every site applied and verified it.")
@timeout_option("60s")
@identity_option
@totp_option
def switchover(
    config_file: str,
    site: str,
    group: str | None,
    reason: str,
    force: bool,
    at_text: str | None,
    expires_text: str | None,
    graceful: bool | None,
    wait: bool,
    timeout: str,
    identity: str | None,
    totp: str | None,
) -> None:
    """Make SITE the active site: print every pre-check with pass/fail and why, submit the
    command, and print the leader's result."""
    config = load_or_exit(config_file)
    if site not in config.serving_sites:
        fail(
            f"--to: {site!r} is not a serving site ({', '.join(config.serving_sites)})", EXIT_USAGE
        )
    if group is not None and group not in config.groups:
        fail(f"--group: unknown group {group!r} (known: {', '.join(config.groups)})", EXIT_USAGE)
    timeout_s = duration_or_exit(timeout, "--timeout")
    expires_s = None if expires_text is None else duration_or_exit(expires_text, "--expires")
    at: float | None = None
    if at_text is not None:
        try:
            at = parse_at(at_text, time.time())
        except BadRequest as exc:
            fail(f"--at: {exc}", EXIT_USAGE)
    engine = Engine(config)
    me = operator_identity(config, identity)
    code = totp_code(config, "switchover", force, totp)
    with connected(config, me) as coordinator:
        now = time.time()
        view, states = read_view(coordinator, config, now)
        health = engine.assess(view)
        scheduled = at is not None and at > now
        todo: list[str] = []
        refused: list[str] = []
        for name in [group] if group else list(config.groups):
            state = states[name] or engine.initial(name, now)
            checks = prechecks(engine, state, health[name], site, now)
            if (
                group is None
                and not checks[0].passed
                and state.active == site
                and state.phase != "switching"
            ):
                click.echo(f"{name}: already on {site}; left as it is")
                continue
            show_checks(name, checks, scheduled, force)
            stops = blocking(checks, scheduled, force)
            refused += [f"{name}: {check.name}: {check.detail}" for check in stops]
            todo.append(name)
        if refused:
            fail(
                "switchover refused: "
                + "; ".join(refused)
                + ("" if force else " (--force overrides target_healthy, not_frozen, budget)")
            )
        if not todo:
            fail(f"switchover refused: every group is already on {site}")
        if code is not None and len(todo) > 1:
            fail(
                f"a second factor code is used once, and {len(todo)} groups would switch "
                f"({', '.join(todo)}): switch them one at a time with --group",
                EXIT_USAGE,
            )
        submitted: dict[str, tuple[str, float]] = {}
        for name in todo:
            command = Command(
                "",
                "switchover",
                who(me),
                reason,
                name,
                site,
                force,
                at,
                expires_s,
                time.time(),
                graceful=graceful,
            )
            command = replace(command, totp=code)
            submitted[name] = (coordinator.submit(command), time.monotonic())
            click.echo(f"{name}: submitted {submitted[name][0]}")
        results = {
            name: await_result(coordinator, cid, timeout_s) for name, (cid, _) in submitted.items()
        }
        for result in results.values():
            show_result(result)
        if not all(result.ok for result in results.values()):
            raise SystemExit(EXIT_FAILED)
        if wait:
            extra_s = max(0.0, (at or 0.0) - time.time())
            if config.policy.graceful_switchover if graceful is None else graceful:
                policy = config.policy  # the plan's stages: at most this much longer
                ttl_s = max(
                    (float(getattr(g.steering, "ttl", 0)) for g in config.groups.values()),
                    default=0.0,
                )
                extra_s += 2 * ttl_s + policy.drain_s + 3 * policy.graceful_verify_s
            for name, (_, started) in submitted.items():
                wait_applied(coordinator, config, name, site, started, timeout_s + extra_s)


def wait_applied(
    coordinator: Coordinator,
    config: Config,
    group: str,
    site: str,
    started: float,
    timeout_s: float,
) -> None:
    """Until the group is steady on `site`, any graceful switchover ended, and every serving
    site applied it, verified."""
    last: list[str] = []

    def done() -> bool | None:
        state, _ = coordinator.desired(group)
        if state is None or state.active != site or state.phase != "steady":
            last[:] = [
                f"desired state is {state.phase if state else 'absent'}"
                + (f" on {state.active}, epoch {state.epoch}" if state else "")
            ]
            return None
        if state.graceful is not None:
            last[:] = [f"graceful switchover {state.graceful.stage}"]
            return None
        applied = coordinator.applied(group)
        behind = [
            s
            for s in config.serving_sites
            if s not in applied or applied[s].epoch < state.epoch or not applied[s].verified
        ]
        if behind:
            last[:] = [
                f"{s} "
                + (
                    f"applied epoch {applied[s].epoch}"
                    + ("" if applied[s].verified else " unverified")
                    + (f" ({applied[s].detail})" if applied[s].detail else "")
                    if s in applied
                    else "applied nothing"
                )
                + f", wants epoch {state.epoch}"
                for s in behind
            ]
            return None
        return True

    if poll(done, timeout_s) is None:
        fail(f"{group}: not applied and verified within {timeout_s:g} s: " + "; ".join(last))
    took_s = time.monotonic() - started
    click.echo(f"{group}: applied and verified on {site} in {took_s:.2f} s")


# --- freeze, unfreeze --------------------------------------------------------------------------


def _freeze_command(
    kind: str,
    config_file: str,
    group: str | None,
    reason: str,
    timeout: str,
    identity: str | None,
    totp: str | None,
) -> None:
    config = load_or_exit(config_file)
    if group is not None and group not in config.groups:
        fail(f"--group: unknown group {group!r} (known: {', '.join(config.groups)})", EXIT_USAGE)
    timeout_s = duration_or_exit(timeout, "--timeout")
    me = operator_identity(config, identity)
    code = totp_code(config, kind, False, totp)
    with connected(config, me) as coordinator:
        command = Command(
            "",
            kind,  # type: ignore[arg-type]
            who(me),
            reason,
            group,
            requested_at=time.time(),
            totp=code,
        )
        command_id = coordinator.submit(command)
        result = await_result(coordinator, command_id, timeout_s)
        show_result(result)
        if not result.ok:
            raise SystemExit(EXIT_FAILED)


def _freeze_options(command: Callable[..., None]) -> click.Command:
    """freeze and unfreeze take the same options."""
    for option in reversed(
        (
            config_option,
            click.option(
                "--group", default=None, metavar="GROUP", help="Only this group (default: all)."
            ),
            click.option("--reason", default="", help="Why (kept in the audit trail)."),
            timeout_option("30s"),
            identity_option,
            totp_option,
        )
    ):
        command = option(command)
    return click.command()(command)


def _freeze_like(kind: str, doc: str) -> click.Command:
    """The `freeze` or `unfreeze` command: the same options, one kind of command."""

    def command(**options: Any) -> None:
        _freeze_command(kind, **options)

    command.__name__ = kind
    command.__doc__ = doc
    return _freeze_options(command)


freeze = _freeze_like(
    "freeze", "Freeze automation: no automatic switch until `unfreeze` (switchover still works)."
)
unfreeze = _freeze_like("unfreeze", "Let automation act again.")
