"""`failover schema`: the config's JSON Schema, or (`--markdown`) docs/config.md."""

from __future__ import annotations

import json

import click


@click.command()
@click.option(
    "--markdown",
    is_flag=True,
    help="Print the field reference (docs/config.md) instead of the JSON Schema.",
)
def schema(markdown: bool) -> None:
    """Print the JSON Schema of the cluster config (for editors and yaml-language-server).

    With yaml-language-server, start a config file with
    `# yaml-language-server: $schema=/path/to/failover-schema.json`.
    """
    from failover.config import reference

    if markdown:
        click.echo(reference.markdown(), nl=False)
    else:
        click.echo(json.dumps(reference.json_schema(), indent=2))
