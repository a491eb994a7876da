"""Kafka RecordBatch v2 (magic 2): header checks on the produce hot path, offset assignment in place,
and per-record decoding/encoding only for the features that need it (compaction, schema checks, tests).

The hot path (`validate_batches`, `assign_offsets`) reads batch headers only: the broker stores batches
as the producer sent them and rewrites nothing covered by the CRC, except for LogAppendTime topics
where Kafka also rewrites maxTimestamp and the CRC. `validate_batches(verify_records=True)` adds
Kafka's per-record framing checks (about 2 us per record) for brokers that want them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import cramjam
import google_crc32c

from keystream.broker.errors import ErrorCode, KafkaError

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21  # the CRC covers attributes .. end of batch
MAX_TIMESTAMP_OFFSET = 35
MIN_RECORD_SIZE = 7  # length varint + attributes + ts delta + offset delta + key len + value len + headers

COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD = range(5)
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
ATTR_COMPRESSION_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40  # KIP-534: baseTimestamp holds the compaction delete horizon

NO_TIMESTAMP = -1
INT32_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
DEFAULT_MAX_DECOMPRESSED = 64 << 20

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
SNAPPY_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"
XERIAL_BLOCK = 32 * 1024


def _corrupt(message: str) -> KafkaError:
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C; google_crc32c only takes read-only `bytes`, so other buffers are copied once."""
    return google_crc32c.value(data if type(data) is bytes else bytes(data))


class BatchHeader(NamedTuple):
    """The 61-byte v2 batch header plus where the batch starts in the buffer it was parsed from."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    position: int = 0

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_COMPRESSION_MASK

    @property
    def timestamp_type_log_append(self) -> bool:
        return bool(self.attributes & ATTR_LOG_APPEND_TIME)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & ATTR_DELETE_HORIZON)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def last_sequence(self) -> int:
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def increment_sequence(seq: int, delta: int) -> int:
    """Producer sequences wrap at Int32.MAX back to 0, as in Kafka."""
    if seq < 0:
        return seq
    return (seq + delta) % (INT32_MAX + 1)


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode one header at `pos` (the caller has checked that 61 bytes are there)."""
    return BatchHeader(*HEADER.unpack_from(buf, pos), pos)


def split_batches(chunks) -> Iterator[memoryview]:
    """One view per batch of `PartitionLog.read` chunks (whole batches back to back)."""
    for chunk in chunks:
        view = memoryview(chunk)
        pos = 0
        while pos + HEADER_SIZE <= len(view):
            size = parse_header(view, pos).size
            if pos + size > len(view):
                break
            yield view[pos:pos + size]
            pos += size


def _timestamp_type_is_log_append(timestamp_type: str | int) -> bool:
    if isinstance(timestamp_type, str):
        return timestamp_type == "LogAppendTime"
    return timestamp_type == 1


