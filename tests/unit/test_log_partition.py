"""The storage suite: everything the broker relies on from a PartitionLog, on real files.

Tests go through the public PartitionLog interface (append/read/offset queries/retention/reopen), so
another storage engine can be checked against the same expectations.
"""

from __future__ import annotations

import os

import pytest

from keystream.broker import records as R
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log import recovery
from keystream.broker.log.cleaner import clean_partition
from keystream.broker.log.config import build_log_config
from keystream.broker.log.partition import PartitionLog

T0 = 1_700_000_000_000
DAY = 86_400_000


class Harness:
    """Opens, crashes and reopens one partition directory with a given config."""

    def __init__(self, path, **overrides):
        self.path = str(path / "topic-0")
        self.overrides = {k.replace("_", "."): str(v) for k, v in overrides.items()}
        self.log: PartitionLog | None = None

    def open(self, **overrides) -> PartitionLog:
        self.overrides.update({k.replace("_", "."): str(v) for k, v in overrides.items()})
        config = build_log_config({}, self.overrides)
        self.log = PartitionLog(self.path, "topic", 0, config, topic_id=b"\x01" * 16, now=T0)
        return self.log

    def reopen(self) -> PartitionLog:
        self.log.close()
        return self.open()

    def crash_and_reopen(self) -> PartitionLog:
        self.log.release()  # no flush, no checkpoint: what kill -9 leaves behind
        return self.open()

    def files(self, suffix: str) -> list[str]:
        return sorted(f for f in os.listdir(self.path) if f.endswith(suffix))


def produce(log, values, *, ts=T0, key=None, codec=0, pid=-1, epoch=-1, seq=-1, now=None):
    """Append one batch of `values` (str or bytes, or None for tombstones); returns the AppendResult."""
    recs = []
    for i, v in enumerate(values):
        k = key if key is not None else f"k{i}".encode()
        val = v.encode() if isinstance(v, str) else v
        recs.append((k, val, [], ts + i))
    buf = bytearray(R.build_batch(recs, compression=codec, producer_id=pid, producer_epoch=epoch, base_sequence=seq))
    batches = R.validate_batches(buf, now_ms=now if now is not None else ts, after_max_ms=2**62, before_max_ms=2**62)
    return log.append(buf, batches, now_ms=now if now is not None else ts)


def read_all(log, offset=None, max_bytes=1 << 30):
    """Decode every record readable from `offset` (default log start)."""
    res = log.read(log.log_start_offset if offset is None else offset, max_bytes)
    out = []
    for chunk in res.chunks:
        data = bytes(chunk)
        pos = 0
        while pos < len(data):
            h = R.parse_header(data, pos)
            out.extend(R.iter_records(data[pos : pos + h.size]))
            pos += h.size
    return out


def batch_bases(res) -> list[int]:
    out = []
    for chunk in res.chunks:
        data = bytes(chunk)
        pos = 0
        while pos < len(data):
            h = R.parse_header(data, pos)
            assert pos + h.size <= len(data), "reads return whole batches only"
            out.append(h.base_offset)
            pos += h.size
    return out


# ------------------------------------------------------------------ append and read


def test_append_assigns_offsets_and_reads_back(harness):
    log = harness.open()
    r1 = produce(log, ["a", "b", "c"])
    r2 = produce(log, ["d"], codec=R.COMPRESSION_LZ4)
    assert (r1.base_offset, r1.last_offset, r2.base_offset, r2.last_offset) == (0, 2, 3, 3)
    assert r1.log_append_time_ms == -1 and not r1.duplicate
    assert log.log_end_offset == log.high_watermark == 4
    recs = read_all(log)
    assert [(r.offset, r.value) for r in recs] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]
    stored = bytes(log.read(0, 1 << 20).chunks[0])
    assert R.parse_header(stored).partition_leader_epoch == log.leader_epoch == 0


