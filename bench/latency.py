"""End-to-end and produce-ack latency at a fixed rate.

The producer (linger.ms=0, acks=-1) stamps each value with its send time on CLOCK_MONOTONIC, which
is one clock for every process on the machine; a consumer in a separate process, at librdkafka's
default fetch settings, subtracts it on arrival. A warm-up second, flagged in the value, lets both
sides connect and is left out of the figures.
"""

from __future__ import annotations

import multiprocessing
import struct
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.brokers import Broker
from bench.meter import Meter
from bench.payloads import pool
from bench.stats import percentile

STAMP = struct.Struct(">qB")  # send time in ns, then 1 for a measured record and 0 for warm-up


def _consumer_main(config: dict, topic: str, expected: int, seconds: float, conn) -> None:
    """Runs in a spawned process; sends back the latencies it saw, in milliseconds."""
    consumer = Consumer({**config, "group.id": f"bench-e2e-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    consumer.list_topics(topic=topic, timeout=10)
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    conn.send("ready")
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    while len(latencies) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        arrived = time.monotonic_ns()
        if msg.error():
            errors.append(str(msg.error()))
            continue
        sent, measured = STAMP.unpack_from(msg.value())
        if measured:
            latencies.append((arrived - sent) / 1e6)
    consumer.close()
    conn.send({"latencies_ms": latencies, "errors": errors[:5], "n_errors": len(errors)})


def run(broker: Broker, topic: str, rate: int, seconds: float, warmup: float, size: int,
        timeout: float) -> dict:
    """Produce at `rate` records/s for warmup + seconds; returns e2e and ack p50/p99 in ms."""
    n_warm, n_measured = int(rate * warmup), int(rate * seconds)
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=_consumer_main, args=(broker.client_config(), topic, n_measured, timeout, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(30) or parent.recv() != "ready":
            raise RuntimeError("latency consumer did not start within 30s")
        produced = _produce_paced(broker, topic, rate, n_warm, n_measured, size, timeout)
        report = parent.recv() if parent.poll(timeout) else {"latencies_ms": [], "errors": ["consumer timed out"],
                                                             "n_errors": 1}
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()  # our own child, by its handle
            proc.join(5)
    e2e = report["latencies_ms"]
    produced.update(
        e2e_p50_ms=percentile(e2e, 50), e2e_p99_ms=percentile(e2e, 99), e2e_max_ms=max(e2e, default=None),
        e2e_records=len(e2e), consumer_errors=report["n_errors"],
        complete=produced["complete"] and len(e2e) == n_measured and not report["n_errors"],
    )
    if report["errors"]:
        produced.setdefault("first_error", report["errors"][0])
    elif len(e2e) < n_measured:
        produced.setdefault("first_error", f"consumer saw {len(e2e)} of {n_measured} measured records")
    return produced


def _produce_paced(broker: Broker, topic: str, rate: int, n_warm: int, n_measured: int, size: int,
                   timeout: float) -> dict:
    acks_ms: list[float] = []
    errors: list[str] = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        elif msg.value()[8]:
            acks_ms.append(msg.latency() * 1000)

    producer = Producer(broker.client_config(**{"acks": -1, "linger.ms": 0, "on_delivery": on_delivery}))
    producer.list_topics(topic=topic, timeout=10)
    filler = pool(size)
    meter = Meter(broker)
    total = n_warm + n_measured
    start = time.monotonic()
    deadline = start + timeout
    first_measured = last_sent = start
    for i in range(total):
        due = start + i / rate
        now = time.monotonic()
        while now < due:
            producer.poll(due - now)  # serve delivery reports while waiting for the next slot
            now = time.monotonic()
        if now > deadline:
            break
        if i == n_warm:
            meter.begin()
            first_measured = now
        tail = filler[i % len(filler)][STAMP.size :]
        producer.produce(topic, STAMP.pack(time.monotonic_ns(), i >= n_warm) + tail, partition=0)
        last_sent = now
        producer.poll(0)
    unflushed = producer.flush(max(0.0, deadline - time.monotonic()))
    result = meter.end()
    result.update(
        records=len(acks_ms), bytes=len(acks_ms) * size, requested=n_measured, errors=len(errors),
        achieved_rate=(n_measured - 1) / (last_sent - first_measured) if last_sent > first_measured else None,
        ack_p50_ms=percentile(acks_ms, 50), ack_p99_ms=percentile(acks_ms, 99),
        complete=len(acks_ms) == n_measured and not unflushed,
    )
    if errors:
        result["first_error"] = errors[0]
    return result
