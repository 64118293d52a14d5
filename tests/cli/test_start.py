"""The CLI loads a subcommand's module only when it runs; `--help` lists them all anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from failover import __version__
from failover.cli import COMMANDS, LazyGroup, cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pyroute2",
    "kazoo",
    "aiohttp",
    "asyncpg",
    "matplotlib",
    "failover.lab",
    "failover.sim",
    "failover.daemon",
    "failover.steer",
    "failover.coord",
)


def loaded_after(*args: str, **env: str) -> set[str]:
    """Modules in sys.modules after `failover ARGS` in a fresh interpreter."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['failover', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('failover', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "import json\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=True,
        timeout=60,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_version_and_help_import_neither_servers_clients_nor_the_config() -> None:
    for args in (["--version"], ["--help"]):
        modules = loaded_after(*args)
        assert heavy_in(modules) == [], args
        assert "pydantic" not in modules and "failover.config" not in modules, args


def test_validate_imports_the_config_only() -> None:
    modules = loaded_after("validate", str(ROOT / "examples" / "two-dc.yaml"))
    assert "failover.config" in modules
    assert heavy_in(modules) == []


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output == f"failover, version {__version__}\n"


def test_help_lists_every_command_as_the_commands_themselves_describe_it() -> None:
    lazy_help = (
        CliRunner()
        .invoke(LazyGroup(name="failover", lazy=COMMANDS, help=cli.help), ["--help"])
        .output
    )
    eager = click.Group(name="failover", help=cli.help)
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.name == name
        eager.add_command(command, name)
    assert lazy_help == CliRunner().invoke(eager, ["--help"]).output
    assert all(name in lazy_help for name in COMMANDS)


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2 and "No such command 'frobnicate'" in result.output


def test_completion_scripts_complete_subcommands() -> None:
    for shell in ("bash", "zsh", "fish"):
        result = CliRunner().invoke(cli, ["completion", shell])
        assert result.exit_code == 0 and "_FAILOVER_COMPLETE" in result.output, shell
    # what the bash script asks for when the user presses TAB after `failover sw`
    done = subprocess.run(
        [sys.executable, "-m", "failover"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "_FAILOVER_COMPLETE": "bash_complete",
            "COMP_WORDS": "failover sw",
            "COMP_CWORD": "1",
        },
    )
    assert done.stdout.split() == ["plain,switchover"]
    assert CliRunner().invoke(cli, ["completion", "tcsh"]).exit_code == 2


def test_each_summary_is_the_commands_own_first_sentence() -> None:
    for name, (_, _, summary) in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        assert summary == command.get_short_help_str(1000), name


def test_every_command_loads_first_in_a_fresh_process() -> None:
    """Each subcommand imports on its own (no import cycle hidden by another loading first)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in COMMANDS:
        done = subprocess.run(
            [sys.executable, "-m", "failover", name, "--help"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith(f"Usage: failover {name} "), name


def test_completing_a_subcommand_name_imports_no_subcommand() -> None:
    modules = loaded_after(
        _FAILOVER_COMPLETE="bash_complete", COMP_WORDS="failover s", COMP_CWORD="1"
    )
    assert heavy_in(modules) == [] and "failover.config" not in modules
    assert not [m for m in modules if m.startswith("failover.cli.") and m != "failover.cli"]


def test_every_command_defined_in_the_cli_package_is_reachable() -> None:
    """A command added to a module but not to `COMMANDS` would silently not exist."""
    import importlib
    import pkgutil

    import failover.cli as package

    reachable: set[int] = set()
    todo = [cli.get_command(click.Context(cli), name) for name in COMMANDS]
    while todo:
        command = todo.pop()
        assert command is not None
        reachable.add(id(command))
        if isinstance(command, click.Group):
            todo += list(command.commands.values())
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"failover.cli.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, click.Command) and value is not cli:
                assert id(value) in reachable, f"failover.cli.{info.name}.{name}"
