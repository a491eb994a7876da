"""`keystream consume`: Kafka's console consumer (records to stdout) on librdkafka."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable

import click
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from keystream.cli_common import assignments, client_config, client_options, describe_error, fail
from keystream.console_format import FormatterOptions, Record, format_record

POLL_S = 0.5
# Refusals the Java console consumer exits on (its poll throws them); librdkafka only reports them.
FATAL_CODES = frozenset({KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED})


def parse_offset(text: str) -> int:
    """`--offset`: earliest, latest or a non-negative offset (Kafka's console consumer values)."""
    named = {"earliest": OFFSET_BEGINNING, "latest": OFFSET_END}
    if text.lower() in named:
        return named[text.lower()]
    if text.isdigit():
        return int(text)
    raise click.BadParameter(f"'{text}' is not earliest, latest or a non-negative offset", param_hint="--offset")


def consumer_config(group: str | None, from_beginning: bool, isolation_level: str) -> dict[str, str]:
    """Defaults like Kafka's console consumer: a throwaway group that commits nothing unless named."""
    return {
        "group.id": group or f"console-consumer-{random.randint(1, 99999)}",
        "enable.auto.commit": "true" if group else "false",
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "isolation.level": isolation_level,
        "client.id": "console-consumer",
    }


def to_record(msg: Message) -> Record:
    """The formatter's view of a librdkafka message."""
    ts_type, ts = msg.timestamp()
    return Record(msg.partition(), msg.offset(), ts_type, ts, msg.key(), msg.value(), list(msg.headers() or []))


def _start(consumer: Consumer, topic: str | None, include: str | None, partition: int | None, offset: int) -> None:
    if partition is not None:
        consumer.assign([TopicPartition(topic, partition, offset)])
    else:
        consumer.subscribe([topic] if topic else [include if include.startswith("^") else "^" + include])


def consume_loop(consumer: Consumer, emit: Callable[[Message], None], max_messages: int | None,
                 timeout_ms: int | None) -> int:
    """Poll until max_messages were emitted or no record came for timeout_ms; returns the count."""
    count = 0
    deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
    while max_messages is None or count < max_messages:
        wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
        msg = consumer.poll(wait)
        if msg is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            continue
        err = msg.error()
        if err is not None:
            if err.fatal() or err.code() in FATAL_CODES:
                raise KafkaException(err)
            click.echo(f"WARN {describe_error(err)}", err=True)
            continue
        emit(msg)
        count += 1
        if deadline is not None:
            deadline = time.monotonic() + timeout_ms / 1000
    return count


@click.command()
@client_options(("--consumer.config",))
@click.option("--topic", help="Topic to consume.")
@click.option("--include", help="Regular expression of topics to consume instead of --topic.")
@click.option("--group", help="Consumer group (commits offsets) [default: a throwaway group that commits nothing].")
@click.option("--from-beginning", is_flag=True, help="Start at the earliest record when there is no committed offset.")
@click.option("--partition", type=click.IntRange(min=0), help="Read only this partition (no group rebalance).")
@click.option("--offset", default=None, metavar="earliest|latest|N",
              help="With --partition: where to start [default: latest, or earliest with --from-beginning].")
@click.option("--max-messages", type=click.IntRange(min=1), help="Exit after this many records.")
@click.option("--timeout-ms", type=click.IntRange(min=0), help="Exit when no record arrives for this long.")
@click.option("--isolation-level", default="read_uncommitted", show_default=True,
              type=click.Choice(["read_uncommitted", "read_committed"]))
@click.option("--property", "properties", multiple=True, metavar="NAME=VALUE",
              help="Formatter property: print.key, print.value, print.partition, print.offset, print.timestamp, "
                   "print.headers, key.separator, line.separator, headers.separator, headers.key.separator, "
                   "null.literal.")
@click.option("--consumer-property", "consumer_properties", multiple=True, metavar="NAME=VALUE",
              help="Consumer config (librdkafka or Java client name; repeatable).")
def consume(bootstrap_server: str | None, command_config: str | None, topic: str | None, include: str | None,
            group: str | None, from_beginning: bool, partition: int | None, offset: str | None,
            max_messages: int | None, timeout_ms: int | None, isolation_level: str,
            properties: tuple[str, ...], consumer_properties: tuple[str, ...]) -> None:
    """Print records to stdout (console consumer)."""
    if bool(topic) == bool(include):
        raise click.UsageError("give exactly one of --topic or --include")
    if partition is not None and include:
        raise click.UsageError("--partition needs --topic, not --include")
    if offset is not None and partition is None:
        raise click.UsageError("--offset needs --partition")
    if offset is not None and from_beginning:
        raise click.UsageError("--offset and --from-beginning cannot be used together")
    start = parse_offset(offset) if offset is not None else (OFFSET_BEGINNING if from_beginning else OFFSET_END)
    props = assignments(properties, "property")
    try:
        opts = FormatterOptions.from_properties(props)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--property") from None
    for name in sorted(set(props) - set(FormatterOptions.KNOWN)):
        click.echo(f"WARN unknown formatter property {name} ignored", err=True)
    extra = consumer_config(group, from_beginning, isolation_level)
    extra.update(assignments(consumer_properties, "consumer property"))
    conf = client_config(bootstrap_server, command_config, extra)
    try:
        consumer = Consumer(conf)
    except Exception as exc:  # librdkafka rejects unknown or invalid settings here
        raise fail(f"invalid consumer config: {describe_error(exc)}") from None
    out = sys.stdout.buffer
    seen = [0]

    def emit(msg: Message) -> None:
        out.write(format_record(to_record(msg), opts))
        out.flush()
        seen[0] += 1

    code, problem = 0, None
    try:
        _start(consumer, topic, include, partition, start)
        consume_loop(consumer, emit, max_messages, timeout_ms)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): point stdout at /dev/null so exit-time flushes stay quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KafkaException as exc:
        problem = describe_error(exc)
    finally:
        consumer.close()
    click.echo(f"Processed a total of {seen[0]} messages", err=True)
    if problem:
        raise fail(problem)
    if code:
        click.get_current_context().exit(code)
