"""Log compaction for cleanup.policy=compact: keep the latest record per key, keep offsets.

Like Kafka's LogCleaner: only non-active segments older than min.compaction.lag.ms are cleaned; it runs
when the dirty share reaches min.cleanable.dirty.ratio (or max.compaction.lag.ms forces it). A key map
is built from the dirty part, then every cleanable segment is rewritten without superseded records.
Tombstones follow KIP-534: the first clean stamps the batch with a delete horizon
(now + delete.retention.ms, attribute bit 6, stored in baseTimestamp) and a clean after the horizon
drops them. Rewritten batches keep base offset, lastOffsetDelta, producer fields, compression and
record timestamps; unchanged batches are copied byte for byte.

Heavy work runs outside the partition lock on duplicated descriptors; the swap of each cleaned segment
(`.log.cleaned` fsynced, old indexes removed, atomic rename) takes the lock briefly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keystream.broker.log.fileio import fsync_dir, pread_exact, pwrite_all, remove_quietly
from keystream.broker.log.recovery import CLEANED_SUFFIX
from keystream.broker.records import HEADER_SIZE, BatchHeader, Record, build_batch, iter_records, parse_header

if TYPE_CHECKING:
    from keystream.broker.log.partition import PartitionLog
    from keystream.broker.log.segment import Segment

WINDOW = 1 << 20


@dataclass
class CleanStats:
    segments_rewritten: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    records_removed: int = 0
    tombstones_removed: int = 0
    next_horizon_ms: int | None = None


@dataclass
class _Plan:
    segments: list[tuple[Segment, int, int]]  # segment, duplicated fd, size at planning time
    first_dirty: int
    end_offset: int
    now_ms: int
    delete_retention_ms: int
    stats: CleanStats = field(default_factory=CleanStats)


def _iter_batches(fd: int, size: int) -> Iterator[tuple[BatchHeader, bytes]]:
    pos = 0
    while pos + HEADER_SIZE <= size:
        window = pread_exact(fd, min(WINDOW, size - pos), pos)
        off = 0
        while off + HEADER_SIZE <= len(window):
            h = parse_header(window, off)
            if h.size < HEADER_SIZE:
                return
            data = window[off : off + h.size] if off + h.size <= len(window) else pread_exact(fd, h.size, pos + off)
            yield h._replace(position=pos + off), data
            off += h.size
        if off == 0:
            return
        pos += off


def _plan(log: PartitionLog, now_ms: int, force: bool) -> _Plan | None:
    cfg = log.config
    if log.closed or not cfg.compact:
        return None
    segs = log._segments
    cleanable: list[Segment] = []
    for seg in segs[:-1]:
        if cfg.min_compaction_lag_ms > 0 and seg.largest_timestamp > now_ms - cfg.min_compaction_lag_ms:
            break
        cleanable.append(seg)
    if not cleanable:
        return None
    end_offset = segs[len(cleanable)].base_offset
    first_dirty = max(log.cleaner_offset, log.log_start_offset)
    ends = [s.base_offset for s in segs[1 : len(cleanable) + 1]]
    dirty = [s for s, end in zip(cleanable, ends, strict=True) if end > first_dirty]
    total = sum(s.size for s in cleanable)
    dirty_bytes = sum(s.size for s in dirty)
    due = force or (total > 0 and dirty_bytes / total >= cfg.min_cleanable_dirty_ratio and dirty_bytes > 0)
    if dirty and not due and cfg.max_compaction_lag_ms < 2**63 - 1:
        head = dirty[0].read(0, HEADER_SIZE)
        first_ts = parse_header(head).max_timestamp if len(head) == HEADER_SIZE else -1
        due = 0 <= first_ts < now_ms - cfg.max_compaction_lag_ms
    if not due and log.tombstone_horizon_ms is not None and now_ms >= log.tombstone_horizon_ms:
        due = True
    if not due:
        return None
    return _Plan([(s, os.dup(s.fd), s.size) for s in cleanable], first_dirty, end_offset, now_ms,
                 cfg.delete_retention_ms)


def _build_map(plan: _Plan) -> dict[bytes, int]:
    latest: dict[bytes, int] = {}
    for _seg, fd, size in plan.segments:
        for h, data in _iter_batches(fd, size):
            if h.is_control or h.last_offset < plan.first_dirty:
                continue
            for rec in iter_records(data):
                if rec.key is not None and rec.offset >= plan.first_dirty:
                    latest[rec.key] = rec.offset
    return latest


def _clean_batch(h: BatchHeader, data: bytes, latest: dict[bytes, int], plan: _Plan) -> bytes | None:
    """The batch to keep (the same bytes when nothing changes), or None when no record survives."""
    if h.is_control:
        return data
    stats = plan.stats
    recs = list(iter_records(data))
    horizon_passed = h.has_delete_horizon and plan.now_ms >= h.base_timestamp
    keep: list[Record] = []
    for r in recs:
        if r.key is None or latest.get(r.key, -1) > r.offset:
            stats.records_removed += 1
        elif r.value is None and horizon_passed:
            stats.tombstones_removed += 1
        else:
            keep.append(r)
    has_tombstones = any(r.value is None for r in keep)
    horizon = h.base_timestamp if h.has_delete_horizon else None
    if has_tombstones and horizon is None:
        horizon = plan.now_ms + plan.delete_retention_ms
    if has_tombstones:
        nh = stats.next_horizon_ms
        stats.next_horizon_ms = horizon if nh is None else min(nh, horizon)
    if not keep:
        return None
    if len(keep) == len(recs) and (horizon is None or h.has_delete_horizon):
        return data
    return build_batch(
        [(r.key, r.value, r.headers, r.timestamp) for r in keep],
        base_offset=h.base_offset, compression=h.compression, producer_id=h.producer_id,
        producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
        is_transactional=h.is_transactional, partition_leader_epoch=h.partition_leader_epoch,
        offset_deltas=[r.offset - h.base_offset for r in keep], last_offset_delta=h.last_offset_delta,
        log_append_time=h.timestamp_type_log_append,
        max_timestamp=h.max_timestamp if h.timestamp_type_log_append else None, delete_horizon_ms=horizon,
    )


def _rewrite(seg: Segment, fd: int, size: int, latest: dict[bytes, int], plan: _Plan) -> str | None:
    """Write the cleaned copy next to the segment; return its path, or None when nothing changed."""
    out = bytearray()
    changed = False
    for h, data in _iter_batches(fd, size):
        kept = _clean_batch(h, data, latest, plan)
        if kept is not data:
            changed = True
        if kept is not None:
            out += kept
    if not changed:
        return None
    path = seg.log_path[: -len(".log")] + CLEANED_SUFFIX
    wfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pwrite_all(wfd, out, 0)
        os.fsync(wfd)
    finally:
        os.close(wfd)
    plan.stats.segments_rewritten += 1
    plan.stats.bytes_before += size
    plan.stats.bytes_after += len(out)
    return path


def _swap(log: PartitionLog, seg: Segment, cleaned: str) -> None:
    with log._lock:
        if log.closed or seg not in log._segments:
            remove_quietly(cleaned)
            return
        seg.close()
        remove_quietly(seg.index.path)
        remove_quietly(seg.timeindex.path)
        os.replace(cleaned, seg.log_path)
        fsync_dir(log.dir)
        fresh = log._new_segment(seg.base_offset)
        fresh.rebuild_indexes()
        log._segments[log._segments.index(seg)] = fresh


def clean_partition(log: PartitionLog, now_ms: int, *, force: bool = False) -> CleanStats | None:
    """Compact one partition if it is due (or `force`); returns what was done, None when not due."""
    with log._lock:
        plan = _plan(log, now_ms, force)
    if plan is None:
        return None
    try:
        latest = _build_map(plan)
        for seg, fd, size in plan.segments:
            cleaned = _rewrite(seg, fd, size, latest, plan)
            if cleaned is not None:
                _swap(log, seg, cleaned)
    finally:
        for _seg, fd, _size in plan.segments:
            os.close(fd)
    with log._lock:
        if not log.closed:
            log.cleaner_offset = max(log.cleaner_offset, plan.end_offset)
            log.tombstone_horizon_ms = plan.stats.next_horizon_ms
            log.write_checkpoint(clean=False, durable=False)
    return plan.stats
