"""Memory soak: produce and consume at half the peak rate for minutes, sampling the broker's RSS.

Keystream only, on an instance of its own (`keystream-soak`): tansu 0.6.0 has only in-memory
storage, and at half the peak rate (15-45 MB/s of 100 B records) 10 minutes are 10-30 GB of log,
which would have to fit in its RAM unless its memory engine applies `retention.bytes` (not
verified); growth from holding the data would be its design, not a leak. Keystream's instance
runs with `log.retention.check.interval.ms` short enough that the soak topic's `retention.bytes`
keeps the disk bounded too (at the default of 5 minutes, 5-15 GB would pile up between checks).

A producer in this process (100 B records, acks=1, linger.ms=5, round-robin over 6 partitions)
is paced to the rate: `--soak-rate`, or half of Keystream's median records/s of the matching
produce cell measured earlier in the run, or half of a short calibration run on the soak instance.
A consumer group member in a spawned process subscribes to the topic and consumes concurrently
(auto-commit on, so OffsetCommit traffic is part of the load). VmRSS of the broker's process tree
is sampled every few seconds; the slope is a least-squares fit over the second half, in MiB per
minute, so start-up allocation and the first segment rolls do not count as growth.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from bench import brokers as launch
from bench import procstat, produce, topics
from bench.brokers import Broker
from bench.meter import Meter
from bench.payloads import pool

SOAK = "keystream-soak"
SIZE, PARTITIONS, ACKS = 100, 6, 1
TOPIC_CONFIG = {"retention.bytes": str(64 << 20), "segment.bytes": str(16 << 20)}  # per partition
BROKER_PROPS = {"log.retention.check.interval.ms": "5000"}
DRAIN_S = 15.0  # after the producer stops: time the consumer gets to catch up
TICK_S = 0.005


def target_rate(s, broker: Broker) -> tuple[float, str]:
    """Records/s to soak at, and where the figure came from."""
    a = s.args
    if a.soak_rate:
        return float(a.soak_rate), "--soak-rate"
    row = s.rows.get(f"produce {SIZE}B acks={ACKS} p={PARTITIONS} none")
    rates = [x["records"] / x["seconds"] for x in (row or {}).get("samples", {}).get("keystream", [])
             if x.get("complete") and x.get("seconds")]
    if rates:
        peak = sorted(rates)[len(rates) // 2]
        return peak / 2, f"half of the produce cell's median {peak:,.0f} rec/s"
    topic = topics.unique_name("soak-calibrate")
    topics.create(broker, topic, PARTITIONS)
    try:
        result = produce.run(broker, topic, 20_000 if a.quick else 300_000, SIZE, ACKS, PARTITIONS, "none",
                             a.phase_timeout)
    finally:
        topics.delete(broker, topic)
    peak = result["records"] / result["seconds"]
    return peak / 2, f"half of a {result['records']:,}-record calibration run ({peak:,.0f} rec/s)"


def _consumer_main(config: dict, topic: str, conn) -> None:
    """Runs in a spawned process: consumes until told the produced total, then reports."""
    consumer = Consumer({**config, "group.id": f"bench-soak-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
                         "fetch.queue.backoff.ms": 10})
    consumer.subscribe([topic])
    conn.send("ready")
    got, errors, target, deadline = 0, [], None, None
    while target is None or (got < target and time.monotonic() < deadline):
        for msg in consumer.consume(10_000, 0.2):
            if msg.error():
                errors.append(str(msg.error()))
            else:
                got += 1
        if target is None and conn.poll():
            target, deadline = conn.recv(), time.monotonic() + DRAIN_S
    consumer.close()
    conn.send({"consumed": got, "errors": errors[:5], "n_errors": len(errors)})


def _slope_mib_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mr = sum(r for _, r in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (r - mr) for t, r in points) / var if var else None


def run(broker: Broker, topic: str, rate: float, seconds: float, every: float, timeout: float) -> dict:
    """Paced producer + consuming group member for `seconds`; RSS sampled every `every` seconds."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_consumer_main, args=(broker.client_config(), topic, child), daemon=True)
    proc.start()
    errors: list[str] = []

    def on_error(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(produce.producer_config(broker, ACKS, "none", on_error))
    try:
        producer.list_topics(topic=topic, timeout=10)
        if not parent.poll(30) or parent.recv() != "ready":
            raise RuntimeError("soak consumer did not start within 30s")
        values, samples = pool(SIZE), []
        meter = Meter(broker)
        meter.begin()
        start = time.monotonic()
        end, next_sample, sent, full = start + seconds, start, 0, 0
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                samples.append((now - start, procstat.rss_mib(broker.pid)))
                next_sample += every
            due = int((now - start) * rate)
            while sent < due:
                try:
                    producer.produce(topic, values[sent % len(values)], partition=sent % PARTITIONS)
                    sent += 1
                except BufferError:
                    full += 1
                    break
            producer.poll(TICK_S)
        samples.append((time.monotonic() - start, procstat.rss_mib(broker.pid)))  # end: before the flush burst
        unflushed = producer.flush(timeout)
        result = meter.end()
        acked = sent - unflushed - len(errors)
        parent.send(acked)
        report = parent.recv() if parent.poll(DRAIN_S + 10) else {"consumed": 0, "errors": ["consumer timed out"],
                                                                 "n_errors": 1}
    finally:
        proc.join(DRAIN_S + 15)
        if proc.is_alive():
            proc.terminate()  # our own child, by its handle
            proc.join(5)
    second_half = [(t, r) for t, r in samples if t >= seconds / 2]
    result.update(
        records=acked, bytes=acked * SIZE, requested=int(rate * seconds), target_rate=rate, errors=len(errors),
        consumed=report["consumed"], consumer_errors=report["n_errors"], queue_full=full,
        rss_samples=[(round(t, 1), round(r, 1)) for t, r in samples],
        rss_start_mib=samples[0][1], rss_end_mib=samples[-1][1], rss_peak_mib=max(r for _, r in samples),
        rss_slope_mib_per_min=_slope_mib_per_min(second_half),
        complete=acked > 0 and not errors and not unflushed and report["consumed"] == acked,
    )
    if errors or report["errors"]:
        result["first_error"] = (errors or report["errors"])[0]
    elif not result["complete"]:
        result["first_error"] = f"consumed {report['consumed']:,} of {acked:,} acknowledged records"
    return result


def cell(s) -> None:
    """Once per session, after the repeats: start the soak instance, soak, stop it."""
    from bench.session import guarded  # noqa: PLC0415  (session imports the phases' modules)

    a = s.args
    props = {**dict(a.keystream_prop), **BROKER_PROPS}
    broker = launch.keystream(s.workdir, s.base_delay, props, dict(a.keystream_client_prop), name=SOAK)
    s.info[SOAK] = {"version": launch.version_of("keystream"), "argv": broker.argv, "port": broker.port,
                    "props": props, "topic_config": TOPIC_CONFIG}
    label = f"{SIZE}B acks={ACKS} p={PARTITIONS}, {a.soak_seconds:.0f} s"
    try:
        broker.start()
        print(f"started {SOAK} pid {broker.pid} on {broker.bootstrap}", flush=True)
        rate, source = target_rate(s, broker)
        s.info[SOAK]["rate_source"] = source
        print(f"  soak at {rate:,.0f} rec/s ({source}) for {a.soak_seconds:.0f} s", flush=True)
    except Exception as exc:  # BrokerError, or the calibration run failed
        s.info[SOAK]["start_error"] = f"{type(exc).__name__}: {exc}"
        rate = 0.0
    params = {"size": SIZE, "acks": ACKS, "partitions": PARTITIONS, "seconds": a.soak_seconds, "rate": rate,
              "sample_s": a.soak_sample_seconds, **TOPIC_CONFIG}
    topic = topics.unique_name("soak")

    def go() -> dict:
        futures = broker.admin().create_topics([NewTopic(topic, PARTITIONS, 1, config=TOPIC_CONFIG)])
        futures[topic].result(15)
        return run(broker, topic, rate, a.soak_seconds, a.soak_sample_seconds, a.phase_timeout)

    if rate <= 0:
        sample = {"complete": False, "first_error": s.info[SOAK].get("start_error", "no rate")}
    else:
        sample = guarded(broker, go)
    s.record(f"soak {label}", "soak", label, params, "keystream", sample)
    if broker.proc is not None:
        peak = broker.peak_rss_mib() if broker.alive() else None
        s.info[SOAK].update(peak_rss_mib=peak, exit_code=broker.stop(),
                            log=str(broker.log_path) if a.keep else None)
