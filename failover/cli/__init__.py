"""The `failover` command: one click group; each subcommand lives in its own module.

The group loads a subcommand's module only when that subcommand runs, so `failover --version`,
`--help` and `validate` import click and (for validate) the config models, not kazoo, pyroute2,
aiohttp or the lab. `--help` lists the commands from the one-line summaries in `COMMANDS`
below; tests/cli/test_start.py checks that they match the commands' own help.
"""

from __future__ import annotations

import importlib
import sys

import click
from click.shell_completion import CompletionItem

from failover import __version__

EXIT_USAGE = 2  # the same value as failover.cli.common.EXIT_USAGE, without importing the config

# name -> (module under failover.cli, attribute, one-line summary for `failover --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "validate",
        "validate",
        "Validate a cluster config: print `ok`, or every error with its path, and exit 2.",
    ),
    "schema": (
        "schema",
        "schema",
        "Print the JSON Schema of the cluster config (for editors and yaml-language-server).",
    ),
    "probe": (
        "probe",
        "probe",
        "Run every configured check once and print site, service, kind, target, "
        "verdict, latency and reason.",
    ),
    "run": ("daemon", "run", "Run one daemon instance: observer, leader and agent roles."),
    "demote": (
        "daemon",
        "demote",
        "Stop hook: demote this instance's site from primary to held (never withdraw).",
    ),
    "supervise": (
        "daemon",
        "supervise",
        "Run COMMAND as systemd would with Type=notify, WatchdogSec= and ExecStopPost=.",
    ),
    "status": (
        "operator",
        "status",
        "Per group: desired against applied per site, epoch, leader, frozen, budget "
        "left, pending commands; per site and service: the verdict of each observer "
        "site.",
    ),
    "switchover": (
        "operator",
        "switchover",
        "Make SITE the active site: print every pre-check with pass/fail and why, "
        "submit the command, and print the leader's result.",
    ),
    "freeze": (
        "operator",
        "freeze",
        "Freeze automation: no automatic switch until `unfreeze` (switchover still works).",
    ),
    "unfreeze": ("operator", "unfreeze", "Let automation act again."),
    "history": (
        "history",
        "history",
        "The audit trail, oldest first: seq, time, kind, group, code, by, sentence.",
    ),
    "explain": (
        "history",
        "explain",
        "One decision: ID is an audit entry's number (as `history` shows it) or a "
        "command id (cmd-..., alice.cmd-...): the decision, the rule that fired, its "
        "inputs, the pre-checks, who and why.",
    ),
    "gameday": (
        "sim",
        "gameday",
        "Run a game-day PLAYBOOK in the simulator: a timeline and a verdict per expectation.",
    ),
    "replay": (
        "replay",
        "replay",
        "Replay recorded leader cycles (files under cluster.daemon.record_dir).",
    ),
    "shadow": (
        "shadow",
        "shadow",
        "Follow the live cluster read-only and run a candidate config's decisions beside it.",
    ),
    "chaos": ("sim", "chaos", "Run a chaos CAMPAIGN: many seeded random runs, summarised."),
    "lab": ("lab", "lab", "Build, inspect or remove the lab (namespaces fo-*, BIRD, BIND)."),
    "demo": (
        "demo",
        "demo",
        "Build the lab with ZooKeeper, real services and three daemons; stop dc1's "
        "database; show traffic moving to dc2 and how long it took; switch back by hand; "
        "tear it all down.",
    ),
    "completion": (
        "completion",
        "completion",
        "Print the shell completion script for bash, zsh or fish.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used, listed from `COMMANDS` in help."""

    def __init__(
        self, *args: object, lazy: dict[str, tuple[str, str, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return self.commands.get(cmd_name)
        module_name, attribute, _ = self.lazy[cmd_name]
        module = importlib.import_module(f"failover.cli.{module_name}")
        command = getattr(module, attribute)
        assert isinstance(command, click.Command)
        self.add_command(command, cmd_name)
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Subcommand names (with their summaries) and the group's options, importing nothing."""
        items = [
            CompletionItem(
                name,
                help=self.lazy[name][2]
                if name in self.lazy
                else self.commands[name].get_short_help_str(),
            )
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (
                name,
                self.lazy[name][2]
                if name in self.lazy and name not in self.commands
                else self.commands[name].get_short_help_str(1000),
            )
            for name in self.list_commands(ctx)
        ]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl(
                [
                    (name, click.Command(name, help=summary).get_short_help_str(limit))
                    for name, summary in rows
                ]
            )


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failover")
def cli() -> None:
    """High-availability failover controller for a service run from two data centres."""


def main() -> None:
    try:
        cli.main(prog_name="failover", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["COMMANDS", "EXIT_USAGE", "LazyGroup", "cli", "main"]
