"""`keystream registry serve --config registry.properties`: the schema registry process."""

from __future__ import annotations

import click

from keystream.cli_common import assignments, log_level_option, setup_logging
from keystream.configdef import ConfigError


@click.group()
def registry() -> None:
    """The schema registry (Confluent Schema Registry's REST API and property names)."""


@registry.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Registry properties file (Confluent Schema Registry property names).")
@click.option("--override", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override one property (repeatable).")
@click.option("--check", is_flag=True, help="Validate the config, print the effective values and exit.")
@log_level_option
@click.pass_context
def serve(ctx: click.Context, config_path: str, overrides: tuple[str, ...], check: bool, log_level: str) -> None:
    """Run a schema registry from a schema-registry.properties file."""
    from keystream.registry.config import load_registry_config  # noqa: PLC0415

    try:
        config = load_registry_config(config_path, assignments(overrides, "--override"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if check:
        click.echo("\n".join(config.describe()))
        return
    try:
        from keystream.registry.server import run  # noqa: PLC0415
    except ImportError as exc:
        raise click.ClickException(f"the registry cannot be loaded: {exc}") from None
    setup_logging(log_level)
    ctx.exit(run(config))
