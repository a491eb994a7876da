"""Bad produce and fetch requests get Kafka's exact error codes, with an error message where the
version has one, and lose nothing: the log holds exactly the good records afterwards."""

from __future__ import annotations

import struct
import time

import pytest

from tests.fixtures.records import (
    LENGTH_OFFSET,
    Record,
    build_batch,
    parse_records,
)
from tests.fixtures.wire import WireClient, unique_name

OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TIMESTAMP = 32
INVALID_RECORD = 87


@pytest.fixture
def client(shared_broker):
    with WireClient(shared_broker.address) as c:
        yield c


@pytest.fixture
def topic(client):
    name = unique_name("prod-err")
    client.create_topic(name, 2)
    return name


def good_batch(tag: str, n: int = 2) -> bytes:
    return build_batch([Record(key=f"{tag}-k{i}".encode(), value=f"{tag}-v{i}".encode()) for i in range(n)])


def assert_log(c: WireClient, topic: str, values: list[bytes], partition: int = 0) -> None:
    assert c.list_offset(topic, partition, -1).offset == len(values)
    got = [r.value for r in parse_records(c.fetch(topic, partition, 0).records)] if values else []
    assert got == values


def check_error(resp, code: int, version: int) -> None:
    assert resp.error_code == code, f"error {resp.error_code} ({resp.error_message!r}), expected {code}"
    if version >= 8:
        assert resp.error_message, "Produce v8+ carries an error message"


@pytest.mark.parametrize("version", [3, 7, 9, 11])
def test_produce_to_unknown_topic_with_auto_create_off(client, version):
    name = unique_name("no-such-topic")
    resp = client.produce(name, 0, good_batch("x"), version=version)
    assert resp.error_code == UNKNOWN_TOPIC_OR_PARTITION
    (t,) = client.metadata([name]).topics
    assert t.error_code == UNKNOWN_TOPIC_OR_PARTITION, "producing must not create the topic"


def test_produce_to_unknown_partition(client, topic):
    resp = client.produce(topic, 7, good_batch("x"))
    assert resp.error_code == UNKNOWN_TOPIC_OR_PARTITION
    resp = client.produce(topic, -1, good_batch("x"))
    assert resp.error_code == UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize("version", [3, 8, 9])
def test_bad_crc_is_corrupt_message(client, topic, version):
    assert client.produce(topic, 0, good_batch("a"), version=version).error_code == 0
    resp = client.produce(topic, 0, build_batch([Record(value=b"evil")], corrupt_crc=True), version=version)
    check_error(resp, CORRUPT_MESSAGE, version)
    # A good batch after a flipped byte in the body (CRC left as computed for the original).
    batch = bytearray(good_batch("b"))
    batch[-3] ^= 0x01
    check_error(client.produce(topic, 0, bytes(batch), version=version), CORRUPT_MESSAGE, version)
    assert client.produce(topic, 0, good_batch("c"), version=version).error_code == 0
    assert_log(client, topic, [b"a-v0", b"a-v1", b"c-v0", b"c-v1"])


def test_one_corrupt_batch_rejects_the_whole_partition_request(client, topic):
    """Two batches for one partition, the second corrupt: nothing is appended. (Kafka answers
    INVALID_RECORD for any second batch in a v3+ produce; CORRUPT_MESSAGE is right too.)"""
    records = good_batch("ok") + build_batch([Record(value=b"bad")], corrupt_crc=True)
    resp = client.produce(topic, 0, records)
    assert resp.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), resp.error_code
    assert_log(client, topic, [])


def test_batch_larger_than_max_message_bytes(client):
    name = unique_name("small-msgs")
    client.create_topic(name, 1, {"max.message.bytes": 2048})
    assert client.produce(name, 0, build_batch([Record(value=b"s" * 1500)])).error_code == 0
    resp = client.produce(name, 0, build_batch([Record(value=b"L" * 4096)]))
    check_error(resp, MESSAGE_TOO_LARGE, 9)
    # The limit is on the (compressed) batch, so a large compressible batch that fits is fine.
    assert client.produce(name, 0, build_batch([Record(value=b"z" * 50_000)], compression="gzip")).error_code == 0
    assert client.list_offset(name, 0, -1).offset == 2


@pytest.mark.parametrize("direction", ["future", "past"])
def test_timestamp_out_of_bounds_is_invalid_timestamp(client, direction):
    name = unique_name(f"ts-{direction}")
    client.create_topic(name, 1, {"message.timestamp.after.max.ms": 60_000, "message.timestamp.before.max.ms": 60_000})
    now = int(time.time() * 1000)
    assert client.produce(name, 0, build_batch([Record(value=b"now", timestamp=now)])).error_code == 0
    skew = 3_600_000 if direction == "future" else -3_600_000
    resp = client.produce(name, 0, build_batch([Record(value=b"bad", timestamp=now + skew)]))
    check_error(resp, INVALID_TIMESTAMP, 9)
    # One bad record among good ones rejects the whole batch.
    mixed = build_batch([Record(value=b"ok", timestamp=now), Record(value=b"bad", timestamp=now + skew)])
    check_error(client.produce(name, 0, mixed), INVALID_TIMESTAMP, 9)
    assert_log(client, name, [b"now"])


