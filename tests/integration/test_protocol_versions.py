"""Every advertised version of the data-path APIs works on the wire: Produce, Fetch (by name, and
by topic id from v13), ListOffsets (earliest, latest, by timestamp, max timestamp) and Metadata
(with topic ids); Fetch long polls with max.wait.ms/min.bytes and honours size limits; SIGTERM
answers in-flight requests before the broker exits."""

from __future__ import annotations

import select
import signal
import time

import pytest

from keystream.broker.protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from tests.fixtures.records import Record, build_batch, parse_batches, parse_records
from tests.fixtures.wire import WireClient, unique_name

UNKNOWN_TOPIC_ID = 100


@pytest.fixture(scope="module")
def versions(shared_broker) -> dict[int, tuple[int, int]]:
    with WireClient(shared_broker.address) as c:
        return c.api_versions()


def topic_id_of(c: WireClient, topic: str) -> bytes:
    (t,) = c.metadata([topic]).topics
    assert t.error_code == 0
    return bytes(t.topic_id)


def test_metadata_every_version(shared_broker, versions):
    topic = unique_name("pv-meta")
    with WireClient(shared_broker.address) as c:
        c.create_topic(topic, 3)
        lo, hi = versions[3]
        assert hi >= 12
        ids = set()
        for v in range(lo, hi + 1):
            resp = c.metadata([topic], version=v)
            (t,) = [t for t in resp.topics if t.name == topic]
            assert t.error_code == 0, f"Metadata v{v}"
            assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2], f"Metadata v{v}"
            assert all(p.leader_id == 1 for p in t.partitions)
            assert [(br.node_id, br.host, br.port) for br in resp.brokers] == [(1, "127.0.0.1", shared_broker.port)]
            if v >= 10:
                ids.add(bytes(t.topic_id))
        assert len(ids) == 1 and ids != {bytes(16)}, "one stable, non-zero topic id"


def test_produce_every_version_and_fetch_every_version(shared_broker, versions):
    topic = unique_name("pv-data")
    with WireClient(shared_broker.address) as c:
        c.create_topic(topic, 1)
        tid = topic_id_of(c, topic)
        lo, hi = versions[0]
        assert lo <= 3 and hi >= 9
        expected = []
        for v in range(max(lo, 3), hi + 1):
            values = [f"p{v}-{i}".encode() for i in range(3)]
            resp = c.produce(topic, 0, build_batch([Record(key=b"k", value=x, headers=[("v", str(v).encode())]) for x in values]), version=v)
            assert resp.error_code == 0, f"Produce v{v}: {resp.error_code}"
            assert resp.base_offset == len(expected), f"Produce v{v} base offset"
            expected += values
        flo, fhi = versions[1]
        assert fhi >= 13
        for v in range(max(flo, 4), fhi + 1):
            p = c.fetch(topic, 0, 0, version=v, topic_id=tid if v >= 13 else None)
            assert p.error_code == 0, f"Fetch v{v}: {p.error_code}"
            assert p.high_watermark == len(expected)
            assert [r.value for r in parse_records(p.records)] == expected, f"Fetch v{v}"
        # v13+ addresses topics by id only: an unknown id is UNKNOWN_TOPIC_ID.
        p = c.fetch("", 0, 0, version=fhi, topic_id=b"\x01" * 16)
        assert p.error_code == UNKNOWN_TOPIC_ID


def test_list_offsets_every_version(shared_broker, versions):
    topic = unique_name("pv-offsets")
    base = 1_700_000_000_000
    with WireClient(shared_broker.address) as c:
        c.create_topic(topic, 1)
        stamps = [base + 10, base + 50, base + 20, base + 40]  # max timestamp at offset 1
        for ts in stamps:
            assert c.produce(topic, 0, build_batch([Record(value=str(ts).encode(), timestamp=ts)])).error_code == 0
        lo, hi = versions[2]
        for v in range(lo, hi + 1):
            def query(ts: int, version=v):
                req = ListOffsetsRequest(
                    replica_id=-1,
                    topics=[ListOffsetsTopic(name=topic, partitions=[ListOffsetsPartition(partition_index=0, timestamp=ts, max_num_offsets=1)])],
                )
                (p,) = c.request(req, version).topics[0].partitions
                assert p.error_code == 0, f"ListOffsets v{version} ts={ts}: {p.error_code}"
                return p.old_style_offsets[0] if version == 0 else p.offset

            assert query(-1) == 4, f"ListOffsets v{v} latest"
            assert query(-2) == 0, f"ListOffsets v{v} earliest"
            if v >= 1:
                assert query(base + 30) == 1, f"ListOffsets v{v} first offset with timestamp >= target"
                assert query(base + 60) == -1, f"ListOffsets v{v} no such timestamp"
            if v >= 7:
                assert query(-3) == 1, f"ListOffsets v{v} max timestamp"


