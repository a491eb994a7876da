"""`keystream produce`: Kafka's console producer (one record per stdin line) on librdkafka."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from keystream.cli_common import (
    ADMIN_TIMEOUT_S,
    assignments,
    client_config,
    client_options,
    describe_error,
    fail,
)
from keystream.console_format import LineError, ReaderOptions, parse_line

# Java clients' defaults, so keyed records land where Kafka's console producer would put them.
PRODUCER_DEFAULTS = {
    "partitioner": "murmur2_random",
    "message.timeout.ms": "120000",
    "linger.ms": "5",
    "client.id": "console-producer",
}
MAX_REPORTED = 10


class Deliveries:
    """Delivery-report bookkeeping: counts failures and prints the first few."""

    def __init__(self) -> None:
        self.failed = 0
        self.delivered = 0

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.failed <= MAX_REPORTED:
            click.echo(f"ERROR delivery to {msg.topic()} failed: {describe_error(err)}", err=True)


def _lines(stream: BinaryIO, prompt: bool):
    """Yield input lines without their line terminator (\\n or \\r\\n), like Java's readLine."""
    while True:
        if prompt:
            click.echo(">", nl=False, err=True)
        raw = stream.readline()
        if not raw:
            return
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield raw


def _send(producer: Producer, topic: str, record, report: Deliveries) -> None:
    while True:
        try:
            producer.produce(topic, value=record.value, key=record.key, headers=record.headers or None,
                             on_delivery=report)
            break
        except BufferError:
            producer.poll(0.1)  # the local queue is full: serve delivery reports until there is room
    producer.poll(0)


def _check_topic(producer: Producer, topic: str) -> None:
    """Fail at once on an unreachable broker or a missing topic instead of after the delivery timeout."""
    try:
        metadata = producer.list_topics(topic, timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise fail(f"cannot reach the broker: {describe_error(exc)}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        why = describe_error(found.error) if found is not None else "UNKNOWN_TOPIC_OR_PARTITION"
        raise fail(f"cannot produce to topic '{topic}': {why}")


@click.command()
@client_options(("--producer.config",))
@click.option("--topic", required=True, help="Topic to produce to.")
@click.option("--property", "properties", multiple=True, metavar="NAME=VALUE",
              help="Line reader property: parse.key, key.separator, parse.headers, headers.delimiter, "
                   "headers.separator, headers.key.separator, null.marker, ignore.error.")
@click.option("--producer-property", "producer_properties", multiple=True, metavar="NAME=VALUE",
              help="Producer config (librdkafka or Java client name; repeatable).")
@click.option("--acks", "--request-required-acks", "acks", default="all", show_default=True,
              type=click.Choice(["all", "-1", "0", "1"]), help="Acknowledgements to wait for.")
@click.option("--compression-codec", type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]),
              help="Compress record batches.")
@click.option("--sync", is_flag=True, help="Wait for each record to be acknowledged before sending the next.")
def produce(bootstrap_server: str | None, command_config: str | None, topic: str, properties: tuple[str, ...],
            producer_properties: tuple[str, ...], acks: str, compression_codec: str | None, sync: bool) -> None:
    """Send stdin lines as records (console producer)."""
    props = assignments(properties, "property")
    try:
        opts = ReaderOptions.from_properties(props)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--property") from None
    for name in sorted(set(props) - set(ReaderOptions.KNOWN)):
        click.echo(f"WARN unknown line reader property {name} ignored", err=True)
    extra = {"acks": acks, **({"compression.type": compression_codec} if compression_codec else {})}
    extra.update(assignments(producer_properties, "producer property"))
    conf = {**PRODUCER_DEFAULTS, **client_config(bootstrap_server, command_config, extra)}
    try:
        producer = Producer(conf)
    except Exception as exc:  # librdkafka rejects unknown or invalid settings here
        raise fail(f"invalid producer config: {describe_error(exc)}") from None
    _check_topic(producer, topic)
    report = Deliveries()
    error: str | None = None
    try:
        for line_no, line in enumerate(_lines(sys.stdin.buffer, sys.stdin.isatty()), start=1):
            try:
                record = parse_line(line, opts, line_no)
            except LineError as exc:
                error = str(exc)
                break
            _send(producer, topic, record, report)
            if sync:
                producer.flush()
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        remaining = producer.flush()
    if remaining:
        report.failed += remaining
    if report.failed:
        raise fail(f"{report.failed} record(s) were not delivered" + (f"; {error}" if error else ""))
    if error:
        raise fail(error)