def test_default_after_max_rejects_far_future_timestamps(client, topic):
    """Kafka 4's default message.timestamp.after.max.ms is one hour."""
    future = int(time.time() * 1000) + 48 * 3_600_000
    check_error(client.produce(topic, 1, build_batch([Record(value=b"f", timestamp=future)])), INVALID_TIMESTAMP, 9)


def _relength(batch: bytes, delta: int) -> bytes:
    """Change the batchLength field by `delta` without touching anything else."""
    (length,) = struct.unpack_from(">i", batch, LENGTH_OFFSET)
    return batch[:LENGTH_OFFSET] + struct.pack(">i", length + delta) + batch[LENGTH_OFFSET + 4 :]


# Only the batch header is checked on the produce path (magic, lengths, CRC-32C, record count
# against lastOffsetDelta and the bytes): a batch whose CRC is valid is stored as the producer
# encoded it, with no per-record work (see DESIGN.md); records are decoded only where a feature
# needs them (compaction now, schema validation later).
LIARS = {
    # record count in the header says more / fewer / negative records than the bytes hold (CRC valid)
    "count-too-high": lambda: build_batch([Record(value=b"a"), Record(value=b"b")], record_count=5),
    "count-too-low": lambda: build_batch([Record(value=b"a"), Record(value=b"b"), Record(value=b"c")], record_count=1),
    "count-negative": lambda: build_batch([Record(value=b"a")], record_count=-3),
    "count-zero": lambda: build_batch([Record(value=b"a")], record_count=0),
    "count-huge": lambda: build_batch([Record(value=b"a")], record_count=0x7FFFFFFF),
    # lastOffsetDelta disagrees with the record count
    "last-offset-delta": lambda: build_batch([Record(value=b"a"), Record(value=b"b")], last_offset_delta=9),
    # batchLength runs past the records field / stops short of it
    "batch-length-long": lambda: _relength(good_batch("l"), 40),
    "batch-length-short": lambda: _relength(good_batch("s"), -10),
    "batch-length-negative": lambda: _relength(good_batch("n"), -10_000),
    # the same lie in a compressed batch's header
    "gzip-count-too-high": lambda: build_batch([Record(value=b"a"), Record(value=b"b")], record_count=4, compression="gzip"),
}

# Malformed record sets that Kafka rejects with CORRUPT_MESSAGE or INVALID_RECORD depending on
# where it notices; either is a correct answer, appending anything is not.
MALFORMED = {
    "truncated-batch": lambda: good_batch("t")[:40],
    "trailing-garbage": lambda: good_batch("g") + b"\x00\x01\x02",
    "empty-records": lambda: b"",
}


@pytest.mark.parametrize("case", sorted(LIARS))
def test_batch_that_lies_about_its_bytes_is_corrupt_message(client, topic, case):
    records = LIARS[case]()
    resp = client.produce(topic, 0, records)
    check_error(resp, CORRUPT_MESSAGE, 9)
    assert client.produce(topic, 0, good_batch("after")).error_code == 0
    assert_log(client, topic, [b"after-v0", b"after-v1"])


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_record_set_is_rejected(client, topic, case):
    resp = client.produce(topic, 0, MALFORMED[case]())
    assert resp.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), f"{case}: error {resp.error_code}"
    assert client.produce(topic, 0, good_batch("after")).error_code == 0
    assert_log(client, topic, [b"after-v0", b"after-v1"])


@pytest.mark.parametrize("offset", [10_000, -5, 3])
def test_fetch_out_of_range(client, topic, offset):
    assert client.produce(topic, 1, good_batch("f")).error_code == 0  # offsets 0..1
    p = client.fetch(topic, 1, offset)
    assert p.error_code == OFFSET_OUT_OF_RANGE, f"fetch at {offset}: {p.error_code}"
    assert p.high_watermark in (2, -1)
    assert not p.records


def test_fetch_at_log_end_is_not_an_error(client, topic):
    assert client.produce(topic, 1, good_batch("e")).error_code == 0
    p = client.fetch(topic, 1, 2)
    assert p.error_code == 0 and p.high_watermark == 2 and not p.records


def test_fetch_unknown_topic_and_partition(client, topic):
    assert client.fetch(unique_name("nope"), 0, 0).error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert client.fetch(topic, 9, 0).error_code == UNKNOWN_TOPIC_OR_PARTITION


def test_list_offsets_unknown_partition(client, topic):
    assert client.list_offset(topic, 5, -1).error_code == UNKNOWN_TOPIC_OR_PARTITION