def validate_batches(
    buf: bytes | bytearray | memoryview,
    *,
    max_message_bytes: int = 1048588,
    timestamp_type: str | int = "CreateTime",
    before_max_ms: int = 2**63 - 1,
    after_max_ms: int = 2**63 - 1,
    now_ms: int | None = None,
    verify_records: bool = False,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED,
) -> list[BatchHeader]:
    """Check a produce payload of concatenated v2 batches; raise KafkaError with Kafka's code.

    By default only headers are read (the hot path). Records are walked, after decompression if
    needed, only with `verify_records=True` (every record's framing, as Kafka's LogValidator checks)
    or when a finite message.timestamp.before.max.ms needs each record's timestamp: the batch header
    carries the newest timestamp but not the oldest.
    """
    view = memoryview(buf)
    total = len(view)
    if total == 0:
        raise _corrupt("empty record set")
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    check_time = not _timestamp_type_is_log_append(timestamp_type)
    batches: list[BatchHeader] = []
    pos = 0
    while pos < total:
        remaining = total - pos
        if remaining < LOG_OVERHEAD + 5:
            raise _corrupt(f"truncated record batch at byte {pos}: {remaining} bytes left")
        magic = view[pos + MAGIC_OFFSET]
        if magic < 2:
            raise KafkaError(
                ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
                f"record batch magic {magic} is not supported; only magic 2 (RecordBatch v2) is",
            )
        if magic > 2:
            raise _corrupt(f"unknown record batch magic {magic}")
        if remaining < HEADER_SIZE:
            raise _corrupt(f"truncated record batch header at byte {pos}")
        h = parse_header(view, pos)
        size = h.size
        if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
            raise _corrupt(f"batchLength {h.batch_length} is smaller than the v2 header")
        if size > remaining:
            raise _corrupt(f"batchLength {h.batch_length} exceeds the {remaining - LOG_OVERHEAD} bytes sent")
        if size > max_message_bytes:
            raise KafkaError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"record batch of {size} bytes exceeds max.message.bytes {max_message_bytes}",
            )
        if crc32c(view[pos + ATTRIBUTES_OFFSET : pos + size]) != h.crc:
            raise _corrupt(f"record batch CRC mismatch at byte {pos}")
        _check_counts(h)
        if h.compression > COMPRESSION_ZSTD:
            raise KafkaError(
                ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {h.compression}"
            )
        if check_time and h.max_timestamp != NO_TIMESTAMP:
            _check_timestamp(h.max_timestamp, now_ms, before_max_ms, after_max_ms)
        if verify_records or (check_time and before_max_ms < LONG_MAX):
            body = view[pos + HEADER_SIZE : pos + size]
            if h.compression != COMPRESSION_NONE:
                body = memoryview(decompress(h.compression, body, max_decompressed_bytes))
            bounds = (now_ms, before_max_ms, after_max_ms) if check_time else None
            walk_records(body, h.records_count, h.base_timestamp, bounds)
        batches.append(h)
        pos += size
    return batches


def _check_timestamp(ts: int, now_ms: int, before_max_ms: int, after_max_ms: int) -> None:
    if now_ms - ts > before_max_ms or ts - now_ms > after_max_ms:
        raise KafkaError(
            ErrorCode.INVALID_TIMESTAMP,
            f"timestamp {ts} is out of range of the broker time {now_ms} "
            f"(before.max.ms {before_max_ms}, after.max.ms {after_max_ms})",
        )


def walk_records(
    body: bytes | bytearray | memoryview,
    count: int,
    base_timestamp: int,
    time_bounds: tuple[int, int, int] | None = None,
) -> None:
    """Check the framing of `count` records (lengths, offset deltas 0..n-1, no bytes left over) without
    building objects; with time_bounds (now, before.max.ms, after.max.ms) check each timestamp too.

    Single-byte varints (nearly all of them) are decoded inline: this loop is the per-record cost.
    """
    if not isinstance(body, bytes):
        body = bytes(body)
    pos, end = 0, len(body)
    rv = read_varint
    for i in range(count):
        b = body[pos] if pos < end else 0x80
        length, pos = ((b >> 1) ^ -(b & 1), pos + 1) if b < 0x80 else rv(body, pos, end)
        rend = pos + length
        if length < MIN_RECORD_SIZE - 1 or rend > end:
            raise _corrupt(f"record {i} has invalid length {length}")
        p = pos + 1  # attributes
        b = body[p]
        ts_delta, p = ((b >> 1) ^ -(b & 1), p + 1) if b < 0x80 else rv(body, p, rend)
        b = body[p] if p < rend else 0x80
        offset_delta, p = ((b >> 1) ^ -(b & 1), p + 1) if b < 0x80 else rv(body, p, rend)
        if offset_delta != i:
            raise _corrupt(f"record {i} has offset delta {offset_delta}")
        b = body[p] if p < rend else 0x80
        klen, p = ((b >> 1) ^ -(b & 1), p + 1) if b < 0x80 else rv(body, p, rend)
        p += klen if klen > 0 else 0
        b = body[p] if p < rend else 0x80
        vlen, p = ((b >> 1) ^ -(b & 1), p + 1) if b < 0x80 else rv(body, p, rend)
        p += vlen if vlen > 0 else 0
        b = body[p] if p < rend else 0x80
        n_headers, p = ((b >> 1) ^ -(b & 1), p + 1) if b < 0x80 else rv(body, p, rend)
        if klen < -1 or vlen < -1 or n_headers < 0:
            raise _corrupt(f"record {i} has a negative length")
        for _ in range(n_headers):
            hk, p = rv(body, p, rend)
            if hk < 0:
                raise _corrupt(f"record {i} has a header with no key")
            hv, p = rv(body, p + hk, rend)
            if hv < -1:
                raise _corrupt(f"record {i} has a header value length {hv}")
            p += hv if hv > 0 else 0
        if p != rend:
            raise _corrupt(f"record {i} length {length} does not match its fields")
        if time_bounds is not None and base_timestamp + ts_delta != NO_TIMESTAMP:
            _check_timestamp(base_timestamp + ts_delta, *time_bounds)
        pos = rend
    if pos != end:
        raise _corrupt(f"{end - pos} bytes follow the last of {count} records")


