"""Hostile clients cannot make the broker's memory grow without bound.

- A client that pipelines requests and never reads a response: the broker stops reading from it
  (backpressure) once its responses back up and its queued requests reach a bound, instead of
  buffering everything the client sends.
- A Fetch asking for 2^31-1 bytes of a partition far larger than that cap gets at most the
  broker's `fetch.max.bytes` (Kafka's default, 55 MiB), not the whole partition read into memory.

(A frame header announcing 2 GiB is refused before allocation: test_framing.py.) Each test checks
the broker's RSS from /proc, then that a well-behaved client is still served.
"""

from __future__ import annotations

import os
import socket

import pytest

from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.fixtures.records import Record, build_batch
from tests.fixtures.wire import WireClient, encode_request, frame, unique_name

MiB = 1 << 20
INT32_MAX = 2**31 - 1
KAFKA_FETCH_MAX_BYTES = 57_671_680  # fetch.max.bytes default: 55 MiB
BATCH = build_batch([Record(value=os.urandom(MiB - 4096))])


def _produce_frame(topic: str, cid: int) -> bytes:
    req = ProduceRequest(acks=1, timeout_ms=10000, topic_data=[
        TopicProduceData(name=topic, partition_data=[PartitionProduceData(index=0, records=BATCH)])])
    return frame(encode_request(req, 9, cid))


def _fetch_frame(topic: str, cid: int, max_bytes: int) -> bytes:
    req = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=max_bytes, isolation_level=0,
                       session_id=0, session_epoch=-1, topics=[FetchTopic(topic=topic, partitions=[
                           FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=max_bytes)])])
    return frame(encode_request(req, 12, cid))


def _fill(broker, topic: str, mib: int) -> None:
    """`mib` batches of ~1 MiB, pipelined 8 at a time."""
    with WireClient(broker.address, timeout=30) as c:
        c.create_topic(topic, 1)
        for start in range(0, mib, 8):
            n = min(8, mib - start)
            c.send_raw(b"".join(_produce_frame(topic, 1000 + start + i) for i in range(n)))
            for _ in range(n):
                c.read_frame()
        assert c.list_offset(topic, 0, -1).offset == mib


def _still_serves(broker, topic: str) -> None:
    with WireClient(broker.address, timeout=30) as c:
        assert 18 in c.api_versions()
        assert c.produce(topic, 0, build_batch([Record(value=b"after")])).error_code == 0
        p = c.fetch(topic, 0, 0, max_bytes=4096, partition_max_bytes=4096)
        assert p.error_code == 0 and len(p.records) > 0
    assert broker.running


@pytest.fixture
def big_topic(broker):
    topic = unique_name("big")
    _fill(broker, topic, 150)
    return topic


def test_client_that_never_reads_is_paused_not_buffered(broker, big_topic):
    """Fetches whose responses back up, then 1 MiB produce requests: without backpressure the broker
    queued 500 of them (RSS +860 MiB); it must stop reading so the client's sends block."""
    before = broker.rss_bytes()
    attacker = socket.create_connection(broker.address)
    attacker.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    attacker.settimeout(3)  # a send blocked this long means the broker stopped reading
    sent_mib = 0
    try:
        attacker.sendall(b"".join(_fetch_frame(big_topic, i, 8 * MiB) for i in range(4)))
        with pytest.raises(TimeoutError):
            while sent_mib < 400:
                attacker.sendall(_produce_frame(big_topic, 100 + sent_mib))
                sent_mib += 1
        grown = broker.rss_bytes() - before
        assert sent_mib < 200, f"the broker kept reading: {sent_mib} MiB accepted from a client that reads nothing"
        assert grown < 120 * MiB, f"RSS grew by {grown / MiB:.0f} MiB for a client that reads nothing"
        _still_serves(broker, big_topic)
    finally:
        attacker.close()
    _still_serves(broker, big_topic)


def test_fetch_of_int32_max_bytes_is_capped_by_fetch_max_bytes(broker, big_topic):
    before = broker.rss_bytes()
    with WireClient(broker.address, timeout=60) as c:
        c.send_raw(_fetch_frame(big_topic, 7, INT32_MAX))
        size = len(c.read_frame())
        grown = broker.rss_bytes() - before
    assert 50 * MiB < size <= KAFKA_FETCH_MAX_BYTES + 4096, f"a {size}-byte response to a 2^31-1 byte Fetch"
    assert grown < 100 * MiB, f"RSS grew by {grown / MiB:.0f} MiB for one capped Fetch of a 150 MiB partition"
    _still_serves(broker, big_topic)
