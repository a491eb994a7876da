"""Durable mode: acks=-1 producers against a Keystream that fsyncs before every answer.

The broker runs with `log.flush.interval.messages=1`, so a produce request is answered only after
its records are on disk; group commit lets concurrent requests on a partition share one fsync.
Each producer is a confluent-kafka Producer in its own thread (librdkafka does the network I/O in
its own threads, so the GIL is not the bottleneck at these rates) that keeps `window` records
unacknowledged (default 1: send, wait for the ack, send the next — a synchronous writer), with
`linger.ms=0`. With one producer every record then costs a full fsync round; with N producers N
requests are in flight at once and can share one: perfect sharing is N records per fsync (`rec/flush`
near N), and throughput(N) / throughput(1) then depends on what each request costs besides the
fsync (the 2-core bench VM runs the broker and the N producers' client work side by side).

fsyncs are counted on the block device holding the broker's data dir: the flush requests
completed (field 16 of `/sys/block/<disk>/stat`, kernels >= 5.5), sampled before and after each
cell. That counter is machine-wide (anything else writing to the disk adds to it, hence the idle
baseline) and a filesystem turns one fsync into one or more device flushes (journal commit), hence
the calibration: device flushes per append+fsync of a scratch file in the same directory.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from bench.brokers import Broker
from bench.crew import Crew
from bench.meter import Meter
from bench.payloads import pool

GRACE_S = 5.0
FLUSH_FIELD = 15  # 0-based index of "flush requests completed" in /sys/block/<dev>/stat


def flush_stat_path(directory: Path) -> Path | None:
    """The `stat` file of the whole disk holding `directory`, or None (no block device, old kernel)."""
    dev = os.stat(directory).st_dev
    node = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not node.exists():
        return None  # e.g. overlayfs or tmpfs: major 0, no block device behind it
    node = node.resolve()
    if (node / "partition").exists():
        node = node.parent  # flushes are issued to the whole disk
    stat = node / "stat"
    try:
        fields = stat.read_text().split()
    except OSError:
        return None
    return stat if len(fields) > FLUSH_FIELD else None


def read_flushes(stat: Path | None) -> int | None:
    if stat is None:
        return None
    return int(stat.read_text().split()[FLUSH_FIELD])


def idle_flush_rate(stat: Path | None, seconds: float) -> float | None:
    """Device flushes/s with nothing of ours running: the background the cells' figures include."""
    before = read_flushes(stat)
    time.sleep(seconds)
    after = read_flushes(stat)
    return None if before is None or after is None else (after - before) / seconds


def calibrate(stat: Path | None, directory: Path, rounds: int = 50) -> float | None:
    """Device flushes per append(100 B)+fsync of a scratch file in `directory` (typically 1-2)."""
    if stat is None:
        return None
    path = directory / "fsync-calibration"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"x" * 100)
        os.fsync(fd)
        before = read_flushes(stat)
        for _ in range(rounds):
            os.write(fd, b"x" * 100)
            os.fsync(fd)
        after = read_flushes(stat)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return (after - before) / rounds


def run(broker: Broker, topic: str, producers: int, partitions: int, records: int, seconds: float,
        window: int, size: int, stat: Path | None) -> dict:
    """`producers` threads produce until `records` in total are acknowledged or `seconds` pass."""
    values = pool(size)
    lock = threading.Lock()
    acked = [0] * producers
    errors: list[str] = []
    unacked: list[int] = []  # per producer: records still unanswered GRACE_S after it stopped sending
    stop = threading.Event()
    crew = Crew(producers, errors, lock, timeout=30)
    quota = [records // producers + (1 if i < records % producers else 0) for i in range(producers)]

    def worker(i: int) -> None:
        outstanding = [0]

        def on_delivery(err, _msg) -> None:
            outstanding[0] -= 1
            if err is not None:
                with lock:
                    errors.append(str(err))
            else:
                acked[i] += 1

        producer = Producer(broker.client_config(**{"acks": -1, "linger.ms": 0, "on_delivery": on_delivery}))
        if not crew.connect(producer, topic, 10):
            return
        sent = 0
        while not stop.is_set() and sent < quota[i]:
            if outstanding[0] < window:
                producer.produce(topic, values[(i * 7919 + sent) % len(values)],
                                 partition=(i + sent) % partitions)
                outstanding[0] += 1
                sent += 1
            else:
                producer.poll(0.1)  # returns as soon as a delivery callback ran
        left = producer.flush(GRACE_S)  # an acks=-1 answer that takes longer than this is a failure
        if left:
            with lock:
                unacked.append(left)

    threads, failed = crew.start(worker, stop)
    if failed:
        return failed
    meter = Meter(broker)
    flushes0 = read_flushes(stat)
    meter.begin()
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    done_at = sum(acked)  # read at the deadline (or when all are done), with the meter
    result = meter.end()
    flushes1 = read_flushes(stat)
    stop.set()
    for t in threads:
        t.join(10)
    result.update(records=done_at, bytes=done_at * size, requested=records, producers=producers,
                  window=window, errors=len(errors), unacked=sum(unacked),
                  complete=not errors and not unacked and done_at > 0,
                  device_flushes=None if flushes0 is None else flushes1 - flushes0,
                  time_bound=done_at < records)
    if errors:
        result["first_error"] = errors[0]
    elif unacked:
        result["first_error"] = (f"{sum(unacked)} acks=-1 record(s) of {len(unacked)} producer(s) still "
                                 f"unanswered {GRACE_S:.0f} s after the time bound")
    elif not done_at:
        result["first_error"] = "no record acknowledged"
    return result
