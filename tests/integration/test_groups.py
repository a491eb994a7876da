"""Consumer groups with real clients: rebalancing while records flow (each record delivered once,
with commits), resuming from committed offsets, static membership. Each test runs over PLAINTEXT
and over mTLS."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTP
from confluent_kafka import Consumer, KafkaError, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTP

from tests.fixtures.clients import (
    Delivery,
    aiokafka_conf,
    client_conf,
    create_topic,
    flush,
    kafka_python_conf,
    producer,
)
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import unique_name


def group_consumer(target, group: str, **conf) -> Consumer:
    base = {
        **client_conf(target),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 30000,
    }
    base.update(conf)
    return Consumer(base)


def produce_values(target, topic: str, values: list[bytes], partitions: int) -> Delivery:
    d = Delivery()
    p = producer(target)
    for i, v in enumerate(values):
        p.produce(topic, value=v, key=v, partition=i % partitions, on_delivery=d)
    flush(p)
    assert not d.errors, d.errors
    return d


class GroupWorker(threading.Thread):
    """A confluent-kafka group member that processes records and commits synchronously after
    every batch, recording what it saw and its rebalance callbacks."""

    def __init__(self, name: str, target, group: str, topic: str, stop: threading.Event, **conf):
        super().__init__(name=name, daemon=True)
        self.consumer = group_consumer(target, group, **conf)
        self.topic = topic
        self.stop_event = stop
        self.seen: list[tuple[int, int, bytes]] = []
        self.assignments: list[list[int]] = []
        self.revocations: list[list[int]] = []
        self.errors: list[str] = []
        self.assigned = threading.Event()

    def on_assign(self, consumer, partitions) -> None:
        self.assignments.append(sorted(p.partition for p in partitions))
        self.assigned.set()

    def on_revoke(self, consumer, partitions) -> None:
        self.revocations.append(sorted(p.partition for p in partitions))

    def run(self) -> None:
        c = self.consumer
        try:
            c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stop_event.is_set():
                msgs = c.consume(num_messages=50, timeout=0.2)
                good = []
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            self.errors.append(str(m.error()))
                        continue
                    good.append(m)
                if good:
                    self.seen.extend((m.partition(), m.offset(), m.value()) for m in good)
                    c.commit(asynchronous=False)
        except Exception as exc:  # reported by the test
            self.errors.append(repr(exc))
        finally:
            c.close()


def test_two_consumers_rebalance_while_records_flow_each_record_once(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("grp-rebalance")
    group = unique_name("g-rebalance")
    partitions = 4
    create_topic(b, topic, partitions)
    stop = threading.Event()
    first = GroupWorker("first", b, group, topic, stop)
    second = GroupWorker("second", b, group, topic, stop)

    def consumed() -> int:
        return len(first.seen) + len(second.seen)

    p = producer(b, **{"linger.ms": 2})
    d = Delivery()
    produced: list[bytes] = []
    first.start()
    try:
        assert first.assigned.wait(20), "first consumer got no assignment"
        rounds_after_rebalance = 0
        # Bounded: at most 120 rounds of 50 records. Records flow in rounds; each round waits
        # (with a deadline) for the group to catch up, so the rebalance happens mid-stream.
        for rnd in range(120):
            for _ in range(50):
                v = f"r{len(produced)}".encode()
                p.produce(topic, value=v, key=v, partition=len(produced) % partitions, on_delivery=d)
                produced.append(v)
            flush(p)
            if rnd == 4:
                second.start()  # joins while records are flowing: the group rebalances
            wait_for(
                lambda: consumed() >= len(produced),
                30,
                message=lambda: f"group to consume {len(produced)} records (has {consumed()})",
            )
            if second.seen and len(first.assignments) >= 2:
                rounds_after_rebalance += 1
                if rounds_after_rebalance >= 5:
                    break
        assert not d.errors, d.errors
        assert rounds_after_rebalance >= 5, "the second member never took over partitions"
        # Nothing more may arrive: give stragglers a chance to show up as duplicates.
        total = len(produced)
        assert stays_below(lambda: consumed() > total, 1.0), "records were delivered twice"
    finally:
        stop.set()
        first.join(30)
        if second.ident is not None:
            second.join(30)
    assert not first.errors and not second.errors, (first.errors, second.errors)
    seen = first.seen + second.seen
    counts = Counter(v for _, _, v in seen)
    dupes = {v: n for v, n in counts.items() if n > 1}
    assert not dupes, f"{len(dupes)} records delivered more than once, e.g. {list(dupes.items())[:5]}"
    assert set(counts) == set(produced), f"{len(set(produced) - set(counts))} records never delivered"
    assert len(first.assignments) >= 2, "the first member must have been rebalanced"
    # Per-partition order: offsets strictly increase within each partition, across both members.
    by_p: dict[int, list[int]] = {}
    for part, off, _ in sorted(seen, key=lambda t: (t[0], t[1])):
        by_p.setdefault(part, []).append(off)
    for part, offs in by_p.items():
        assert offs == list(range(len(offs))), f"partition {part}: offsets not contiguous"


def stays_below(condition, seconds: float) -> bool:
    """True if `condition` stays false for `seconds` (a bounded negative wait)."""
    try:
        wait_for(condition, seconds, message="change")
    except AssertionError:
        return True
    return False


def committed(target, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = group_consumer(target, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def consume_n_and_commit(target, group: str, topic: str, n: int) -> list[tuple[int, int, bytes]]:
    c = group_consumer(target, group)
    got: list[tuple[int, int, bytes]] = []
    try:
        c.subscribe([topic])
        deadline = Deadline(30)
        while len(got) < n and not deadline.expired():
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append((m.partition(), m.offset(), m.value()))
            c.commit(message=m, asynchronous=False)
        assert len(got) == n, f"consumed {len(got)} of {n}"
    finally:
        c.close()
    return got


@pytest.mark.keystream_only
def test_resume_from_committed_offsets_after_broker_restart(listener_broker):
    broker = listener_broker
    topic = unique_name("grp-resume")
    group = unique_name("g-resume")
    create_topic(broker, topic, 1)
    values = [f"m{i}".encode() for i in range(100)]
    produce_values(broker, topic, values, 1)

    first = consume_n_and_commit(broker, group, topic, 40)
    assert [v for _, _, v in first] == values[:40]
    assert committed(broker, group, topic, 1) == {0: 40}

    broker.restart()  # clean SIGTERM, exit code 0, then start on the same dir and port
    assert committed(broker, group, topic, 1) == {0: 40}, "committed offset lost on restart"
    rest = consume_n_and_commit(broker, group, topic, 60)
    assert [v for _, _, v in rest] == values[40:]
    assert rest[0][1] == 40

    broker.kill9()
    broker.start()
    assert committed(broker, group, topic, 1) == {0: 100}, "committed offset lost on kill -9"


def test_kafka_python_group_commits_and_resumes(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("grp-kp")
    group = unique_name("g-kp")
    create_topic(b, topic, 2)
    values = [f"kp{i}".encode() for i in range(50)]
    produce_values(b, topic, values, 2)

    def run(limit: int) -> list[bytes]:
        c = KafkaConsumer(
            topic,
            **kafka_python_conf(b),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
        )
        got: list[bytes] = []
        try:
            deadline = Deadline(30)
            while len(got) < limit and not deadline.expired():
                for _tp, recs in c.poll(timeout_ms=300, max_records=limit - len(got)).items():
                    got.extend(r.value for r in recs)
                c.commit()
            assert len(got) == limit, f"kafka-python consumed {len(got)} of {limit}"
            return got
        finally:
            c.close()

    first = run(20)
    second = run(30)
    assert sorted(first + second) == sorted(values), "each record once across the two sessions"
    c = KafkaConsumer(**kafka_python_conf(b), group_id=group, enable_auto_commit=False)
    try:
        offsets = {p: c.committed(KpTP(topic, p)) for p in range(2)}
    finally:
        c.close()
    assert offsets == {0: 25, 1: 25}


def test_aiokafka_group_commits_and_resumes(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("grp-aio")
    group = unique_name("g-aio")
    create_topic(b, topic, 2)
    values = [f"aio{i}".encode() for i in range(50)]
    produce_values(b, topic, values, 2)

    async def run(limit: int) -> list[bytes]:
        c = AIOKafkaConsumer(
            topic,
            **aiokafka_conf(b),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
        )
        await c.start()
        got: list[bytes] = []
        try:
            deadline = Deadline(30)
            while len(got) < limit and not deadline.expired():
                batch = await c.getmany(timeout_ms=300, max_records=limit - len(got))
                for _tp, recs in batch.items():
                    got.extend(r.value for r in recs)
                if batch:
                    await c.commit()
            assert len(got) == limit, f"aiokafka consumed {len(got)} of {limit}"
            committed = {p: await c.committed(AioTP(topic, p)) for p in range(2)}
            return got, committed
        finally:
            await c.stop()

    first, _ = asyncio.run(run(20))
    second, offsets = asyncio.run(run(30))
    assert sorted(first + second) == sorted(values), "each record once across the two sessions"
    assert offsets == {0: 25, 1: 25}


def test_static_member_rejoins_without_rebalance(shared_listener_broker):
    """A static member (group.instance.id) that restarts within the session timeout gets its old
    assignment back and the other member is not rebalanced."""
    b = shared_listener_broker
    topic = unique_name("grp-static")
    group = unique_name("g-static")
    create_topic(b, topic, 4)
    stop_a = threading.Event()
    stop_b = threading.Event()
    conf = {"session.timeout.ms": 15000}
    a = GroupWorker("static-a", b, group, topic, stop_a, **{"group.instance.id": "instance-a"}, **conf)
    other = GroupWorker("static-b", b, group, topic, stop_b, **{"group.instance.id": "instance-b"}, **conf)
    a.start()
    other.start()
    try:
        # Wait for a stable two-member generation: both own two partitions.
        wait_for(
            lambda: a.assignments and other.assignments and len(a.assignments[-1]) == 2 and len(other.assignments[-1]) == 2,
            40,
            message=lambda: f"a stable group of two (a={a.assignments}, b={other.assignments})",
        )
        a_partitions = a.assignments[-1]
        b_calls = (len(other.assignments), len(other.revocations))

        stop_a.set()  # a static member closes without leaving the group
        a.join(30)
        assert not a.is_alive()
        stop_a2 = threading.Event()
        a2 = GroupWorker("static-a2", b, group, topic, stop_a2, **{"group.instance.id": "instance-a"}, **conf)
        a2.start()
        try:
            assert a2.assigned.wait(20), "restarted static member got no assignment"
            assert a2.assignments[-1] == a_partitions, "a static member gets its partitions back"
            # Records still flow to both, and the other member saw no rebalance throughout.
            values = [f"s{i}".encode() for i in range(40)]
            produce_values(b, topic, values, 4)
            wait_for(
                lambda: len(a2.seen) + len(other.seen) >= 40,
                30,
                message="records consumed after the static rejoin",
            )
            assert (len(other.assignments), len(other.revocations)) == b_calls, (
                f"other member was rebalanced: assignments {other.assignments}, revocations {other.revocations}"
            )
        finally:
            stop_a2.set()
            a2.join(30)
    finally:
        stop_a.set()
        stop_b.set()
        a.join(30)
        other.join(30)
    assert not a.errors and not other.errors, (a.errors, other.errors)
