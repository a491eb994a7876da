"""Start-up reads only what it must: a clean start reads no inactive segment, and after a process
crash in the same boot only what follows the last checkpoint is CRC-checked (recovery.py), while a
start after a reboot still checks everything from the recovery point. Data that must not be read is
overwritten with zeros: reading it would raise or truncate the log, so each test can fail.
"""

from __future__ import annotations

import json
import os
import time

from keystream.broker import records as R
from keystream.broker.log import LogManager
from keystream.broker.log.partition import CHECKPOINT_FILE, METADATA_FILE
from tests.unit.test_log_partition import T0, produce, read_all


def zero(path: str, start: int, end: int) -> None:
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\0" * (end - start))


def checkpoint(harness) -> dict:
    with open(os.path.join(harness.path, CHECKPOINT_FILE)) as f:
        return json.load(f)


def forget_boot(harness) -> None:
    """What a checkpoint written before a reboot looks like: another boot id."""
    cp = checkpoint(harness)
    cp["boot_id"] = "another-boot"
    with open(os.path.join(harness.path, CHECKPOINT_FILE), "w") as f:
        json.dump(cp, f)


def test_clean_start_reads_no_inactive_segment(harness):
    log = harness.open(segment_bytes=300)
    for i in range(12):
        produce(log, [f"v{i}" * 10])
    inactive = [os.path.join(harness.path, f) for f in harness.files(".log")[:-1]]
    assert len(inactive) >= 3
    log.close()
    sizes = [os.path.getsize(p) for p in inactive]
    for path in inactive:
        zero(path, 0, os.path.getsize(path))  # a CRC check or header walk of them would fail
    log = harness.open()
    assert log.log_end_offset == 12 and [os.path.getsize(p) for p in inactive] == sizes
    assert produce(log, ["more"]).base_offset == 12


def _crash_after_checkpoint(harness, before: int, after: int):
    """`before` batches, a maintenance pass's checkpoint, `after` more batches, then kill -9."""
    log = harness.open()
    for i in range(before):
        produce(log, [f"v{i}" * 10])
    with log._lock:  # what LogManager.run_maintenance does for a partition that changed
        LogManager._snapshot_producers(log)
        log.write_checkpoint(clean=False, durable=False)
    checked_size = log.segments[-1].size
    for i in range(before, before + after):
        produce(log, [f"v{i}" * 10])
    log.release()
    return os.path.join(harness.path, harness.files(".log")[-1]), checked_size


def batch_positions(path: str) -> list[int]:
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos + R.HEADER_SIZE <= len(data):
        out.append(pos)
        pos += R.parse_header(data, pos).size
    return out


def test_same_boot_crash_checks_only_the_tail(harness):
    harness.open(index_interval_bytes=0)  # an index entry per batch: the walk to the checkpoint is one batch
    path, checked = _crash_after_checkpoint(harness, 20, 5)
    last_indexed = max(p for p in batch_positions(path) if p < checked)
    zero(path, 0, last_indexed)  # would be truncated to nothing if it were CRC-checked
    log = harness.open()
    assert log.log_end_offset == 25 and os.path.getsize(path) > checked
    assert [r.value for r in read_all(log, 20)] == [f"v{i}".encode() * 10 for i in range(20, 25)]


def test_crash_after_a_reboot_checks_from_the_recovery_point(harness):
    path, checked = _crash_after_checkpoint(harness, 20, 5)
    forget_boot(harness)
    zero(path, 0, checked)
    log = harness.open()
    assert log.log_end_offset == 0 and os.path.getsize(path) == 0


def test_same_boot_crash_still_truncates_a_torn_tail_and_trims_the_indexes(harness):
    harness.open(index_interval_bytes=0)  # an index entry per batch, so entries point into the tail
    path, checked = _crash_after_checkpoint(harness, 20, 5)
    size = os.path.getsize(path)
    os.truncate(path, size - 7)  # the last write torn
    log = harness.open()
    assert log.log_end_offset == 24
    seg = log.segments[-1]
    assert seg.index.values[-1] < seg.size and all(o < 24 for o in seg.timeindex.values)
    assert [r.offset for r in read_all(log, 18)] == list(range(18, 24))
    assert produce(log, ["after"]).base_offset == 24
    log = harness.crash_and_reopen()
    assert [r.value for r in read_all(log, 24)] == [b"after"]


def test_same_boot_crash_with_a_corrupt_index_checks_the_whole_segment(harness):
    harness.open(index_interval_bytes=0)
    path, checked = _crash_after_checkpoint(harness, 10, 3)
    with open(path[:-4] + ".index", "ab") as f:
        f.write(b"\1\2\3")  # not a whole entry: the index cannot be trusted, so neither is the resume point
    log = harness.open()
    assert log.log_end_offset == 13 and len(read_all(log)) == 13


def test_maintenance_snapshot_spares_the_producer_replay(tmp_path):
    m = LogManager([str(tmp_path)], {})
    m.load()
    m.create_topic("t", 1, {"index.interval.bytes": "0"})  # an index entry per batch
    p = m.partition("t", 0)
    now = int(time.time() * 1000)  # recent records: retention leaves them alone
    for seq in range(0, 30, 3):
        produce(p, ["a", "b", "c"], pid=7, epoch=0, seq=seq, ts=now)
    m.run_maintenance(now)  # checkpoint + producer snapshot at the log end
    path = os.path.join(p.dir, sorted(f for f in os.listdir(p.dir) if f.endswith(".log"))[-1])
    p.release()  # kill -9
    zero(path, 0, batch_positions(path)[-1])  # neither recovery nor the producer-state replay may read it
    m2 = LogManager([str(tmp_path)], {})
    m2.load()
    p2 = m2.partition("t", 0)
    assert p2.log_end_offset == 30
    dup = produce(p2, ["a", "b", "c"], pid=7, epoch=0, seq=27, ts=now)
    assert dup.duplicate and dup.base_offset == 27
    m2.close()


def test_fresh_partition_files_lost_in_a_crash_are_recreated(tmp_path):
    """CreateTopics syncs only directories: a fresh partition's files may be lost, and load remakes them."""
    m = LogManager([str(tmp_path)], {})
    m.load()
    t = m.create_topic("t", 3)
    for p in t.partitions:
        p.release()
    lost = t.partitions[1].dir
    for name in os.listdir(lost):
        os.unlink(os.path.join(lost, name))
    m2 = LogManager([str(tmp_path)], {})
    m2.load()
    p = m2.partition("t", 1)
    assert p.log_end_offset == 0 and os.path.exists(os.path.join(lost, METADATA_FILE))
    assert produce(p, ["x"]).base_offset == 0
    m2.close()


def test_same_boot_crash_rebuilds_a_missing_time_index(harness):
    log = harness.open(index_interval_bytes=0)
    produce(log, ["early"], ts=T0 + 1000)  # the segment's largest timestamp, far from the tail
    for i in range(10):
        produce(log, [f"v{i}"])
    with log._lock:
        LogManager._snapshot_producers(log)
        log.write_checkpoint(clean=False, durable=False)
    produce(log, ["tail"])
    log.release()
    stem = os.path.join(harness.path, harness.files(".log")[-1])[:-4]
    os.unlink(stem + ".timeindex")
    log = harness.open()
    assert log.log_end_offset == 12 and os.path.exists(stem + ".timeindex")
    assert log.max_timestamp() == (0, T0 + 1000) and log.offset_for_timestamp(T0 + 1) == (0, T0 + 1000)