def test_read_limits(harness):
    log = harness.open()
    for i in range(5):
        produce(log, [f"value-{i}" * 10, "x"])  # two records per batch
    size = R.parse_header(bytes(log.read(0, 1 << 20).chunks[0])).size
    assert batch_bases(log.read(0, 1)) == [0]  # min_one: one whole batch even if larger than max_bytes
    assert log.read(0, 1, min_one=False) == ([], 0)
    assert batch_bases(log.read(0, size * 2 + size // 2)) == [0, 2]
    assert batch_bases(log.read(3, size)) == [2]  # the batch holding offset 3
    assert log.read(10, 1000) == ([], 0)  # at the log end: empty
    with pytest.raises(KafkaError) as e:
        log.read(11, 1000)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    res = log.read(4, 1 << 20)
    assert res.size == sum(len(c) for c in res.chunks) == 3 * size


def test_log_append_time_topic(harness):
    log = harness.open(message_timestamp_type="LogAppendTime")
    res = produce(log, ["a", "b"], ts=T0 - DAY, now=T0)
    assert res.log_append_time_ms == T0
    assert {r.timestamp for r in read_all(log)} == {T0}
    assert R.parse_header(bytes(log.read(0, 1000).chunks[0])).timestamp_type_log_append


def test_roll_by_size_and_segment_files(harness):
    log = harness.open(segment_bytes=400)
    for i in range(12):
        produce(log, [f"v{i}" * 20])
    names = harness.files(".log")
    assert len(names) > 3 and all(len(n) == 24 and n[:20].isdigit() for n in names)
    assert harness.files(".index") and harness.files(".timeindex")
    assert all(os.path.getsize(os.path.join(harness.path, n)) <= 400 for n in names[:-1])
    assert [r.offset for r in read_all(log)] == list(range(12))


def test_roll_by_time(harness):
    log = harness.open(segment_ms=1000)
    produce(log, ["a"], ts=T0)
    produce(log, ["b"], ts=T0 + 500)
    produce(log, ["c"], ts=T0 + 1500)
    assert harness.files(".log") == ["00000000000000000000.log", "00000000000000000002.log"]


def test_index_lookups_for_every_offset(harness):
    log = harness.open(index_interval_bytes=0, segment_bytes=2000)
    n = 0
    for i in range(60):
        produce(log, ["x" * (i % 7)] * (1 + i % 3))
        n += 1 + i % 3
    for offset in range(n):
        first = read_all(log, offset, max_bytes=1)
        assert first[0].offset <= offset <= first[-1].offset
    assert len(log.segments) > 2


def test_read_spans_segments(harness):
    log = harness.open(segment_bytes=200)
    for i in range(6):
        produce(log, [f"v{i}" * 10])
    assert [r.value for r in read_all(log)] == [f"v{i}".encode() * 10 for i in range(6)]


# ------------------------------------------------------------------ timestamps and epochs


def test_offset_for_timestamp_exact_record(harness):
    log = harness.open(segment_bytes=300, index_interval_bytes=0)
    for b in range(8):
        produce(log, ["a", "b", "c"], ts=T0 + b * 10)  # records at +0, +1, +2
    assert log.offset_for_timestamp(T0) == (0, T0)
    assert log.offset_for_timestamp(T0 + 31) == (10, T0 + 31)
    assert log.offset_for_timestamp(T0 + 33) == (12, T0 + 40)
    assert log.offset_for_timestamp(T0 + 10_000) is None
    assert log.max_timestamp() == (23, T0 + 72)


def test_max_timestamp_first_record_holding_it(harness):
    log = harness.open()
    assert log.max_timestamp() == (-1, -1)
    buf = bytearray(R.build_batch([(b"a", b"1", [], T0 + 5), (b"b", b"2", [], T0 + 9), (b"c", b"3", [], T0)]))
    log.append(buf, R.validate_batches(buf, now_ms=T0), now_ms=T0)
    assert log.max_timestamp() == (1, T0 + 9)
    assert log.offset_for_timestamp(T0 + 6) == (1, T0 + 9)


def test_end_offset_for_epoch(harness):
    log = harness.open()
    produce(log, ["a", "b"])
    log.leader_epoch = 3
    produce(log, ["c"])
    assert log.end_offset_for_epoch(3) == (3, 3)
    assert log.end_offset_for_epoch(0) == (0, 2)
    assert log.end_offset_for_epoch(1) == (0, 2)
    assert log.end_offset_for_epoch(7) == (-1, -1)
    log = harness.reopen()
    assert log.end_offset_for_epoch(0) == (0, 2)
    assert os.path.exists(os.path.join(harness.path, "leader-epoch-checkpoint"))


# ------------------------------------------------------------------ retention and DeleteRecords


def test_retention_by_time(harness):
    log = harness.open(segment_bytes=300, retention_ms=DAY)
    for i in range(10):
        produce(log, [f"v{i}" * 10], ts=T0 + i * 1000)
    segs = len(log.segments)
    assert log.apply_retention(T0 + DAY) == 0
    removed = log.apply_retention(T0 + DAY + 4500)  # segments whose newest record is older than a day
    assert removed > 0 and len(log.segments) == segs - 1
    # 90-byte batches, 3 per 300-byte segment: only [0, 2] is entirely older than now - retention.ms
    assert log.log_start_offset == 3 and read_all(log)[0].offset == 3
    log.apply_retention(T0 + 10 * DAY)  # everything expired: the active segment is rolled and removed too
    assert log.log_start_offset == log.log_end_offset == 10 and read_all(log) == []
    assert produce(log, ["next"], ts=T0 + 10 * DAY).base_offset == 10


def test_retention_by_size(harness):
    log = harness.open(segment_bytes=300, retention_bytes=700)
    for i in range(20):
        produce(log, [f"v{i}" * 10])
    log.apply_retention(T0)
    total = sum(os.path.getsize(os.path.join(harness.path, n)) for n in harness.files(".log"))
    assert total <= 700 + 300
    assert read_all(log)[-1].offset == 19 and log.log_start_offset > 0


def test_retention_skipped_for_compact_only(harness):
    log = harness.open(segment_bytes=300, retention_bytes=1, cleanup_policy="compact")
    for i in range(10):
        produce(log, [f"v{i}" * 10])
    assert log.apply_retention(T0 + 100 * DAY) == 0 and log.log_start_offset == 0


def test_delete_records(harness):
    log = harness.open(segment_bytes=300)
    for i in range(10):
        produce(log, [f"v{i}" * 10])
    with pytest.raises(KafkaError) as e:
        log.delete_records(11)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    segs = len(log.segments)
    assert log.delete_records(7) == 7
    assert len(log.segments) < segs
    assert read_all(log, 7)[0].offset == 7
    with pytest.raises(KafkaError) as e:
        log.read(6, 100)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert log.delete_records(3) == 7  # never moves backwards
    log = harness.crash_and_reopen()
    assert log.log_start_offset == 7
    assert log.delete_records(-1) == 10  # -1: up to the high watermark


# ------------------------------------------------------------------ compaction


def produce_kv(log, pairs, ts=T0, codec=0):
    recs = [(k.encode(), None if v is None else v.encode(), [("h", k.encode())], ts) for k, v in pairs]
    buf = bytearray(R.build_batch(recs, compression=codec))
    return log.append(buf, R.validate_batches(buf, now_ms=ts), now_ms=ts)


@pytest.mark.parametrize("codec", [0, R.COMPRESSION_ZSTD])
def test_compaction_keeps_latest_per_key_and_offsets(harness, codec):
    log = harness.open(cleanup_policy="compact", segment_bytes=250, delete_retention_ms=1000)
    produce_kv(log, [("a", "1"), ("b", "1")], codec=codec)
    produce_kv(log, [("a", "2"), ("c", "1")], codec=codec)
    produce_kv(log, [("b", None), ("a", "3")], codec=codec)
    produce_kv(log, [("d", "1")], codec=codec)
    log.roll(T0)
    before = {r.offset: r for r in read_all(log)}
    stats = clean_partition(log, T0 + 10)
    assert stats is not None and stats.records_removed == 3
    after = read_all(log)
    assert [(r.offset, r.key, r.value) for r in after] == [
        (3, b"c", b"1"), (4, b"b", None), (5, b"a", b"3"), (6, b"d", b"1"),
    ]
    for r in after:  # offsets, timestamps and headers preserved
        assert (r.timestamp, r.headers) == (before[r.offset].timestamp, before[r.offset].headers)
    assert log.log_end_offset == 7
    assert clean_partition(log, T0 + 20) is None  # nothing dirty, tombstone horizon not reached
    stats = clean_partition(log, T0 + 10 + 1000)  # after delete.retention.ms the tombstone goes
    assert stats.tombstones_removed == 1
    assert [(r.offset, r.key) for r in read_all(log)] == [(3, b"c"), (5, b"a"), (6, b"d")]
    assert produce_kv(log, [("e", "1")]).base_offset == 7
    log = harness.crash_and_reopen()
    assert [r.offset for r in read_all(log)] == [3, 5, 6, 7]


def test_compaction_of_log_append_time_batches_keeps_timestamps(harness):
    log = harness.open(cleanup_policy="compact", message_timestamp_type="LogAppendTime")
    produce_kv(log, [("a", "1"), ("b", "1")], ts=T0)
    produce_kv(log, [("a", "2")], ts=T0 + 50)
    log.roll(T0 + 50)
    assert clean_partition(log, T0 + 100).records_removed == 1
    assert [(r.offset, r.key, r.timestamp) for r in read_all(log)] == [(1, b"b", T0), (2, b"a", T0 + 50)]


def test_compaction_respects_min_lag_and_active_segment(harness):
    log = harness.open(cleanup_policy="compact", min_compaction_lag_ms=DAY)
    produce_kv(log, [("a", "1")])
    produce_kv(log, [("a", "2")])
    assert clean_partition(log, T0 + 2 * DAY) is None  # only the active segment: never cleaned
    log.roll(T0)
    produce_kv(log, [("a", "3")])
    assert clean_partition(log, T0 + 10) is None  # too young
    assert clean_partition(log, T0 + 2 * DAY).records_removed == 1
    assert [r.offset for r in read_all(log)] == [1, 2]


# ------------------------------------------------------------------ recovery


def seg_path(harness, name_suffix=".log", index=-1):
    return os.path.join(harness.path, harness.files(name_suffix)[index])


def test_clean_reopen_reads_only_the_tail(harness, monkeypatch):
    log = harness.open(segment_bytes=300)
    for i in range(10):
        produce(log, [f"v{i}" * 10])
    def fail(*a, **k):
        raise AssertionError("a clean start must not run CRC recovery")

    monkeypatch.setattr("keystream.broker.log.recovery.recover_segment", fail)
    log = harness.reopen()
    assert log.log_end_offset == 10 and len(read_all(log)) == 10
    assert produce(log, ["more"]).base_offset == 10


def test_unclean_start_checks_only_from_the_recovery_point(harness, monkeypatch):
    monkeypatch.setattr("keystream.broker.log.partition.CHECKPOINT_INTERVAL_MS", 0)  # every flush checkpoints
    log = harness.open(segment_bytes=300)
    for i in range(9):
        produce(log, [f"v{i}" * 10])
    log.flush()
    for i in range(9, 12):
        produce(log, [f"v{i}" * 10])
    checked = []
    real = recovery.recover_segment
    monkeypatch.setattr("keystream.broker.log.recovery.recover_segment",
                        lambda seg, *a: checked.append(seg.base_offset) or real(seg, *a))
    log = harness.crash_and_reopen()
    assert checked == [9]  # offsets below the recovery point (9) were fsynced: only later data is checked
    assert log.log_end_offset == 12 and len(read_all(log)) == 12


def test_torn_tail_is_truncated(harness):
    log = harness.open()
    for i in range(5):
        produce(log, [f"v{i}", "x"])
    path = seg_path(harness)
    size = os.path.getsize(path)
    log.release()
    os.truncate(path, size - 7)  # a write torn in the middle of the last batch
    log = harness.open()
    assert log.log_end_offset == 8
    assert [r.offset for r in read_all(log)] == list(range(8))
    assert produce(log, ["after"]).base_offset == 8
    log = harness.reopen()
    assert [r.value for r in read_all(log)][-1] == b"after"


def test_corrupt_batch_truncates_from_there(harness):
    log = harness.open(index_interval_bytes=0)
    for i in range(6):
        produce(log, [f"v{i}" * 5])
    third = bytes(log.read(2, 1).chunks[0])
    pos = sum(len(bytes(c)) for c in log.read(0, 2 * len(third), min_one=False).chunks)
    log.release()
    with open(seg_path(harness), "r+b") as f:
        f.seek(pos + R.HEADER_SIZE + 2)
        f.write(b"\xee")
    log = harness.open()
    assert log.log_end_offset == 2 and [r.offset for r in read_all(log)] == [0, 1]


def test_unclean_reopen_without_marker_keeps_everything_and_rebuilds_indexes(harness):
    log = harness.open(segment_bytes=400, index_interval_bytes=0)
    for i in range(15):
        produce(log, [f"v{i}" * 8])
    log.release()
    for name in harness.files(".index") + harness.files(".timeindex"):
        path = os.path.join(harness.path, name)
        with open(path, "r+b") as f:
            f.write(b"\xff" * 13)  # garbage in every index
    os.remove(os.path.join(harness.path, "recovery-checkpoint"))
    log = harness.open()
    assert log.log_end_offset == 15
    for off in range(15):
        assert read_all(log, off, max_bytes=1)[0].offset == off
    assert log.offset_for_timestamp(T0) == (0, T0)


def test_damaged_index_of_old_segment_is_rebuilt_after_clean_start(harness):
    log = harness.open(segment_bytes=300, index_interval_bytes=0)
    for i in range(10):
        produce(log, [f"v{i}" * 10])
    log = harness.reopen()
    log.close()
    os.remove(seg_path(harness, ".index", 0))
    with open(seg_path(harness, ".timeindex", 0), "ab") as f:
        f.write(b"\x01\x02")
    log = harness.open()
    assert [r.offset for r in read_all(log)] == list(range(10))
    assert log.offset_for_timestamp(T0) == (0, T0)


def test_leftover_compaction_output_is_discarded(harness):
    log = harness.open()
    produce(log, ["a"])
    log.close()
    junk = os.path.join(harness.path, "00000000000000000000" + recovery.CLEANED_SUFFIX)
    with open(junk, "wb") as f:
        f.write(b"partial")
    log = harness.open()
    assert not os.path.exists(junk) and [r.value for r in read_all(log)] == [b"a"]


# ------------------------------------------------------------------ idempotent producers


def test_idempotent_duplicate_returns_original_offsets(harness):
    log = harness.open()
    produce(log, ["other"])
    first = produce(log, ["a", "b"], pid=42, epoch=0, seq=0)
    produce(log, ["c"], pid=42, epoch=0, seq=2)
    dup = produce(log, ["a", "b"], pid=42, epoch=0, seq=0)
    assert dup.duplicate and (dup.base_offset, dup.last_offset) == (first.base_offset, first.last_offset)
    assert log.log_end_offset == 4 and len(read_all(log)) == 4


def test_idempotent_errors(harness):
    log = harness.open()
    produce(log, ["a"], pid=1, epoch=2, seq=0)
    for kwargs, code in [
        ({"epoch": 2, "seq": 5}, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),  # gap
        ({"epoch": 1, "seq": 1}, ErrorCode.INVALID_PRODUCER_EPOCH),  # fenced epoch
        ({"epoch": 3, "seq": 4}, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),  # new epoch must start at 0
    ]:
        with pytest.raises(KafkaError) as e:
            produce(log, ["x"], pid=1, **kwargs)
        assert e.value.code == code
    assert log.log_end_offset == 1  # nothing written by rejected batches
    assert produce(log, ["b"], pid=1, epoch=3, seq=0).base_offset == 1  # epoch bump from 0
    assert produce(log, ["c"], pid=99, epoch=0, seq=17).base_offset == 2  # unknown producer: accepted


def test_idempotence_window_is_five_batches(harness):
    log = harness.open()
    for s in range(7):
        produce(log, [f"m{s}"], pid=5, epoch=0, seq=s)
    assert produce(log, ["m2"], pid=5, epoch=0, seq=2).duplicate
    with pytest.raises(KafkaError) as e:
        produce(log, ["m0"], pid=5, epoch=0, seq=0)
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_sequence_wraps_at_int32_max(harness):
    log = harness.open()
    produce(log, ["a", "b"], pid=6, epoch=0, seq=2**31 - 2)
    assert produce(log, ["c"], pid=6, epoch=0, seq=0).base_offset == 2


@pytest.mark.parametrize("crash", [False, True])
def test_producer_state_survives_reopen(harness, crash):
    log = harness.open(segment_bytes=300)
    for s in range(6):
        produce(log, [f"m{s}" * 10], pid=8, epoch=1, seq=s)
    produce(log, ["noise"])
    log = harness.crash_and_reopen() if crash else harness.reopen()
    dup = produce(log, ["m5" * 10], pid=8, epoch=1, seq=5)
    assert dup.duplicate and dup.base_offset == 5
    with pytest.raises(KafkaError) as e:
        produce(log, ["gap"], pid=8, epoch=1, seq=9)
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(log, ["m6"], pid=8, epoch=1, seq=6).base_offset == 7


def test_producer_state_after_torn_tail(harness):
    log = harness.open()
    produce(log, ["a"], pid=3, epoch=0, seq=0)
    produce(log, ["b"], pid=3, epoch=0, seq=1)
    path = seg_path(harness)
    log.release()
    os.truncate(path, os.path.getsize(path) - 3)
    log = harness.open()
    assert log.log_end_offset == 1
    assert produce(log, ["b"], pid=3, epoch=0, seq=1).base_offset == 1  # the torn batch is not a duplicate


# ------------------------------------------------------------------ flush policy and metadata


def test_flush_policy(harness):
    log = harness.open(flush_messages=3)
    assert not log.flush_due(T0)
    produce(log, ["a", "b"])
    assert not log.flush_due(T0)
    produce(log, ["c"])
    assert log.flush_due(T0)
    log.flush()
    assert not log.flush_due(T0) and log.recovery_point == 3
    log.update_config(build_log_config({}, {"flush.ms": "10"}))
    produce(log, ["d"])
    assert log.flush_due(log.last_flush_ms + 10)


def test_partition_metadata_file(harness):
    harness.open()
    with open(os.path.join(harness.path, "partition.metadata")) as f:
        text = f.read()
    assert text.startswith("version: 0\ntopic_id: ") and text.strip().endswith("AQEBAQEBAQEBAQEBAQEBAQ")


@pytest.mark.parametrize("kind", [bytes, lambda b: memoryview(bytes(b)), lambda b: memoryview(bytearray(b))])
def test_append_accepts_any_buffer(harness, kind):
    log = harness.open()
    raw = R.build_batch([(b"k", b"v", [], T0)]) * 2
    buf = kind(raw)
    assert log.append(buf, R.validate_batches(buf, now_ms=T0), now_ms=T0).last_offset == 1
    assert [r.offset for r in read_all(log)] == [0, 1]


def test_append_rejects_non_contiguous_batches(harness):
    log = harness.open()
    buf = bytearray(R.build_batch([(b"k", b"v", [], T0)]) * 2)
    a, b = R.validate_batches(buf, now_ms=T0)
    with pytest.raises(ValueError):
        log.append(buf, [a._replace(position=0), b._replace(position=len(buf) // 2 + 1)], now_ms=T0)
    with pytest.raises(KafkaError):
        log.append(buf, [], now_ms=T0)


def test_snapshots_are_pruned_on_roll(harness):
    log = harness.open(segment_bytes=100)
    for s in range(8):
        produce(log, [f"m{s}" * 10], pid=2, epoch=0, seq=s)
    assert len(harness.files(".snapshot")) == 3
    log = harness.crash_and_reopen()
    assert produce(log, ["m7" * 10], pid=2, epoch=0, seq=7).duplicate


# ------------------------------------------------------------------ sharing with a worker thread


def test_flush_and_cleaner_in_a_thread_while_appending(harness):
    import threading

    log = harness.open(segment_bytes=600, cleanup_policy="compact", flush_messages=1)
    errors: list[BaseException] = []
    done = threading.Event()

    def worker():
        try:
            while not done.is_set():
                log.flush()
                clean_partition(log, T0 + 10, force=True)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    try:
        for i in range(300):
            produce_kv(log, [(f"k{i % 7}", f"v{i}")])
    finally:
        done.set()
        t.join(timeout=60)
    assert not t.is_alive() and errors == []
    clean_partition(log, T0 + 10, force=True)
    latest = {r.key: r.value for r in read_all(log)}
    assert latest == {f"k{k}".encode(): f"v{max(i for i in range(300) if i % 7 == k)}".encode() for k in range(7)}
    assert log.log_end_offset == 300
    log = harness.crash_and_reopen()
    assert log.log_end_offset == 300
