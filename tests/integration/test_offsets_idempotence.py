"""Acknowledged records are visible at once (ListOffsets latest, Fetch high watermark); the
idempotent producer delivers each record exactly once, and its state survives a restart. Each test
runs over PLAINTEXT and over mTLS."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTP

from keystream.broker.protocol.messages.init_producer_id_request import InitProducerIdRequest
from tests.fixtures.clients import (
    Delivery,
    aiokafka_conf,
    client_conf,
    consume_assigned,
    create_topic,
    flush,
    kafka_python_conf,
    producer,
    wire,
)
from tests.fixtures.records import Record, build_batch, parse_records
from tests.fixtures.wire import WireClient, unique_name

OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def test_acknowledged_produce_is_visible_at_once_wire(shared_listener_broker):
    """Over two connections: after each acks=-1 (and acks=1) produce, ListOffsets(latest) and a
    Fetch's high watermark on the other connection already include it."""
    topic = unique_name("vis-wire")
    with wire(shared_listener_broker) as prod, wire(shared_listener_broker) as obs:
        prod.create_topic(topic, 2)
        expected = {0: 0, 1: 0}
        for i in range(60):
            part = i % 2
            n = 1 + i % 4
            resp = prod.produce(topic, part, build_batch([Record(value=f"{i}-{j}".encode()) for j in range(n)]), acks=-1 if i % 3 else 1)
            assert resp.error_code == 0
            assert resp.base_offset == expected[part]
            expected[part] += n
            assert obs.list_offset(topic, part, -1).offset == expected[part]
            f = obs.fetch(topic, part, expected[part] - n)
            assert f.high_watermark == expected[part]
            assert [r.value for r in parse_records(f.records)] == [f"{i}-{j}".encode() for j in range(n)]


def test_acknowledged_produce_is_visible_at_once_clients(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("vis-clients")
    create_topic(b, topic, 1)
    from confluent_kafka import Consumer, TopicPartition

    p = producer(b, **{"linger.ms": 0})
    watcher = Consumer({**client_conf(b), "group.id": "vis", "enable.auto.commit": False})
    kp_producer = KafkaProducer(**kafka_python_conf(b), acks="all", linger_ms=0)
    kp_consumer = KafkaConsumer(**kafka_python_conf(b), group_id=None, enable_auto_commit=False)
    try:
        for i in range(20):
            d = Delivery()
            p.produce(topic, value=f"c{i}".encode(), partition=0, on_delivery=d)
            flush(p)
            (acked,) = d.acked
            lo, hi = watcher.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
            assert hi == acked.offset + 1
            meta = kp_producer.send(topic, value=f"k{i}".encode(), partition=0).get(timeout=20)
            assert kp_consumer.end_offsets([KpTP(topic, 0)])[KpTP(topic, 0)] == meta.offset + 1
    finally:
        watcher.close()
        kp_producer.close(timeout=10)
        kp_consumer.close()


def test_confluent_idempotent_producer_exactly_once(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("idem-ck")
    create_topic(b, topic, 3)
    d = Delivery()
    p = producer(b, **{"enable.idempotence": True, "linger.ms": 5, "max.in.flight.requests.per.connection": 5})
    for i in range(3000):
        p.produce(topic, value=f"i{i}".encode(), key=f"{i}".encode(), partition=i % 3, on_delivery=d)
        p.poll(0)
    flush(p)
    assert not d.errors, d.errors[:5]
    got = consume_assigned(b, topic, 3, 3000, extra_wait=0.5)
    values = [m.value for m in got]
    assert len(values) == 3000 and len(set(values)) == 3000, "every record exactly once"
    for part in range(3):
        mine = [int(m.value[1:]) for m in got if m.partition == part]
        assert mine == sorted(mine), f"partition {part} keeps the produce order"


def test_kafka_python_and_aiokafka_idempotent_producers(shared_listener_broker):
    b = shared_listener_broker
    topic = unique_name("idem-py")
    create_topic(b, topic, 2)
    kp = KafkaProducer(**kafka_python_conf(b), enable_idempotence=True, acks="all", linger_ms=5)
    try:
        futures = [kp.send(topic, value=f"kp{i}".encode(), partition=i % 2) for i in range(500)]
        kp.flush(30)
        for f in futures:
            f.get(timeout=10)
    finally:
        kp.close(timeout=10)

    async def aio():
        p = AIOKafkaProducer(**aiokafka_conf(b), enable_idempotence=True, acks="all", linger_ms=5)
        await p.start()
        try:
            futs = [await p.send(topic, value=f"aio{i}".encode(), partition=i % 2) for i in range(500)]
            await asyncio.wait_for(asyncio.gather(*futs), 30)
        finally:
            await p.stop()

    asyncio.run(aio())
    got = consume_assigned(b, topic, 2, 1000, extra_wait=0.5)
    values = [m.value for m in got]
    assert len(values) == 1000 and len(set(values)) == 1000


def _init_producer(c: WireClient) -> tuple[int, int]:
    resp = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
    assert resp.error_code == 0, resp
    assert resp.producer_id >= 0
    return resp.producer_id, resp.producer_epoch


def _idem_batch(pid: int, epoch: int, seq: int, n: int, tag: str) -> bytes:
    return build_batch(
        [Record(value=f"{tag}{seq + i}".encode()) for i in range(n)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


def test_idempotent_sequence_checks_on_the_wire(shared_listener_broker):
    """A retried batch is answered with its original offset and stored once; a sequence gap is
    OUT_OF_ORDER_SEQUENCE_NUMBER."""
    topic = unique_name("idem-wire")
    with wire(shared_listener_broker) as c:
        c.create_topic(topic, 1)
        pid, epoch = _init_producer(c)
        r0 = c.produce(topic, 0, _idem_batch(pid, epoch, 0, 3, "a"))
        r1 = c.produce(topic, 0, _idem_batch(pid, epoch, 3, 2, "a"))
        assert (r0.error_code, r0.base_offset, r1.error_code, r1.base_offset) == (0, 0, 0, 3)
        dup = c.produce(topic, 0, _idem_batch(pid, epoch, 3, 2, "a"))
        assert dup.error_code == 0 and dup.base_offset == 3, "a duplicate gets its original offset"
        gap = c.produce(topic, 0, _idem_batch(pid, epoch, 9, 1, "a"))
        assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert c.list_offset(topic, 0, -1).offset == 5, "neither the duplicate nor the gap was stored"
        values = [r.value for r in parse_records(c.fetch(topic, 0, 0).records)]
        assert values == [b"a0", b"a1", b"a2", b"a3", b"a4"]


@pytest.mark.keystream_only
def test_idempotent_producer_state_survives_kill9(listener_broker):
    broker = listener_broker
    topic = unique_name("idem-restart")
    with wire(broker) as c:
        c.create_topic(topic, 1)
        pid, epoch = _init_producer(c)
        for seq in range(0, 10, 2):
            assert c.produce(topic, 0, _idem_batch(pid, epoch, seq, 2, "s")).error_code == 0
    broker.kill9()
    broker.start()
    with wire(broker) as c:
        dup = c.produce(topic, 0, _idem_batch(pid, epoch, 8, 2, "s"))
        assert (dup.error_code, dup.base_offset) == (0, 8), "duplicate detection after restart"
        gap = c.produce(topic, 0, _idem_batch(pid, epoch, 12, 1, "s"))
        assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        nxt = c.produce(topic, 0, _idem_batch(pid, epoch, 10, 1, "s"))
        assert (nxt.error_code, nxt.base_offset) == (0, 10)
        assert c.list_offset(topic, 0, -1).offset == 11
