"""Scale: the same load on a 6-partition and on a 1,000-partition topic, 20 producers at once.

Each producer is a confluent-kafka Producer in its own thread (its own connection), sending its
share of the records with the throughput phase's settings (100 B, acks=1, `linger.ms=5`,
`batch.size=1 MiB`) in one of two modes:
- `spread`: round-robin over every partition, record by record, as uniformly keyed records go.
  With 1,000 partitions and 20 producers nearly every batch holds one record, so this measures
  the broker's per-batch and per-partition cost;
- `sticky`: no partition given, so librdkafka's default partitioner keeps keyless records on one
  partition for `sticky.partitioning.linger.ms` (10 ms) and batches stay big, as for keyless records.
The report divides the 1,000-partition figure by the 6-partition one (issue 5 target: >= 70 %).
"""

from __future__ import annotations

import threading

from confluent_kafka import Producer

from bench.brokers import Broker
from bench.crew import Crew
from bench.meter import Meter
from bench.payloads import pool
from bench.produce import producer_config

MODES = ("spread", "sticky")


def run(broker: Broker, topic: str, producers: int, partitions: int, records: int, size: int,
        timeout: float, mode: str = "spread") -> dict:
    """`producers` threads produce `records` in total; timed from all connected to all acknowledged."""
    values = pool(size)
    lock = threading.Lock()
    errors: list[str] = []
    unflushed = [0] * producers
    crew = Crew(producers, errors, lock)
    go = threading.Event()
    quota = [records // producers + (1 if i < records % producers else 0) for i in range(producers)]

    def on_error(err, _msg) -> None:
        if err is not None:
            with lock:
                errors.append(str(err))

    def worker(i: int) -> None:
        producer = Producer(producer_config(broker, 1, "none", on_error))
        if not crew.connect(producer, topic, 20):
            return
        go.wait()
        n_values, sent, offset, spread = len(values), 0, i * 7919, mode == "spread"
        while sent < quota[i]:
            try:
                producer.produce(topic, values[(offset + sent) % n_values],
                                 partition=(i + sent) % partitions if spread else -1)  # -1: the partitioner's
                sent += 1
            except BufferError:
                producer.poll(0.001)  # local queue full: let librdkafka drain it
        unflushed[i] = producer.flush(timeout)

    threads, failed = crew.start(worker, go)
    if failed:
        return failed
    meter = Meter(broker)
    meter.begin()
    go.set()
    for t in threads:
        t.join(timeout + 10)
    result = meter.end()
    acked = records - sum(unflushed) - len(errors)
    result.update(records=acked, bytes=acked * size, requested=records, producers=producers,
                  errors=len(errors), complete=acked == records and not any(t.is_alive() for t in threads))
    if errors:
        result["first_error"] = errors[0]
    elif not result["complete"]:
        result["first_error"] = f"{records - acked} records unacknowledged after {timeout:.0f}s"
    return result
