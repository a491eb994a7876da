"""A noisy neighbour, bounded (~30 s): tenant acme produces flat out over its 1 MB/s produce quota
while tenant globex (no quota) produces at a modest fixed rate, each with confluent-kafka over mTLS.

Asserted (what tenants rely on): acme is throttled from early on and still while it stays over its
quota, its throughput over the whole run stays within 2x the quota (a rate bound: quotas delay, they
do not cap a burst exactly), every record either tenant had acknowledged is read back, and globex
loses nothing. Printed, never asserted: acme's throughput against its quota, its throttle times, and
globex's delivery latency (produce() to delivery report) alone and beside the neighbour.

quota.window.num=5 (of 1 s) instead of Kafka's 11 so the run needs seconds, not a minute, to show
the held rate; the first window's burst allowance is part of the measured average.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from confluent_kafka import Producer

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.clients import consume_assigned, create_topic, flush
from tests.fixtures.waiting import Deadline

pytestmark = pytest.mark.keystream_only

QUOTA = 1_000_000  # acme's producer_byte_rate, bytes/s
ACME_VALUE = 10_000
GLOBEX_RATE, GLOBEX_VALUE = 100, 200  # records/s, bytes
ALONE_S, LOADED_S = 4.0, 15.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


class Globex:
    """Paced producer: GLOBEX_RATE records/s, latency of each from produce() to its delivery report."""

    def __init__(self, conf: dict, topic: str):
        self.topic, self.sent, self.acked, self.errors = topic, 0, [], []
        self.p = Producer({**conf, "acks": "all", "linger.ms": 0, "message.timeout.ms": 60000})

    def run(self, seconds: float) -> list[float]:
        latencies: list[float] = []

        def report(err, msg, started):
            if err is not None:
                self.errors.append(str(err))
                return
            latencies.append((time.monotonic() - started) * 1000)
            self.acked.append(int(msg.key()))

        begin, n = time.monotonic(), int(seconds * GLOBEX_RATE)
        for i in range(n):
            due = begin + i / GLOBEX_RATE
            while (left := due - time.monotonic()) > 0:
                self.p.poll(left)  # serves delivery reports until the next record is due
            started, key = time.monotonic(), self.sent
            self.p.produce(self.topic, value=b"g" * GLOBEX_VALUE, key=str(key).encode(),
                           on_delivery=lambda err, msg, s=started: report(err, msg, s))
            self.sent += 1
        flush(self.p, timeout=30)
        return latencies


class Acme(threading.Thread):
    """Produces flat out until stopped; a small local queue keeps the final flush short."""

    def __init__(self, conf: dict, topic: str):
        super().__init__(daemon=True)
        self.topic, self.sent, self.acked, self.errors = topic, 0, [], []
        self.throttles: list[tuple[float, int]] = []  # (monotonic time, librdkafka's throttle max in ms)
        self.stop = threading.Event()
        self.p = Producer({**conf, "acks": "all", "linger.ms": 5, "queue.buffering.max.kbytes": 2048,
                           "message.timeout.ms": 120000, "statistics.interval.ms": 500,
                           "stats_cb": self._stats})

    def _stats(self, text: str) -> None:
        windows = [b.get("throttle") or {} for b in json.loads(text).get("brokers", {}).values()]
        self.throttles.append((time.monotonic(), max((w.get("max", 0) for w in windows), default=0)))

    def _report(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append(int(msg.key()))

    def run(self) -> None:
        value = b"a" * ACME_VALUE
        while not self.stop.is_set():
            try:
                self.p.produce(self.topic, value=value, key=str(self.sent).encode(), on_delivery=self._report)
                self.sent += 1
            except BufferError:
                self.p.poll(0.05)  # local queue full: wait for acknowledgements
            self.p.poll(0)
        flush(self.p, timeout=60)
        self.p.poll(0.6)  # the last statistics
        self.p = None  # the producer and its callbacks hold each other: let it go before the broker stops


def test_noisy_tenant_is_held_to_its_quota_and_its_neighbour_loses_nothing(broker_factory):
    broker = admin_broker(broker_factory, config={"quota.window.num": 5, "quota.window.size.seconds": 1})
    with admin_channel(broker) as ch:
        stub = rpc.TenantServiceStub(ch)
        stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="acme", members=["User:CN=acme-app"], quotas={"producer_byte_rate": QUOTA})), timeout=TIMEOUT_S)
        stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="globex", members=["User:CN=globex-app"])), timeout=TIMEOUT_S)
    create_topic(broker, "acme.load")
    create_topic(broker, "globex.orders")
    acme_conf = broker.tls.confluent(broker.bootstrap, broker.tls.client("acme-app"))
    globex = Globex(broker.tls.confluent(broker.bootstrap, broker.tls.client("globex-app")), "globex.orders")

    alone = globex.run(ALONE_S)
    acme = Acme(acme_conf, "acme.load")
    started = time.monotonic()
    acme.start()
    beside = globex.run(LOADED_S)
    acme.stop.set()
    acme.join(timeout=90)
    assert not acme.is_alive(), "acme's producer did not finish flushing"
    elapsed = time.monotonic() - started

    assert acme.errors == [] and globex.errors == []
    assert len(acme.acked) == acme.sent and len(globex.acked) == globex.sent
    rate = len(acme.acked) * ACME_VALUE / elapsed
    halfway = started + LOADED_S / 2
    early = [ms for t, ms in acme.throttles if t < halfway]
    late = [ms for t, ms in acme.throttles if halfway <= t < started + LOADED_S]
    print(f"\nacme: {rate / 1e6:.2f} MB/s over {elapsed:.1f} s against a quota of {QUOTA / 1e6:.2f} MB/s "
          f"(x{rate / QUOTA:.2f}); throttle max per 0.5 s interval: first half {max(early, default=0)} ms, "
          f"second half {max(late, default=0)} ms, avg of throttled intervals "
          f"{_mean([ms for _, ms in acme.throttles if ms]):.0f} ms")
    print(f"globex delivery latency alone: p50 {percentile(alone, 50):.1f} ms p99 {percentile(alone, 99):.1f} ms; "
          f"beside acme: p50 {percentile(beside, 50):.1f} ms p99 {percentile(beside, 99):.1f} ms "
          f"({len(alone)} + {len(beside)} records)")
    assert max(early, default=0) > 0, "acme was not throttled in the first half of the run"
    assert max(late, default=0) > 0, "acme was no longer throttled while still over its quota"
    assert rate <= 2 * QUOTA, f"acme produced {rate:,.0f} B/s against a quota of {QUOTA:,} B/s"

    deadline = Deadline(60)
    got = consume_assigned(broker, "acme.load", 1, len(acme.acked), timeout=deadline.left())
    assert sorted(int(m.key) for m in got) == sorted(acme.acked) == list(range(acme.sent))
    got = consume_assigned(broker, "globex.orders", 1, len(globex.acked), timeout=deadline.left())
    assert [int(m.key) for m in got] == globex.acked == list(range(globex.sent))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
