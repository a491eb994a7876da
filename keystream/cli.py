"""`keystream` command line: run the broker (`serve`, `up`) and Kafka-style client tools.

Entry point `keystream.cli:main` (also `python -m keystream`). Client commands live in their own
modules (cli_topic, cli_produce, cli_consume); this module only wires them together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from keystream.certs import CertError
from keystream.cli_acl import acl
from keystream.cli_certs import certs
from keystream.cli_common import log_level_option, setup_logging
from keystream.cli_consume import consume
from keystream.cli_produce import produce
from keystream.cli_quota import quota
from keystream.cli_registry import registry
from keystream.cli_schema import schema
from keystream.cli_tenant import tenant
from keystream.cli_topic import topic
from keystream.cli_user import user
from keystream.config import Config, ConfigError, load_config
from keystream.dev_registry import RegistryChild
from keystream.dev_scram import start_sample_user
from keystream.devsetup import ADMIN_PORT, REGISTRY_PORT, connect_help, write_dev_files
from keystream.pod import pod


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="keystream", prog_name="keystream")
def cli() -> None:
    """Keystream: a Kafka-compatible event-streaming broker and its tools."""


def _broker_runner() -> Callable[..., int]:
    """The broker's `run(config, on_started=None) -> int`, which blocks until SIGTERM/SIGINT and
    returns the exit code."""
    try:
        from keystream.broker.server import run
    except ImportError as exc:
        raise click.ClickException(f"the broker cannot be loaded: {exc}") from None
    return run


def _load(path: str | None, overrides: dict[str, str]) -> Config:
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _overrides(values: tuple[str, ...]) -> dict[str, str]:
    result: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"'{text}' must look like name=value", param_hint="--override")
        result[name.strip()] = value
    return result


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Broker properties file (Apache Kafka property names).")
@click.option("--override", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override one property (repeatable), like kafka-server-start's --override.")
@click.option("--check", is_flag=True, help="Validate the config, print the effective values and exit.")
@log_level_option
@click.pass_context
def serve(ctx: click.Context, config_path: str, overrides: tuple[str, ...], check: bool, log_level: str) -> None:
    """Run a broker from a server.properties file."""
    config = _load(config_path, _overrides(overrides))
    if check:
        click.echo("\n".join(config.describe()))
        return
    run = _broker_runner()
    setup_logging(log_level)
    ctx.exit(run(config))


@cli.command()
@click.option("--data-dir", default=".keystream", show_default=True, type=click.Path(file_okay=False),
              help="Where config files and data live.")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the SSL (mTLS) listener.")
@click.option("--sasl-port", default=9093, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the SASL_SSL (SCRAM-SHA-512) listener.")
@click.option("--registry-port", default=REGISTRY_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="HTTPS port of the schema registry.")
@click.option("--admin-port", default=ADMIN_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the gRPC admin API (keystream tenant|quota), mTLS.")
@log_level_option
@click.pass_context
def up(ctx: click.Context, data_dir: str, port: int, sasl_port: int, registry_port: int, admin_port: int,
       log_level: str) -> None:
    """Run a secure dev single-node broker and its schema registry: mTLS and SASL_SSL (SCRAM)
    listeners, the gRPC admin API, HTTPS registry, dev CA, a sample SCRAM user and client configs
    under --data-dir.

    \b
    Then, from another terminal (the admin's client config; more in what `up` prints):
      keystream tenant create acme --principal User:acme-alice --produce-byte-rate 10MB \\
          --command-config .keystream/client.properties
      keystream tenant list --command-config .keystream/client.properties
    """
    if sasl_port == port:
        raise click.BadParameter("must differ from --port", param_hint="--sasl-port")
    if registry_port in (port, sasl_port):
        raise click.BadParameter("must differ from --port and --sasl-port", param_hint="--registry-port")
    if admin_port in (port, sasl_port, registry_port):
        raise click.BadParameter("must differ from --port, --sasl-port and --registry-port", param_hint="--admin-port")
    try:
        setup = write_dev_files(Path(data_dir), port=port, sasl_port=sasl_port, registry_port=registry_port,
                                admin_port=admin_port)
    except CertError as exc:  # e.g. a damaged CA directory: say which file, no traceback
        raise click.ClickException(f"cannot set up the dev PKI: {exc}") from None
    config = _load(str(setup.server_properties), {})
    run = _broker_runner()
    click.echo(connect_help(setup))
    setup_logging(log_level)
    child = RegistryChild(setup.registry_properties)

    def started() -> None:
        start_sample_user(setup)
        child.start()

    try:
        code = run(config, on_started=started)
    finally:
        registry_code = child.stop()
    ctx.exit(code or registry_code)


cli.add_command(topic)
cli.add_command(acl)
cli.add_command(certs)
cli.add_command(produce)
cli.add_command(consume)
cli.add_command(registry)
cli.add_command(user)
cli.add_command(schema)
cli.add_command(tenant)
cli.add_command(quota)
cli.add_command(pod)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (exits the process with the command's status)."""
    cli.main(args=argv, prog_name="keystream")
