"""Restart: how long Keystream with 1,000 partitions and ~5 GB of log takes from `keystream serve`
to ready, after a clean shutdown (SIGTERM) and after `kill -9`.

A separate Keystream instance gets one 1,000-partition topic, created through the Admin API (the
CreateTopics time is recorded too), and is filled to `--restart-bytes` by a few producers, each
sending runs of 100 x 1 KiB records to one partition at a time so batches are ~100 KiB and the
fill runs at disk speed. Then, per repeat: a top-up (the fill itself in the first repeat,
`--restart-topup` bytes later), `kill -9` at once (so whatever the broker wrote since its last
checkpoint is unverified), a timed start; SIGTERM (timed: the clean shutdown), a timed start.
Ready means what the bench waits for before every phase: the port accepts a connection and an
AdminClient gets Metadata back (ApiVersions first). The start-up CPU (user+system of the new
process until ready, tick clock) is recorded beside the wall time, which on a busy 2-core machine
is the noisier figure. Keystream only: tansu keeps everything in memory.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from bench import procstat, topics
from bench.brokers import Broker

VALUE_BYTES = 1024
RUN = 100  # records in a row to one partition: ~100 KiB batches
PRODUCERS = 4


def free_bytes_needed(total: int) -> int:
    """The log plus 10 % and 1 GiB of room for indexes, snapshots and everything else on the disk."""
    return int(total * 1.1) + (1 << 30)


def check_space(directory: Path, total: int) -> str | None:
    free = shutil.disk_usage(directory).free
    need = free_bytes_needed(total)
    if free < need:
        return f"not enough disk space in {directory}: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed"
    return None


def fill(broker: Broker, topic: str, partitions: int, total: int, timeout: float, start: int = 0) -> dict:
    """Produce about `total` bytes of 1 KiB values, acks=1; returns bytes and seconds."""
    records = max(1, total // VALUE_BYTES)
    errors: list[str] = []
    lock = threading.Lock()
    value = bytes(range(256)) * (VALUE_BYTES // 256)

    def on_error(err, _msg) -> None:
        if err is not None:
            with lock:
                errors.append(str(err))

    def worker(i: int) -> None:
        producer = Producer(broker.client_config(**{
            "acks": 1, "linger.ms": 50, "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20,
            "delivery.report.only.error": True, "on_delivery": on_error}))
        share = records // PRODUCERS + (1 if i < records % PRODUCERS else 0)
        sent = 0
        while sent < share:
            partition = (start + i + PRODUCERS * (sent // RUN)) % partitions
            try:
                producer.produce(topic, value, partition=partition)
                sent += 1
            except BufferError:
                producer.poll(0.01)
        left = producer.flush(timeout)
        if left:
            with lock:
                errors.append(f"{left} records unacknowledged after {timeout:.0f}s")

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    if errors:
        raise RuntimeError(f"fill failed: {errors[0]}")
    return {"bytes": records * VALUE_BYTES, "seconds": time.monotonic() - t0}


def timed_start(broker: Broker, timeout: float) -> dict:
    """Start the broker; wall seconds to ready and the new process's CPU seconds by then."""
    t0 = time.monotonic()
    broker.start(timeout)
    ready = time.monotonic() - t0
    return {"ready_s": ready, "startup_cpu_s": procstat.cpu_sample(broker.pid).ticks_s}


def kill9(broker: Broker) -> None:
    broker._admin = None
    if broker.proc is not None and broker.proc.poll() is None:
        broker.proc.kill()
        broker.proc.wait(10)


def timed_stop(broker: Broker) -> float:
    t0 = time.monotonic()
    code = broker.stop(grace=60)
    if code != 0:
        raise RuntimeError(f"clean shutdown exited with code {code}\n{broker.log_tail()}")
    return time.monotonic() - t0


class RestartRun:
    """The state of the restart phase across repeats: one broker, one big topic."""

    def __init__(self, broker: Broker, partitions: int, total: int, topup: int, timeout: float) -> None:
        self.broker, self.partitions, self.total, self.topup, self.timeout = broker, partitions, total, topup, timeout
        self.topic = topics.unique_name("restart")
        self.setup: dict | None = None
        self.filled = 0

    def prepare(self) -> dict:
        """Create the topic (timed) and fill it; once."""
        if self.setup is None:
            t0 = time.monotonic()
            topics.create(self.broker, self.topic, self.partitions, timeout=max(60.0, self.timeout))
            create_s = time.monotonic() - t0
            filled = fill(self.broker, self.topic, self.partitions, self.total, self.timeout * 10)
            self.filled += filled["bytes"]
            self.setup = {"complete": True, "create_topic_s": create_s, "partitions": self.partitions,
                          "fill_bytes": filled["bytes"], "fill_s": filled["seconds"]}
        return self.setup

    def kill9_cycle(self, repeat: int) -> dict:
        """Top up (after the first repeat), kill -9 at once, time the start."""
        unverified = self.total if repeat == 0 else self.topup
        if repeat > 0 and self.topup:
            fill(self.broker, self.topic, self.partitions, self.topup, self.timeout, start=repeat)
            self.filled += self.topup
        kill9(self.broker)
        sample = timed_start(self.broker, self.timeout)
        sample.update(complete=True, log_bytes=self.filled, written_before_kill=unverified)
        return sample

    def clean_cycle(self) -> dict:
        stop_s = timed_stop(self.broker)
        sample = timed_start(self.broker, self.timeout)
        sample.update(complete=True, log_bytes=self.filled, stop_s=stop_s)
        return sample