def _check_counts(h: BatchHeader) -> None:
    count = h.records_count
    if count <= 0:
        raise _corrupt(f"invalid record count {count}")
    if h.last_offset_delta + 1 != count:
        raise _corrupt(f"record count {count} is inconsistent with lastOffsetDelta {h.last_offset_delta}")
    if h.compression == COMPRESSION_NONE and count * MIN_RECORD_SIZE > h.size - HEADER_SIZE:
        raise _corrupt(f"record count {count} cannot fit in {h.size - HEADER_SIZE} bytes of records")


def assign_offsets(
    buf: bytearray | memoryview,
    batches: Sequence[BatchHeader],
    base_offset: int,
    leader_epoch: int,
    log_append_time_ms: int | None = None,
) -> int:
    """Write baseOffset and partitionLeaderEpoch in place (outside the CRC); return the next offset.

    With `log_append_time_ms` (LogAppendTime topics) also set the timestamp-type bit and maxTimestamp
    and recompute the CRC, as Kafka does.
    """
    offset = base_offset
    for h in batches:
        p = h.position
        struct.pack_into(">q", buf, p, offset)
        struct.pack_into(">i", buf, p + 12, leader_epoch)
        if log_append_time_ms is not None:
            struct.pack_into(">h", buf, p + ATTRIBUTES_OFFSET, h.attributes | ATTR_LOG_APPEND_TIME)
            struct.pack_into(">q", buf, p + MAX_TIMESTAMP_OFFSET, log_append_time_ms)
            crc = crc32c(buf[p + ATTRIBUTES_OFFSET : p + h.size])
            struct.pack_into(">I", buf, p + CRC_OFFSET, crc)
        offset += h.last_offset_delta + 1
    return offset


# ---------------------------------------------------------------- varints (zigzag, as Kafka's ByteUtils)


