"""RecordBatch v2 helpers: build/validate/assign/iterate round trips, every validation error, bounded
decoding, and interop with an independent encoder/decoder (kafka-python's)."""

from __future__ import annotations

import struct

import cramjam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystream.broker import records as R
from keystream.broker.errors import ErrorCode, KafkaError

NOW = 1_700_000_000_000
CODECS = [R.COMPRESSION_NONE, R.COMPRESSION_GZIP, R.COMPRESSION_SNAPPY, R.COMPRESSION_LZ4, R.COMPRESSION_ZSTD]

SAMPLE = [
    (b"k1", b"v1", [("h1", b"x"), ("h2", None)], NOW),
    (None, b"no key", [], NOW + 5),
    (b"tomb", None, [], NOW + 2),
    (b"big", b"z" * 5000, [("\u00e9", b"")], NOW + 1),
]


def fix_crc(buf: bytearray, pos: int = 0) -> None:
    h = R.parse_header(buf, pos)
    struct.pack_into(">I", buf, pos + R.CRC_OFFSET, R.crc32c(bytes(buf[pos + R.ATTRIBUTES_OFFSET : pos + h.size])))


def patched(batch: bytes, offset: int, fmt: str, value: int, *, crc: bool = True) -> bytearray:
    buf = bytearray(batch)
    struct.pack_into(fmt, buf, offset, value)
    if crc:
        fix_crc(buf)
    return buf


def validate(buf, **kw):
    kw.setdefault("now_ms", NOW)
    return R.validate_batches(buf, **kw)


def code_of(buf, **kw) -> ErrorCode:
    with pytest.raises(KafkaError) as e:
        validate(buf, **kw)
    assert e.value.message
    return e.value.code


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_codec(codec):
    batch = R.build_batch(SAMPLE, compression=codec, producer_id=7, producer_epoch=1, base_sequence=3)
    [h] = validate(batch)
    assert (h.compression, h.records_count, h.last_offset_delta) == (codec, 4, 3)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (7, 1, 3, 6)
    assert h.max_timestamp == NOW + 5 and h.size == len(batch)
    recs = list(R.iter_records(batch))
    assert [(r.key, r.value, r.headers, r.timestamp) for r in recs] == [tuple(s) for s in SAMPLE]
    assert [r.offset for r in recs] == [0, 1, 2, 3]


def test_header_properties():
    batch = R.build_batch([(b"k", b"v", [], NOW)], base_offset=10, is_control=True, is_transactional=True)
    h = R.parse_header(batch)
    assert h.is_control and h.is_transactional and not h.timestamp_type_log_append
    assert (h.last_offset, h.next_offset) == (10, 11)


def test_assign_offsets_in_place_keeps_crc_valid():
    b1 = R.build_batch(SAMPLE[:2])
    b2 = R.build_batch(SAMPLE[2:])
    buf = bytearray(b1 + b2)
    batches = validate(buf)
    assert [h.position for h in batches] == [0, len(b1)]
    assert R.assign_offsets(buf, batches, 100, 5) == 104
    again = validate(buf)  # CRC still valid: only fields outside it changed
    assert [(h.base_offset, h.partition_leader_epoch) for h in again] == [(100, 5), (102, 5)]
    assert [r.offset for r in R.iter_records(buf[len(b1):])] == [102, 103]


def test_assign_offsets_log_append_time_rewrites_timestamp_and_crc():
    buf = bytearray(R.build_batch(SAMPLE[:2], compression=R.COMPRESSION_GZIP))
    batches = validate(buf)
    R.assign_offsets(buf, batches, 0, 0, log_append_time_ms=NOW + 999)
    [h] = validate(buf, timestamp_type="LogAppendTime")
    assert h.timestamp_type_log_append and h.max_timestamp == NOW + 999
    assert {r.timestamp for r in R.iter_records(buf)} == {NOW + 999}


def test_concatenated_batches_and_trailing_garbage():
    a, b = R.build_batch(SAMPLE[:1]), R.build_batch(SAMPLE[1:2])
    assert len(validate(a + b)) == 2
    assert code_of(a + b[:30]) == ErrorCode.CORRUPT_MESSAGE
    assert code_of(a + b"\x00" * 5) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda b: b"", ErrorCode.CORRUPT_MESSAGE),
        (lambda b: b[:40], ErrorCode.CORRUPT_MESSAGE),
        (lambda b: b[:-1], ErrorCode.CORRUPT_MESSAGE),
        (lambda b: patched(b, 8, ">i", len(b)), ErrorCode.CORRUPT_MESSAGE),  # batchLength too large
        (lambda b: patched(b, 8, ">i", 20, crc=False), ErrorCode.CORRUPT_MESSAGE),  # smaller than a header
        (lambda b: patched(b, 16, ">b", 1, crc=False), ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
        (lambda b: patched(b, 16, ">b", 0, crc=False), ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
        (lambda b: patched(b, 16, ">b", 3, crc=False), ErrorCode.CORRUPT_MESSAGE),
        (lambda b: patched(b, len(b) - 1, ">B", b[-1] ^ 1, crc=False), ErrorCode.CORRUPT_MESSAGE),  # CRC
        (lambda b: patched(b, 57, ">i", -1), ErrorCode.CORRUPT_MESSAGE),  # negative count
        (lambda b: patched(b, 57, ">i", 3), ErrorCode.CORRUPT_MESSAGE),  # count != lastOffsetDelta + 1
        (lambda b: patched(patched(b, 57, ">i", 1000), 23, ">i", 999), ErrorCode.CORRUPT_MESSAGE),  # too many
        (lambda b: patched(b, 21, ">h", 5), ErrorCode.UNSUPPORTED_COMPRESSION_TYPE),
        (lambda b: patched(b, 21, ">h", 7), ErrorCode.UNSUPPORTED_COMPRESSION_TYPE),
    ],
)
def test_validation_errors(mutate, code):
    batch = R.build_batch(SAMPLE[:2])
    assert code_of(bytes(mutate(batch))) == code


