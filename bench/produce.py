"""Throughput producer: N records as fast as the client can push them, timed to the last ack.

Partitions are chosen round-robin by the bench (not the sticky partitioner) so every partition of
a 6-partition topic gets the same share on both brokers. Only errors raise delivery callbacks,
which keeps per-record Python work in the client to one produce() call.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException, Producer

from bench.brokers import Broker
from bench.meter import Meter
from bench.payloads import pool

LINGER_MS = 5
BATCH_BYTES = 1 << 20


def producer_config(broker: Broker, acks: int, compression: str, on_error) -> dict:
    return broker.client_config(**{
        "acks": acks,
        "compression.type": compression,
        "linger.ms": LINGER_MS,
        "batch.size": BATCH_BYTES,
        "delivery.report.only.error": True,
        "on_delivery": on_error,
    })


def run(broker: Broker, topic: str, records: int, size: int, acks: int, partitions: int,
        compression: str, timeout: float, meter: Meter | None = None) -> dict:
    """Produce and flush; returns counts, timings and the first delivery error if there was one."""
    errors: list[str] = []

    def on_error(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(producer_config(broker, acks, compression, on_error))
    producer.list_topics(topic=topic, timeout=10)  # connect and learn leaders before timing
    values = pool(size)
    n_values = len(values)
    meter = meter or Meter(broker)
    deadline = time.monotonic() + timeout
    meter.begin()
    sent = 0
    while sent < records and time.monotonic() < deadline:
        try:
            producer.produce(topic, values[sent % n_values], partition=sent % partitions)
            sent += 1
        except BufferError:
            producer.poll(0.001)  # local queue full: let librdkafka drain it
    unflushed = producer.flush(max(0.0, deadline - time.monotonic()))
    result = meter.end()
    acked = sent - unflushed - len(errors)
    result.update(records=acked, bytes=acked * size, requested=records, errors=len(errors),
                  complete=acked == records)
    if errors:
        result["first_error"] = errors[0]
    if unflushed:
        result["first_error"] = result.get("first_error") or f"{unflushed} records unacknowledged at deadline"
    return result


def fill(broker: Broker, topic: str, records: int, size: int, partitions: int, compression: str,
         timeout: float) -> None:
    """Unmeasured set-up for a consume-only run."""
    result = run(broker, topic, records, size, 1, partitions, compression, timeout)
    if not result["complete"]:
        raise KafkaException(f"fill failed: {result.get('first_error')}")


def wire_codec(broker: Broker, topic: str, compression: str, size: int) -> str:
    """The codec(s) librdkafka actually put on the wire for `compression.type=compression`.

    librdkafka sends a batch uncompressed when the codec would not shrink it, and drops LZ4
    altogether when the broker's ApiVersions does not imply support (it ties LZ4 to FindCoordinator);
    either would turn an lz4 row into an uncompressed one without a word. Its debug log names the
    codec of each batch, so a short run of the same values and batching shows what the real run sends.
    """
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    log = logging.getLogger(f"bench.codec.{broker.name}.{compression}.{size}")
    log.handlers[:] = [Collect()]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    producer = Producer(broker.client_config(**{"compression.type": compression, "debug": "msg", "logger": log,
                                                "linger.ms": LINGER_MS, "batch.size": BATCH_BYTES}))
    for value in pool(size)[:2000]:
        producer.produce(topic, value, partition=0)
    producer.flush(10)
    producer.poll(0.2)  # log lines are served by poll
    sent = sorted({line.rsplit(", ", 1)[-1].rstrip(")") for line in lines if "Produce MessageSet" in line})
    return "+".join(sent) if sent else "unknown (no batch was sent)"
