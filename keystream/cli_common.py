"""Options and error reporting shared by every client command (topic, produce, consume, ...).

They all behave like Kafka's own tools: `--bootstrap-server`, `--command-config`, Kafka error names
in messages, and a non-zero exit code whenever anything failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from confluent_kafka import KafkaError, KafkaException

from keystream.broker.errors import ErrorCode
from keystream.client_config import ClientConfigError, build_client_config, parse_assignment
from keystream.service_loop import LOG_FORMAT

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_TIMEOUT_S = 30.0

log_level_option = click.option(
    "--log-level", default="info", show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)


def setup_logging(level: str) -> None:
    """Server commands (serve, up, registry serve) log one line per event in one format."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


def client_options(config_aliases: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Add `--bootstrap-server` and `--command-config` (plus aliases such as `--producer.config`)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--command-config", *config_aliases, "command_config",
            type=click.Path(dir_okay=False), metavar="FILE",
            help="Client properties file (Java client names are translated for librdkafka).",
        )(func)
        func = click.option(
            "--bootstrap-server", metavar="HOST:PORT",
            help="Broker(s) to connect to [default: bootstrap.servers from --command-config, else 127.0.0.1:9092].",
        )(func)
        return func

    return decorate


def assignments(values: Iterable[str], what: str) -> dict[str, str]:
    """Repeated `key=value` options → dict, as a usage error (exit 2) when malformed."""
    result: dict[str, str] = {}
    for text in values:
        try:
            key, value = parse_assignment(text, what)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        result[key] = value
    return result


def client_config(bootstrap_server: str | None, command_config: str | None,
                  extra: dict[str, str] | None = None) -> dict[str, str]:
    """Build the librdkafka config for a command, printing translation warnings to stderr."""
    try:
        conf, warnings = build_client_config(bootstrap_server, command_config, extra)
    except ClientConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        click.echo(f"WARN {warning}", err=True)
    return conf


def describe_error(error: KafkaError | KafkaException | BaseException) -> str:
    """`NAME: message` for a Kafka error (the names users search for), else str(error)."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        error = error.args[0]
    if isinstance(error, KafkaError):
        name, text = kafka_error_name(error), error.str()
        return f"{name}: {text}" if text and text != error.name() else name
    return str(error) or type(error).__name__


def kafka_error_name(error: KafkaError) -> str:
    """Apache Kafka's name for a broker error (librdkafka abbreviates some); local errors keep theirs."""
    try:
        return ErrorCode(error.code()).name
    except ValueError:
        return error.name()


def error_code(error: BaseException) -> int | None:
    """The librdkafka/Kafka error code inside an exception, if any."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return error.args[0].code()
    return None


def fail(message: str) -> click.ClickException:
    """An error that click prints as `Error: message` with exit code 1."""
    return click.ClickException(message)