def test_fetch_long_poll_returns_when_data_arrives(shared_broker):
    topic = unique_name("pv-longpoll")
    with WireClient(shared_broker.address) as c, WireClient(shared_broker.address) as prod:
        c.create_topic(topic, 1)
        # Nothing to read: the fetch waits about max.wait.ms, then answers empty.
        t0 = time.monotonic()
        p = c.fetch(topic, 0, 0, max_wait_ms=600, min_bytes=1)
        waited = time.monotonic() - t0
        assert p.error_code == 0 and not p.records
        assert 0.4 <= waited < 5, f"empty long poll took {waited:.2f}s for max.wait.ms=600"
        # A produce during the wait completes it early.
        from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

        req = FetchRequest(
            replica_id=-1,
            max_wait_ms=10_000,
            min_bytes=1,
            max_bytes=1 << 20,
            session_epoch=-1,
            topics=[FetchTopic(topic=topic, partitions=[FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
        )
        t0 = time.monotonic()
        cid = c.send(req, 12)
        assert prod.produce(topic, 0, build_batch([Record(value=b"wake")])).error_code == 0
        resp = c.receive(cid, timeout=15)
        waited = time.monotonic() - t0
        (part,) = resp.responses[0].partitions
        assert [r.value for r in parse_records(part.records)] == [b"wake"]
        assert waited < 5, f"the long poll was not completed by the produce ({waited:.2f}s)"


def test_fetch_size_limits(shared_broker):
    topic = unique_name("pv-limits")
    with WireClient(shared_broker.address) as c:
        c.create_topic(topic, 1)
        for i in range(10):
            assert c.produce(topic, 0, build_batch([Record(value=bytes([65 + i]) * 1000)])).error_code == 0
        one = len(build_batch([Record(value=b"A" * 1000)]))
        # A limit smaller than the first batch still returns that whole batch (progress guarantee).
        p = c.fetch(topic, 0, 0, partition_max_bytes=100)
        batches = parse_batches(p.records)
        assert len(batches) >= 1 and batches[0].base_offset == 0 and batches[0].records[0].value == b"A" * 1000
        # A limit of about three batches returns at most that many complete batches.
        p = c.fetch(topic, 0, 0, partition_max_bytes=one * 3 + 10)
        assert len(p.records) <= one * 3 + 10
        assert [b.base_offset for b in parse_batches(p.records)] == [0, 1, 2]
        # The response-wide max_bytes caps it as well.
        p = c.fetch(topic, 0, 0, max_bytes=one * 2 + 5)
        assert [b.base_offset for b in parse_batches(p.records)] == [0, 1]


@pytest.mark.keystream_only
def test_sigterm_answers_in_flight_requests_and_exits_cleanly(broker):
    topic = unique_name("pv-sigterm")
    with WireClient(broker.address) as c:
        c.create_topic(topic, 1)
        assert c.produce(topic, 0, build_batch([Record(value=b"before")])).error_code == 0
        from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

        req = FetchRequest(
            replica_id=-1,
            max_wait_ms=3_000,
            min_bytes=1,
            max_bytes=1 << 20,
            session_epoch=-1,
            topics=[FetchTopic(topic=topic, partitions=[FetchPartition(partition=0, fetch_offset=1, partition_max_bytes=1 << 20)])],
        )
        cid = c.send(req, 12)
        # Give the broker a moment to park the long poll (and check it is still pending).
        ready, _, _ = select.select([c.sock], [], [], 0.3)
        assert not ready, "the long poll answered before it had data"
        broker.proc.send_signal(signal.SIGTERM)
        resp = c.receive(cid, timeout=15)
        (part,) = resp.responses[0].partitions
        assert part.error_code == 0 and not part.records
    assert broker.stop() == 0
    broker.start()
    with WireClient(broker.address) as c:
        assert [r.value for r in parse_records(c.fetch(topic, 0, 0).records)] == [b"before"]


def test_log_append_time_topic_rewrites_timestamps(shared_broker):
    """With message.timestamp.type=LogAppendTime the broker stamps batches with its own time, as
    Kafka does; the produce response reports it and consumers see TIMESTAMP_LOG_APPEND_TIME."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    from tests.fixtures.clients import consume_assigned

    topic = unique_name("pv-logappend")
    old = 1_500_000_000_000
    with WireClient(shared_broker.address) as c:
        c.create_topic(topic, 1, {"message.timestamp.type": "LogAppendTime"})
        before = int(time.time() * 1000)
        resp = c.produce(topic, 0, build_batch([Record(value=b"a", timestamp=old), Record(value=b"b", timestamp=old + 5)]))
        after = int(time.time() * 1000)
        assert resp.error_code == 0
        assert before - 1000 <= resp.log_append_time_ms <= after + 1000
        (batch,) = parse_batches(c.fetch(topic, 0, 0).records)
        assert batch.crc_ok, "the broker recomputes the CRC after rewriting the batch"
        assert batch.attributes & 0x08, "timestamp type bit set to LogAppendTime"
        assert batch.max_timestamp == resp.log_append_time_ms
    got = consume_assigned(shared_broker.bootstrap, topic, [0], 2)
    assert [m.value for m in got] == [b"a", b"b"]
    assert all(m.timestamp == resp.log_append_time_ms for m in got)
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": shared_broker.bootstrap, "group.id": "lat", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = None
        for _ in range(40):  # bounded: at most 40 polls of 0.5 s
            msg = consumer.poll(0.5)
            if msg is not None:
                break
        assert msg is not None and msg.error() is None
        assert msg.timestamp() == (TIMESTAMP_LOG_APPEND_TIME, resp.log_append_time_ms)
    finally:
        consumer.close()