def test_zero_count_rejected():
    batch = R.build_batch(SAMPLE[:1])
    assert code_of(patched(patched(batch, 57, ">i", 0), 23, ">i", -1)) == ErrorCode.CORRUPT_MESSAGE


def test_message_too_large():
    batch = R.build_batch([(b"k", b"v" * 2000, [], NOW)])
    assert code_of(batch, max_message_bytes=len(batch) - 1) == ErrorCode.MESSAGE_TOO_LARGE
    assert validate(batch, max_message_bytes=len(batch))


def test_timestamp_bounds_for_create_time_only():
    old = R.build_batch([(b"k", b"v", [], NOW - 10_000)])
    future = R.build_batch([(b"k", b"v", [], NOW + 10_000)])
    assert code_of(old, before_max_ms=5_000) == ErrorCode.INVALID_TIMESTAMP
    assert code_of(future, after_max_ms=5_000) == ErrorCode.INVALID_TIMESTAMP
    assert validate(old, before_max_ms=10_000) and validate(future, after_max_ms=10_000)
    assert validate(old, before_max_ms=5_000, timestamp_type="LogAppendTime")
    no_ts = R.build_batch([(b"k", b"v", [], -1)])
    assert validate(no_ts, before_max_ms=0, after_max_ms=0)


def test_compressed_count_is_not_bounded_by_compressed_size():
    batch = R.build_batch([(b"k", b"v", [], NOW)] * 200, compression=R.COMPRESSION_ZSTD)
    assert R.parse_header(batch).size - R.HEADER_SIZE < 200 * R.MIN_RECORD_SIZE
    assert validate(batch)[0].records_count == 200


# ------------------------------------------------------------------ per-record decoding


def test_lying_key_length_is_corrupt_not_an_allocation():
    body = R.encode_varint(2**40) + b"x"  # key length far beyond the data
    rec = b"\x00" + R.encode_varint(0) + R.encode_varint(0) + body
    raw = R.encode_varint(len(rec)) + rec
    batch = bytearray(R.build_batch([(b"k", b"v", [], NOW)]))
    batch = bytearray(batch[: R.HEADER_SIZE]) + raw
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    fix_crc(batch)
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(batch))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_record_count_larger_than_records_is_corrupt():
    batch = patched(R.build_batch(SAMPLE[:2], compression=R.COMPRESSION_GZIP), 57, ">i", 3)
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(batch))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", CODECS[1:])
def test_decompression_is_capped(codec):
    batch = R.build_batch([(b"k", b"\x00" * 300_000, [], NOW)], compression=codec)
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(batch, max_decompressed_bytes=100_000))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    assert len(next(R.iter_records(batch, max_decompressed_bytes=400_000)).value) == 300_000


@pytest.mark.parametrize("codec", CODECS[1:])
def test_garbage_compressed_data_is_corrupt(codec):
    batch = bytearray(R.build_batch(SAMPLE, compression=codec))
    batch[R.HEADER_SIZE + 20 : R.HEADER_SIZE + 40] = b"\xff" * 20
    fix_crc(batch)
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(batch))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("framing", ["raw", "xerial", "framed"])
def test_snappy_framings(framing):
    plain = R.build_batch(SAMPLE)
    body = plain[R.HEADER_SIZE:]
    if framing == "raw":
        data = bytes(cramjam.snappy.compress_raw(body))
    elif framing == "framed":
        data = bytes(cramjam.snappy.compress(body))
    else:
        data = R.compress(R.COMPRESSION_SNAPPY, body)
        assert data.startswith(R.XERIAL_MAGIC)
    batch = bytearray(plain[: R.HEADER_SIZE]) + data
    struct.pack_into(">h", batch, R.ATTRIBUTES_OFFSET, R.COMPRESSION_SNAPPY)
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    fix_crc(batch)
    assert [r.value for r in R.iter_records(batch)] == [s[1] for s in SAMPLE]


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_round_trip(value):
    enc = R.encode_varint(value)
    assert R.read_varint(enc, 0, len(enc)) == (value, len(enc))


