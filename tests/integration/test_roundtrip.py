"""Round trips with every real client and every compression: keys, values, headers and timestamps
across partitions come back exactly as produced, in order within each partition."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTP
from confluent_kafka import TIMESTAMP_CREATE_TIME
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTP

from tests.fixtures.clients import (
    COMPRESSIONS,
    Delivery,
    Msg,
    by_partition,
    consume_assigned,
    create_topic,
    flush,
    kcat,
    kcat_consume,
    now_ms,
    producer,
)
from tests.fixtures.waiting import Deadline
from tests.fixtures.wire import unique_name

PARTITIONS = 3
COUNT = 60


def expected_records(n: int = COUNT, *, binary: bool = True, null_header_values: bool = False) -> list[Msg]:
    """A varied record set: null and empty keys/values, binary, a large compressible value,
    repeated and empty headers, distinct explicit timestamps, spread over the partitions."""
    base_ts = now_ms() - 3_600_000
    out = []
    for i in range(n):
        key: bytes | None = f"key-{i}".encode()
        value: bytes | None = f"value-{i}-".encode() + b"x" * (i % 13)
        if i % 11 == 3:
            key = None
        if i % 17 == 5:
            value = None
        if i == 7:
            value = b""
        if i == 8:
            key = b""
        if binary and i == 9:
            value = bytes(range(256)) * 4
        if i == 10:
            value = (b"compressible " * 8000)[:100_000]
        headers: list[tuple[str, bytes | None]] = [("seq", str(i).encode())]
        if i % 3 == 0:
            headers += [("dup", b"a"), ("dup", b"b"), ("empty", b"")]
        if null_header_values and i % 5 == 0:
            headers.append(("null", None))
        out.append(Msg(i % PARTITIONS, -1, key, value, headers, base_ts + i * 1000))
    return out


def check(sent: list[Msg], got: list[Msg], *, timestamps: bool = True) -> None:
    got_by_p = by_partition(got)
    for p in range(PARTITIONS):
        exp = [m for m in sent if m.partition == p]
        recv = got_by_p.get(p, [])
        assert [m.offset for m in recv] == list(range(len(exp))), f"partition {p} offsets"
        assert [(m.key, m.value) for m in recv] == [(m.key, m.value) for m in exp], f"partition {p} keys/values"
        assert [m.headers for m in recv] == [m.headers for m in exp], f"partition {p} headers"
        if timestamps:
            assert [m.timestamp for m in recv] == [m.timestamp for m in exp], f"partition {p} timestamps"
    assert len(got) == len(sent)


# ------------------------------------------------------------------------------ confluent-kafka
def confluent_produce(bootstrap: str, topic: str, sent: list[Msg], compression: str) -> None:
    d = Delivery()
    p = producer(bootstrap, **{"compression.type": compression, "linger.ms": 20})
    for m in sent:
        p.produce(topic, value=m.value, key=m.key, partition=m.partition, headers=m.headers, timestamp=m.timestamp, on_delivery=d)
    flush(p)
    assert not d.errors, d.errors
    assert len(d.acked) == len(sent)
    for p_, msgs in by_partition(d.acked).items():
        assert sorted(m.offset for m in msgs) == list(range(len(msgs))), f"acked offsets in partition {p_}"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_confluent_kafka_round_trip(shared_broker, compression):
    topic = unique_name(f"rt-ck-{compression}")
    create_topic(shared_broker.bootstrap, topic, PARTITIONS)
    sent = expected_records(null_header_values=True)
    confluent_produce(shared_broker.bootstrap, topic, sent, compression)
    got = consume_assigned(shared_broker.bootstrap, topic, PARTITIONS, len(sent), extra_wait=0.3)
    check(sent, got)


def test_confluent_kafka_timestamp_type_is_create_time(shared_broker):
    topic = unique_name("rt-ck-tstype")
    # a 2020 timestamp is past the default retention: keep it from the maintenance pass (every 15 s)
    create_topic(shared_broker.bootstrap, topic, 1, config={"retention.ms": -1})
    p = producer(shared_broker.bootstrap)
    p.produce(topic, value=b"v", partition=0, timestamp=1_600_000_000_000)
    flush(p)
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": shared_broker.bootstrap, "group.id": "tstype", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, -2)])
        deadline = Deadline(20)
        msg = None
        while msg is None and not deadline.expired():
            msg = c.poll(0.5)
        assert msg is not None and msg.error() is None
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, 1_600_000_000_000)
    finally:
        c.close()


# ------------------------------------------------------------------------------ kafka-python
def kafka_python_produce(bootstrap: str, topic: str, sent: list[Msg], compression: str) -> None:
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if compression == "none" else compression,
        acks="all",
        linger_ms=20,
        request_timeout_ms=20000,
    )
    try:
        futures = [
            p.send(
                topic,
                value=m.value,
                key=m.key,
                partition=m.partition,
                headers=[(k, v) for k, v in m.headers],
                timestamp_ms=m.timestamp,
            )
            for m in sent
        ]
        p.flush(30)
        metas = [f.get(timeout=30) for f in futures]
    finally:
        p.close(timeout=10)
    for m, meta in zip(sent, metas, strict=True):
        assert meta.partition == m.partition


def kafka_python_consume(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Msg]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", group_id=None)
    try:
        tps = [KpTP(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[Msg] = []
        deadline = Deadline(timeout)
        while len(out) < expected and not deadline.expired():
            for _tp, recs in c.poll(timeout_ms=500).items():
                for r in recs:
                    out.append(Msg(r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_kafka_python_round_trip(shared_broker, compression):
    topic = unique_name(f"rt-kp-{compression}")
    create_topic(shared_broker.bootstrap, topic, PARTITIONS)
    sent = expected_records()
    kafka_python_produce(shared_broker.bootstrap, topic, sent, compression)
    got = kafka_python_consume(shared_broker.bootstrap, topic, len(sent))
    check(sent, got)


# ------------------------------------------------------------------------------ aiokafka
async def aiokafka_produce(bootstrap: str, topic: str, sent: list[Msg], compression: str) -> None:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if compression == "none" else compression,
        acks="all",
        linger_ms=20,
        request_timeout_ms=20000,
    )
    await p.start()
    try:
        futures = [
            await p.send(
                topic,
                value=m.value,
                key=m.key,
                partition=m.partition,
                timestamp_ms=m.timestamp,
                headers=[(k, v) for k, v in m.headers],
            )
            for m in sent
        ]
        metas = await asyncio.wait_for(asyncio.gather(*futures), 30)
    finally:
        await p.stop()
    for m, meta in zip(sent, metas, strict=True):
        assert meta.partition == m.partition


async def aiokafka_consume(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Msg]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        tps = [AioTP(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Msg] = []
        deadline = Deadline(timeout)
        while len(out) < expected and not deadline.expired():
            batch = await c.getmany(timeout_ms=500)
            for _tp, recs in batch.items():
                for r in recs:
                    out.append(Msg(r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp))
        return out
    finally:
        await c.stop()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_aiokafka_round_trip(shared_broker, compression):
    topic = unique_name(f"rt-aio-{compression}")
    create_topic(shared_broker.bootstrap, topic, PARTITIONS)
    sent = expected_records()

    async def run():
        await aiokafka_produce(shared_broker.bootstrap, topic, sent, compression)
        return await aiokafka_consume(shared_broker.bootstrap, topic, len(sent))

    got = asyncio.run(run())
    check(sent, got)


# ------------------------------------------------------------------------------ kcat
def kcat_produce(bootstrap: str, topic: str, compression: str, per_partition: int) -> tuple[list[Msg], int, int]:
    """Produce text records with kcat (one run per partition, keys after a tab, headers from -H,
    an empty value sent as NULL with -Z); returns (expected, time before, time after)."""
    sent: list[Msg] = []
    before = now_ms()
    for p in range(PARTITIONS):
        lines = []
        for i in range(per_partition):
            key = f"k{p}-{i}"
            value = "" if i == 4 else f"kcat value {p}/{i} " + "z" * (i * 7)
            lines.append(f"{key}\t{value}")
            sent.append(Msg(p, -1, key.encode(), None if value == "" else value.encode(), [("src", b"kcat"), ("n", b"")], None))
        kcat(
            "-b", bootstrap, "-P", "-t", topic, "-p", str(p), "-z", compression, "-K", "\t", "-Z",
            "-H", "src=kcat", "-H", "n=",
            "-X", "linger.ms=10", "-X", "acks=all",
            input=("\n".join(lines) + "\n").encode(),
        )  # fmt: skip
    return sent, before, now_ms()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_kcat_round_trip(shared_broker, compression):
    topic = unique_name(f"rt-kcat-{compression}")
    create_topic(shared_broker.bootstrap, topic, PARTITIONS)
    sent, before, after = kcat_produce(shared_broker.bootstrap, topic, compression, per_partition=20)
    got = kcat_consume(shared_broker.bootstrap, topic)
    check(sent, got, timestamps=False)
    for m in got:
        assert before - 1000 <= m.timestamp <= after + 1000, "kcat records carry the produce time"


# ------------------------------------------------------------------------------ across clients
def test_every_client_reads_what_every_client_wrote(shared_broker):
    """One topic written by all four clients with four compressions; all clients read back the
    same records (batches are stored and served as received)."""
    b = shared_broker.bootstrap
    topic = unique_name("rt-mixed")
    create_topic(b, topic, PARTITIONS)
    a = expected_records(24, binary=False)
    confluent_produce(b, topic, a, "zstd")
    c = expected_records(24, binary=False)
    kafka_python_produce(b, topic, c, "lz4")
    d = expected_records(24, binary=False)
    asyncio.run(aiokafka_produce(b, topic, d, "snappy"))
    k, _, _ = kcat_produce(b, topic, "gzip", per_partition=5)
    total = len(a) + len(c) + len(d) + len(k)

    def key_of(m: Msg):
        return (m.partition, m.offset, m.key, m.value, tuple(m.headers))

    reference = sorted(map(key_of, consume_assigned(b, topic, PARTITIONS, total)))
    assert len(reference) == total
    assert sorted(map(key_of, kafka_python_consume(b, topic, total))) == reference
    assert sorted(map(key_of, asyncio.run(aiokafka_consume(b, topic, total)))) == reference
    assert sorted(map(key_of, kcat_consume(b, topic))) == reference
