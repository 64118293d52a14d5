"""`failover completion bash|zsh|fish`: click's shell completion script for `failover`."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
HOW = {
    "bash": 'eval "$(failover completion bash)"  # in ~/.bashrc',
    "zsh": 'eval "$(failover completion zsh)"  # in ~/.zshrc',
    "fish": "failover completion fish > ~/.config/fish/completions/failover.fish",
}


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash: eval "$(failover completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(failover completion zsh)"    (in ~/.zshrc)
    fish: failover completion fish > ~/.config/fish/completions/failover.fish
    """
    from failover.cli import cli

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(cli, {}, "failover", "_FAILOVER_COMPLETE").source())