def test_varint_overlong_and_truncated():
    with pytest.raises(KafkaError):
        R.read_varint(b"\xff" * 11, 0, 11)
    with pytest.raises(KafkaError):
        R.read_varint(b"\x80", 0, 1)


# ------------------------------------------------------------------ interop with kafka-python's codec

KP_CODECS = {R.COMPRESSION_NONE: 0, R.COMPRESSION_GZIP: 1, R.COMPRESSION_SNAPPY: 2, R.COMPRESSION_LZ4: 3,
             R.COMPRESSION_ZSTD: 4}


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_reads_our_batches(codec):
    default_records = pytest.importorskip("kafka.record.default_records")
    batch = R.build_batch(SAMPLE, base_offset=40, compression=codec, producer_id=3, producer_epoch=2,
                          base_sequence=9)
    theirs = default_records.DefaultRecordBatch(bytearray(batch))
    assert theirs.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers]) for r in theirs]
    assert got == [(40 + i, s[3], s[0], s[1], s[2]) for i, s in enumerate(SAMPLE)]


@pytest.mark.parametrize("codec", CODECS)
def test_we_read_kafka_python_batches(codec):
    default_records = pytest.importorskip("kafka.record.default_records")
    builder = default_records.DefaultRecordBatchBuilder(2, KP_CODECS[codec], False, 11, 0, 0, 1 << 20)
    for i, (k, v, hdrs, ts) in enumerate(SAMPLE):
        builder.append(i, ts, k, v, hdrs)
    buf = bytearray(builder.build())
    [h] = validate(buf)
    assert (h.compression, h.records_count, h.producer_id) == (codec, len(SAMPLE), 11)
    assert [(r.key, r.value, r.headers, r.timestamp) for r in R.iter_records(buf)] == [tuple(s) for s in SAMPLE]


# ------------------------------------------------------------------ record walk (verify_records)


def relength_first_record(batch: bytes, delta: int, codec: int = 0) -> bytearray:
    """Change the first record's length varint by `delta`, keeping the batch and CRC consistent."""
    body = bytearray(R.decompress(codec, batch[R.HEADER_SIZE:]) if codec else batch[R.HEADER_SIZE:])
    length, pos = R.read_varint(body, 0, len(body))
    body = R.encode_varint(length + delta) + body[pos:]
    out = bytearray(batch[: R.HEADER_SIZE]) + R.compress(codec, bytes(body))
    struct.pack_into(">i", out, 8, len(out) - 12)
    fix_crc(out)
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_verify_records_accepts_good_batches(codec):
    batch = R.build_batch(SAMPLE, compression=codec)
    assert validate(batch, verify_records=True)[0].records_count == len(SAMPLE)


@pytest.mark.parametrize("codec", [0, R.COMPRESSION_ZSTD])
@pytest.mark.parametrize("delta", [5, -2, 1])
def test_verify_records_catches_lying_record_lengths(codec, delta):
    batch = relength_first_record(R.build_batch(SAMPLE[:2] + SAMPLE[:2], compression=codec), delta, codec)
    assert validate(batch)  # headers alone cannot tell
    assert code_of(batch, verify_records=True) == ErrorCode.CORRUPT_MESSAGE


def test_verify_records_catches_compressed_count_and_payload_lies():
    lying = patched(patched(R.build_batch(SAMPLE[:2], compression=R.COMPRESSION_GZIP), 57, ">i", 4), 23, ">i", 3)
    assert validate(lying)
    assert code_of(lying, verify_records=True) == ErrorCode.CORRUPT_MESSAGE
    bad = bytearray(R.build_batch([(None, b"q" * 100, [], NOW)], compression=R.COMPRESSION_GZIP))
    bad[-20:-10] = b"\xde\xad\xbe\xef" * 2 + b"\x00\x00"
    fix_crc(bad)
    assert code_of(bad, verify_records=True) == ErrorCode.CORRUPT_MESSAGE
    bomb = R.build_batch([(None, b"\x00" * 200_000, [], NOW)], compression=R.COMPRESSION_ZSTD)
    assert code_of(bomb, verify_records=True, max_decompressed_bytes=100_000) == ErrorCode.CORRUPT_MESSAGE


def test_verify_records_checks_offset_deltas():
    batch = R.build_batch(SAMPLE[:2], offset_deltas=[0, 5], last_offset_delta=1)
    assert code_of(batch, verify_records=True) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [0, R.COMPRESSION_LZ4])
def test_finite_before_bound_checks_every_record_timestamp(codec):
    mixed = R.build_batch([(b"a", b"ok", [], NOW), (b"b", b"old", [], NOW - 10_000)], compression=codec)
    assert R.parse_header(mixed).max_timestamp == NOW
    assert code_of(mixed, before_max_ms=5_000) == ErrorCode.INVALID_TIMESTAMP
    assert validate(mixed, before_max_ms=20_000)
    assert validate(mixed, before_max_ms=5_000, timestamp_type="LogAppendTime")
