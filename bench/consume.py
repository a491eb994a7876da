"""Throughput consumer: read a produced topic from the beginning until every record is back.

Partitions are assigned directly (no group), so the figure is fetch cost alone and not the
broker's group-join time, which has its own phase.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.brokers import Broker
from bench.meter import Meter

BATCH = 10_000
# librdkafka stops fetching once 100,000 records are queued locally and then waits
# fetch.queue.backoff.ms (1 s by default) before fetching again. A Python loop drains that queue
# in a fraction of a second, so at the default the run mostly measures the client's own sleep
# (about 200k records/s for either broker). A short backoff keeps the broker busy instead.
FETCH_QUEUE_BACKOFF_MS = 10


def run(broker: Broker, topic: str, records: int, size: int, partitions: int, timeout: float) -> dict:
    consumer = Consumer(broker.client_config(**{
        "group.id": f"bench-consume-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }))
    try:
        consumer.list_topics(topic=topic, timeout=10)  # connect before timing
        meter = Meter(broker)
        deadline = time.monotonic() + timeout
        errors: list[str] = []
        wrong_size = 0
        got = 0
        meter.begin()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        while got < records and time.monotonic() < deadline:
            batch = consumer.consume(BATCH, 0.2)
            for msg in batch:
                if msg.error():
                    errors.append(str(msg.error()))
                    continue
                got += 1
            last = batch[-1] if batch else None
            if last is not None and not last.error() and len(last.value() or b"") != size:
                wrong_size += 1  # spot check: the last record of each batch has the size we sent
        result = meter.end()
    finally:
        consumer.close()
    result.update(records=got, bytes=got * size, requested=records, errors=len(errors),
                  complete=got == records and not wrong_size)
    if errors:
        result["first_error"] = errors[0]
    elif wrong_size:
        result["first_error"] = f"{wrong_size} batches ended with a value of the wrong size"
    elif got < records:
        result["first_error"] = f"only {got} of {records} records read before the deadline"
    return result