def read_varint(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode one zigzag varint/varlong between pos and end; return (value, new_pos)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _corrupt("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise _corrupt("varint is too long")


def encode_varint(value: int) -> bytes:
    """Zigzag-encode a signed 64-bit value as a varint."""
    z = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# ---------------------------------------------------------------- compression


def _bounded(fn, data: bytes | memoryview, limit: int, hint: int) -> memoryview:
    """Run a cramjam decompress_into with a fixed output buffer grown up to `limit` bytes, never more."""
    size = min(limit, max(hint, 64 * 1024))
    while True:
        out = bytearray(size)
        try:
            n = fn(data, out)
            if n < size or size == limit:
                return memoryview(out)[:n]
        except cramjam.DecompressionError as e:
            if "whole buffer" not in str(e):
                raise _corrupt(f"cannot decompress records: {e}") from None
            if size >= limit:
                raise _corrupt(f"decompressed records exceed the limit of {limit} bytes") from None
        size = min(limit, size * 4)


def _snappy_raw(data: bytes, limit: int) -> bytes:
    try:
        n = cramjam.snappy.decompress_raw_len(data)
    except Exception as e:  # noqa: BLE001 - cramjam raises several types for garbage
        raise _corrupt(f"bad snappy block: {e}") from None
    if n > limit:
        raise _corrupt(f"snappy block claims {n} bytes, over the limit of {limit}")
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except Exception as e:  # noqa: BLE001
        raise _corrupt(f"bad snappy block: {e}") from None


def _snappy(data: bytes, limit: int) -> bytes | memoryview:
    """Kafka's Java clients write xerial-framed snappy, librdkafka may write raw blocks: read both."""
    if data.startswith(SNAPPY_FRAMED_MAGIC):
        return _bounded(cramjam.snappy.decompress_into, data, limit, len(data) * 4)
    if not data.startswith(XERIAL_MAGIC):
        return _snappy_raw(data, limit)
    if len(data) < 16:
        raise _corrupt("truncated xerial snappy header")
    out = bytearray()
    pos = 16
    while pos < len(data):
        if pos + 4 > len(data):
            raise _corrupt("truncated xerial snappy block length")
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if n < 0 or pos + n > len(data):
            raise _corrupt(f"xerial snappy block length {n} exceeds the data")
        out += _snappy_raw(data[pos : pos + n], limit - len(out))
        pos += n
    return out


def decompress(
    codec: int, data: bytes | bytearray | memoryview, limit: int = DEFAULT_MAX_DECOMPRESSED
) -> bytes | bytearray | memoryview:
    """Decompress a batch's records section, never producing more than `limit` bytes."""
    data = bytes(data)
    hint = len(data) * 4
    if codec == COMPRESSION_GZIP:
        return _bounded(cramjam.gzip.decompress_into, data, limit, hint)
    if codec == COMPRESSION_SNAPPY:
        return _snappy(data, limit)
    if codec == COMPRESSION_LZ4:
        return _bounded(cramjam.lz4.decompress_into, data, limit, hint)
    if codec == COMPRESSION_ZSTD:
        return _bounded(cramjam.zstd.decompress_into, data, limit, hint)
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def compress(codec: int, data: bytes) -> bytes:
    """Compress a records section the way Kafka's Java producer frames each codec."""
    if codec == COMPRESSION_NONE:
        return data
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        parts = [XERIAL_HEADER]
        for i in range(0, max(len(data), 1), XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[i : i + XERIAL_BLOCK]))
            parts += [struct.pack(">i", len(block)), block]
        return b"".join(parts)
    if codec == COMPRESSION_LZ4:
        c = cramjam.lz4.Compressor(block_linked=False)  # Kafka's Java reader decodes blocks independently
        c.compress(data)
        return bytes(c.finish())
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


# ---------------------------------------------------------------- records


class Record(NamedTuple):
    """One decoded record; headers keep Kafka's (str key, nullable bytes value) pairs."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _read_bytes(buf, pos: int, end: int, what: str) -> tuple[bytes | None, int]:
    n, pos = read_varint(buf, pos, end)
    if n == -1:
        return None, pos
    if n < 0 or pos + n > end:
        raise _corrupt(f"invalid {what} length {n}")
    return bytes(buf[pos : pos + n]), pos + n


def _read_record(buf, pos: int, end: int, base_offset: int, base_ts: int, fixed_ts: int | None):
    length, pos = read_varint(buf, pos, end)
    if length < MIN_RECORD_SIZE - 1 or pos + length > end:
        raise _corrupt(f"invalid record length {length}")
    rend = pos + length
    pos += 1  # record attributes: unused in v2
    ts_delta, pos = read_varint(buf, pos, rend)
    offset_delta, pos = read_varint(buf, pos, rend)
    key, pos = _read_bytes(buf, pos, rend, "key")
    value, pos = _read_bytes(buf, pos, rend, "value")
    n_headers, pos = read_varint(buf, pos, rend)
    if n_headers < 0 or n_headers * 2 > rend - pos:
        raise _corrupt(f"invalid header count {n_headers}")
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(n_headers):
        hkey, pos = _read_bytes(buf, pos, rend, "header key")
        if hkey is None:
            raise _corrupt("null header key")
        hval, pos = _read_bytes(buf, pos, rend, "header value")
        try:
            headers.append((hkey.decode("utf-8"), hval))
        except UnicodeDecodeError:
            raise _corrupt("header key is not UTF-8") from None
    if pos != rend:
        raise _corrupt("record length does not match its fields")
    ts = fixed_ts if fixed_ts is not None else base_ts + ts_delta
    return Record(base_offset + offset_delta, ts, key, value, headers), pos


def iter_records(
    batch_bytes: bytes | bytearray | memoryview, *, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED
) -> Iterator[Record]:
    """Decode every record of one batch (decompressing it); lengths are bounded by the data."""
    view = memoryview(batch_bytes)
    if len(view) < HEADER_SIZE:
        raise _corrupt("truncated record batch header")
    h = parse_header(view, 0)
    if h.magic != 2:
        raise KafkaError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"record batch magic {h.magic}")
    if h.size > len(view) or h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise _corrupt(f"batchLength {h.batch_length} does not match the {len(view)} bytes")
    body = view[HEADER_SIZE : h.size]
    if h.compression != COMPRESSION_NONE:
        body = memoryview(decompress(h.compression, body, max_decompressed_bytes))
    fixed_ts = h.max_timestamp if h.timestamp_type_log_append else None
    if h.records_count < 0 or h.records_count * MIN_RECORD_SIZE > len(body):
        raise _corrupt(f"record count {h.records_count} cannot fit in {len(body)} bytes")
    pos, end = 0, len(body)
    for _ in range(h.records_count):
        rec, pos = _read_record(body, pos, end, h.base_offset, h.base_timestamp, fixed_ts)
        yield rec
    if pos != end:
        raise _corrupt("record batch has bytes after its last record")


def encode_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str | bytes, bytes | None]] | None,
) -> bytes:
    """Encode one v2 record (length-prefixed)."""
    parts = [b"\x00", encode_varint(timestamp_delta), encode_varint(offset_delta)]
    for field in (key, value):
        if field is None:
            parts.append(encode_varint(-1))
        else:
            parts += [encode_varint(len(field)), bytes(field)]
    parts.append(encode_varint(len(headers or ())))
    for hkey, hval in headers or ():
        kb = hkey.encode("utf-8") if isinstance(hkey, str) else bytes(hkey)
        parts += [encode_varint(len(kb)), kb]
        parts += [encode_varint(-1)] if hval is None else [encode_varint(len(hval)), bytes(hval)]
    body = b"".join(parts)
    return encode_varint(len(body)) + body


def build_batch(
    records: Sequence[tuple],
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_control: bool = False,
    *,
    is_transactional: bool = False,
    partition_leader_epoch: int = -1,
    offset_deltas: Sequence[int] | None = None,
    last_offset_delta: int | None = None,
    log_append_time: bool = False,
    max_timestamp: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode a valid v2 batch from (key, value, headers, timestamp_ms) tuples.

    The keyword-only extras let the log cleaner keep a batch's original offsets, sequence range,
    timestamps and KIP-534 delete horizon when it rewrites it.
    """
    if not records and last_offset_delta is None:
        raise ValueError("a batch needs at least one record")
    deltas = list(offset_deltas) if offset_deltas is not None else list(range(len(records)))
    timestamps = [r[3] for r in records]
    first_ts = timestamps[0] if timestamps else NO_TIMESTAMP
    base_ts = delete_horizon_ms if delete_horizon_ms is not None else first_ts
    max_ts = max_timestamp if max_timestamp is not None else max(timestamps, default=NO_TIMESTAMP)
    body = b"".join(
        encode_record(d, r[3] - base_ts, r[0], r[1], r[2]) for d, r in zip(deltas, records, strict=True)
    )
    body = compress(compression, body)
    attributes = compression & ATTR_COMPRESSION_MASK
    attributes |= ATTR_LOG_APPEND_TIME if log_append_time else 0
    attributes |= ATTR_TRANSACTIONAL if is_transactional else 0
    attributes |= ATTR_CONTROL if is_control else 0
    attributes |= ATTR_DELETE_HORIZON if delete_horizon_ms is not None else 0
    lod = last_offset_delta if last_offset_delta is not None else (deltas[-1] if deltas else 0)
    header = bytearray(
        HEADER.pack(
            base_offset, HEADER_SIZE - LOG_OVERHEAD + len(body), partition_leader_epoch, 2, 0,
            attributes, lod, base_ts, max_ts, producer_id, producer_epoch, base_sequence, len(records),
        )
    )
    out = header + body
    struct.pack_into(">I", out, CRC_OFFSET, crc32c(out[ATTRIBUTES_OFFSET:]))
    return bytes(out)

