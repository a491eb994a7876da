"""PartitionLog: one partition's segments, the append/read hot path, flush policy and shutdown.

Appends write the producer's batches as received (only baseOffset and partitionLeaderEpoch change);
reads return raw slices of whole batches. A per-partition lock lets one event-loop thread and one
maintenance/flush thread share a log; fsync runs on duplicated descriptors outside the lock.

`recovery-checkpoint` (JSON) in the partition directory records the log start offset, the recovery
point (everything below it was fsynced), the cleaner's position and, after a clean shutdown, the
active segment's size: when that still matches at start-up, only the active segment's tail is read;
otherwise segments from the recovery point on (after a process crash in the same boot: from the
checkpointed active size, see recovery.py) are verified by CRC and a torn tail is cut off.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from typing import NamedTuple

from keystream.broker import records
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.config import LogConfig
from keystream.broker.log.epoch_cache import LeaderEpochCache
from keystream.broker.log.fileio import atomic_write, fsync_dir, read_json, write_json
from keystream.broker.log.lookup import LookupMixin
from keystream.broker.log.producer_state import ProducerStateManager
from keystream.broker.log.recovery import BOOT_ID, recover_log, segment_bases, tidy_directory
from keystream.broker.log.retention import RetentionMixin
from keystream.broker.log.segment import Segment
from keystream.broker.records import BatchHeader

CHECKPOINT_FILE = "recovery-checkpoint"
METADATA_FILE = "partition.metadata"

CHECKPOINT_INTERVAL_MS = 1000  # longest a flushed recovery point waits to reach the checkpoint file


class AppendResult(NamedTuple):
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    log_start_offset: int
    duplicate: bool


class ReadResult(NamedTuple):
    chunks: list  # bytes-like slices of whole batches, in offset order
    size: int


def wall_ms() -> int:
    return int(time.time() * 1000)


def _assigned(batches: list[BatchHeader], base: int, epoch: int, log_append_time: int | None) -> list[BatchHeader]:
    """The headers as written: offsets from `base`, the leader epoch, and LogAppendTime if set."""
    out, offset = [], base
    for h in batches:
        if log_append_time is None:
            out.append(BatchHeader(offset, h.batch_length, epoch, *h[3:]))
        else:
            out.append(h._replace(base_offset=offset, partition_leader_epoch=epoch, max_timestamp=log_append_time,
                                  attributes=h.attributes | records.ATTR_LOG_APPEND_TIME))
        offset += h.last_offset_delta + 1
    return out


def encode_topic_id(topic_id: bytes) -> str:
    """Kafka's Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id).rstrip(b"=").decode()


def partition_metadata(topic_id: bytes) -> bytes:
    """The contents of Kafka's `partition.metadata`."""
    return f"version: 0\ntopic_id: {encode_topic_id(topic_id)}\n".encode()


class PartitionLog(RetentionMixin, LookupMixin):
    """A partition's log on disk. Public attributes: topic, partition, leader_epoch, log_start_offset,
    log_end_offset, high_watermark (== log_end_offset on a single node), recovery_point, config."""

    def __init__(self, directory: str, topic: str, partition: int, config: LogConfig, *,
                 topic_id: bytes | None = None, producer_id_expiration_ms: int = 86_400_000,
                 now: int | None = None):
        self.dir = directory
        self.topic = topic
        self.partition = partition
        self.config = config
        self.topic_id = topic_id
        self.leader_epoch = 0
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()  # held across a whole flush, fsync included; taken before _lock
        self._sync_fds: dict[Segment, int] = {}  # the flush path's descriptors of segment logs (see _dirty_fds)
        self._flushing = False  # a flush is between taking descriptors and closing what it must
        self._closed = False
        self._segments: list[Segment] = []
        self.unflushed_messages = 0
        self.flushes = 0  # fsync rounds, for group-commit figures
        self._checkpoint_ms = 0
        self.last_flush_ms = now if now is not None else wall_ms()
        self.cleaner_offset = 0
        self.tombstone_horizon_ms: int | None = None
        self._checkpointed: dict | None = None  # what the last write_checkpoint put on disk
        if not os.path.isdir(directory):
            os.makedirs(directory)
            fsync_dir(os.path.dirname(os.path.abspath(directory)))
        self._dir_dirty = False  # a new segment file's directory entry is not durable yet
        if topic_id is not None:
            self._write_metadata(topic_id)
        self.producer_state = ProducerStateManager(directory)
        self.epochs = LeaderEpochCache(directory)
        self._load()

    # ------------------------------------------------------------------ opening

    def _new_segment(self, base: int) -> Segment:
        cfg = self.config
        seg = Segment(self.dir, base, index_interval=cfg.index_interval_bytes, index_bytes=cfg.segment_index_bytes)
        seg.roll_jitter_ms = random.randint(0, cfg.segment_jitter_ms) if cfg.segment_jitter_ms > 0 else 0
        return seg

    def _load(self) -> None:
        cp = read_json(os.path.join(self.dir, CHECKPOINT_FILE)) or {}
        tidy_directory(self.dir)
        bases = segment_bases(self.dir) or [int(cp.get("log_start_offset", 0))]
        self._segments = [self._new_segment(b) for b in bases]
        active = self._segments[-1]
        active.active = True
        clean = bool(cp.get("clean")) and cp.get("active_base") == active.base_offset and (
            cp.get("active_size") == active.size)
        if clean:
            active.load_tail()
        else:
            recover_log(self._segments, cp)
            self.producer_state.delete_snapshots_above(self._segments[-1].end_offset())
        self.log_end_offset = self._segments[-1].end_offset()
        self.high_watermark = self.log_end_offset
        start = max(int(cp.get("log_start_offset", 0)), self._segments[0].base_offset)
        self.log_start_offset = min(start, self.log_end_offset)
        self.recovery_point = self.log_end_offset if clean else min(int(cp.get("recovery_point", 0)),
                                                                    self.log_end_offset)
        self.cleaner_offset = min(int(cp.get("cleaner_offset", 0)), self.log_end_offset)
        self.epochs.reconcile(self.log_start_offset, self.log_end_offset, self.leader_epoch)
        self._load_producer_state(clean)
        self.write_checkpoint(clean=False, durable=False)

    def _load_producer_state(self, clean: bool) -> None:
        snap = self.producer_state.load(self.log_end_offset)
        if clean and snap == self.log_end_offset:
            return
        start = snap if snap is not None else self.log_start_offset
        for h in self._iter_headers_from(start):
            self.producer_state.replay(h)

    def _write_metadata(self, topic_id: bytes) -> None:
        path = os.path.join(self.dir, METADATA_FILE)
        text = partition_metadata(topic_id)
        try:
            with open(path, "rb") as f:
                if f.read() == text:
                    return
        except OSError:
            pass
        atomic_write(path, text)

    def write_checkpoint(self, *, clean: bool, durable: bool = True) -> None:
        """Persist log start, recovery point and cleaner position; `clean` only once everything is synced."""
        state = self._checkpoint_state(clean)
        write_json(os.path.join(self.dir, CHECKPOINT_FILE), state, durable=durable)
        self._checkpointed = state
        self._checkpoint_ms = wall_ms()

    def checkpoint_stale(self) -> bool:
        """True unless the last checkpoint written (unclean) still describes the log exactly."""
        return self._checkpointed != self._checkpoint_state(False)

    def _checkpoint_state(self, clean: bool) -> dict:
        active = self._segments[-1]
        return {
            "version": 1, "clean": clean, "log_start_offset": self.log_start_offset,
            "recovery_point": self.recovery_point, "cleaner_offset": self.cleaner_offset,
            "log_end_offset": self.log_end_offset, "active_base": active.base_offset, "active_size": active.size,
            "boot_id": BOOT_ID,  # recovery after a crash in the same boot trusts active_size (recovery.py)
        }

    # ------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._closed:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{self.topic}-{self.partition} is closed")

    @property
    def segments(self) -> list[Segment]:
        """A snapshot of the segment list (oldest first)."""
        with self._lock:
            return list(self._segments)

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def _segment_index_for(self, offset: int) -> int:
        bases = [s.base_offset for s in self._segments]
        lo, hi = 0, len(bases)
        while lo < hi:
            mid = (lo + hi) // 2
            if bases[mid] <= offset:
                lo = mid + 1
            else:
                hi = mid
        return max(0, lo - 1)

    def _iter_headers_from(self, offset: int):
        """Batch headers (file positions) of every batch ending at or after `offset`, across segments."""
        for seg in self._segments[self._segment_index_for(offset):]:
            h = seg.locate(offset)
            if h is None:
                continue
            yield from seg.iter_headers(h.position)

    def update_config(self, config: LogConfig) -> None:
        with self._lock:
            self.config = config
            for seg in self._segments:
                seg.index_interval = config.index_interval_bytes

    # ------------------------------------------------------------------ append

    def append(self, buf: bytearray, batches: list[BatchHeader], *, now_ms: int | None = None) -> AppendResult:
        """Assign offsets in place and write the batches; idempotent duplicates are not written again.

        `buf` should be writable (bytearray or writable memoryview); a read-only buffer is copied once.
        Per batch, never per record; a one-batch append (a durable-mode produce) costs about 5 us here.
        """
        if not isinstance(buf, bytearray) and (not isinstance(buf, memoryview) or buf.readonly):
            buf = bytearray(buf)
        if not batches:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "no record batches to append")
        now = now_ms if now_ms is not None else wall_ms()
        start = batches[0].position
        size = span = count = 0
        max_ts = batches[0].max_timestamp
        idempotent = False
        for h in batches:  # one pass for everything below
            if h.position != start + size:
                raise ValueError("batches must be contiguous in the buffer")
            size += records.LOG_OVERHEAD + h.batch_length
            span += h.last_offset_delta + 1
            count += h.records_count
            if h.max_timestamp > max_ts:
                max_ts = h.max_timestamp
            if h.producer_id >= 0:
                idempotent = True
        with self._lock:
            self._check_open()
            updates = None
            if idempotent:
                dup, updates = self.producer_state.prepare(batches, self.log_end_offset, now)
                if dup is not None:
                    lat = dup[2] if self.config.log_append_time else -1
                    return AppendResult(dup[0], dup[1], lat, self.log_start_offset, True)
            seg = self._maybe_roll(size, span, max_ts, now)
            base, epoch = self.log_end_offset, self.leader_epoch
            lat = now if self.config.log_append_time else None
            next_offset = records.assign_offsets(buf, batches, base, epoch, lat)
            seg.append(memoryview(buf)[start:start + size], _assigned(batches, base, epoch, lat), start)
            if epoch > self.epochs.latest_epoch:
                self.epochs.assign(epoch, base)
            if updates:
                self.producer_state.commit(updates)
            self.log_end_offset = self.high_watermark = next_offset
            self.unflushed_messages += count
            return AppendResult(base, next_offset - 1, lat if lat is not None else -1, self.log_start_offset, False)

    def _maybe_roll(self, size: int, span: int, max_ts: int, now: int) -> Segment:
        """The segment to append `size` bytes holding `span` offsets to (rolling first if it must)."""
        seg = self._segments[-1]
        if seg.size == 0:
            return seg
        cfg = self.config
        new_max_ts = now if cfg.log_append_time else max_ts
        first_ts = seg.first_batch_timestamp
        waited = (new_max_ts - first_ts) if first_ts is not None and first_ts >= 0 else now - seg.created_ms
        last_offset = self.log_end_offset + span - 1
        if (seg.size + size > cfg.segment_bytes or waited > cfg.segment_ms - seg.roll_jitter_ms
                or seg.indexes_full or last_offset - seg.base_offset > records.INT32_MAX):
            return self.roll(now)
        return seg

    def roll(self, now: int | None = None) -> Segment:
        """Start a new active segment at the log end (snapshotting producer state, as Kafka does)."""
        with self._lock:
            old = self._segments[-1]
            if old.size == 0:
                return old
            old.deactivate()
            seg = self._new_segment(self.log_end_offset)
            seg.created_ms = now if now is not None else wall_ms()
            seg.active = True
            self._segments.append(seg)
            self._dir_dirty = True
            self.producer_state.take_snapshot(self.log_end_offset, durable=False)
            self.producer_state.prune()
            return seg

    # ------------------------------------------------------------------ read

    def read(self, offset: int, max_bytes: int, *, min_one: bool = True) -> ReadResult:
        """Whole batches from the one holding `offset`, up to max_bytes (or one batch when min_one)."""
        with self._lock:
            self._check_open()
            if offset < self.log_start_offset or offset > self.log_end_offset:
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}] "
                    f"of {self.topic}-{self.partition}",
                )
            chunks: list = []
            total = 0
            for seg in self._segments[self._segment_index_for(offset):]:
                if offset >= self.high_watermark:
                    break
                chunk, n, stop = self._read_segment(seg, offset, max_bytes - total, min_one and not chunks)
                if n:
                    chunks.append(chunk)
                    total += n
                if stop:
                    break
            return ReadResult(chunks, total)

    def _read_segment(self, seg: Segment, offset: int, budget: int, oversize_ok: bool):
        h = seg.locate(offset)
        if h is None:
            return None, 0, False
        start = h.position
        data = seg.read(start, max(min(seg.size - start, budget), records.HEADER_SIZE))
        off = 0
        hw = self.high_watermark
        while off + records.HEADER_SIZE <= len(data):
            b = records.parse_header(data, off)
            if b.base_offset >= hw:
                return memoryview(data)[:off], off, True
            if off + b.size > len(data) or off + b.size > budget:
                if off == 0 and oversize_ok:
                    whole = seg.read(start, b.size)
                    return whole, len(whole), True
                return memoryview(data)[:off], off, True
            off += b.size
        stop = start + off < seg.size  # budget ran out inside this segment
        return memoryview(data)[:off], off, stop

    # ------------------------------------------------------------------ flush and close

    def flush_due(self, now: int | None = None) -> bool:
        """Whether flush.messages or flush.ms asks for an fsync now."""
        if not self.unflushed_messages:
            return False
        now = now if now is not None else wall_ms()
        cfg = self.config
        return self.unflushed_messages >= cfg.flush_messages or now - self.last_flush_ms >= cfg.flush_ms

    def flush(self) -> None:
        """fsync everything written so far (safe to run in a worker thread) and advance the recovery point.

        Flushes run one at a time: a second one finds the files the first is syncing already clean,
        and must not move the recovery point before that fsync has returned.
        """
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            if self._closed:
                return
            target, pending = self.log_end_offset, self.unflushed_messages
            fds = self._dirty_fds()
            sync_dir, self._dir_dirty = self._dir_dirty, False
            active = self._segments[-1]
            retired = [seg for seg in self._sync_fds if seg is not active]
            self._flushing = True
        synced = False
        try:
            for fd in fds:
                os.fsync(fd)
            if sync_dir:
                fsync_dir(self.dir)
            synced = True
        except OSError as e:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"fsync failed: {e}") from None
        finally:
            for seg in retired:  # rolled or deleted: flushed for the last time just now
                os.close(self._sync_fds.pop(seg))
            with self._lock:
                self._flushing = False
                if self._closed:  # released while this fsync ran: the descriptors are ours to close
                    self._close_sync_fds()
                elif synced:
                    self._flushed(target, pending)

    def _flushed(self, target: int, pending: int) -> None:
        """Under the lock, after a successful fsync of everything below `target`."""
        self.flushes += 1
        self.recovery_point = max(self.recovery_point, target)
        self.unflushed_messages = max(0, self.unflushed_messages - pending)
        self.last_flush_ms = wall_ms()
        # A stale checkpoint only means more recovery work after a crash, so it is rewritten at
        # most once a second: on every flush it cost a file rename per fsync in durable mode
        # (log.flush.interval.messages=1), about 30 % of its throughput.
        if self.last_flush_ms - self._checkpoint_ms >= CHECKPOINT_INTERVAL_MS:
            self.write_checkpoint(clean=False, durable=False)

    def _dirty_fds(self) -> list[int]:
        """Descriptors of the segment logs written since the last flush (under the lock).

        Only the logs: the active segment's indexes are rebuilt by an unclean start after a reboot
        (recovery reads from the recovery point, which lies in or after the active segment) and are
        intact in the page cache after a process crash; a roll syncs the old segment's indexes
        before the recovery point can pass it. Syncing them too cost two more fsyncs every ~4 KiB
        of appends: 1.6 fsyncs per round with 100 B records in durable mode, 0.5 ms rounds.
        Each log is synced through a descriptor of the flush path's own, dup'ed once per segment
        rather than per flush: a dup and a close per round are two more GIL hand-offs between the
        flusher thread and the event loop, which was kept waiting on this lock to append.
        """
        fds = []
        for seg in self._segments:
            if seg.dirty:
                seg.dirty = False
                fd = self._sync_fds.get(seg)
                if fd is None:
                    fd = self._sync_fds[seg] = os.dup(seg.fd)
                fds.append(fd)
        return fds

    def _close_sync_fds(self) -> None:
        for fd in self._sync_fds.values():
            os.close(fd)
        self._sync_fds.clear()

    def close(self) -> None:
        """Flush, write producer snapshot and the clean-shutdown checkpoint, release descriptors."""
        with self._flush_lock, self._lock:  # always in this order (flush takes them so)
            if self._closed:
                return
            self._flush()
            active = self._segments[-1]
            active.deactivate()
            for seg in self._segments:
                for fd in seg.fsync_fds():
                    os.fsync(fd)
                    os.close(fd)
            self.producer_state.take_snapshot(self.log_end_offset, durable=True)
            self.recovery_point = self.log_end_offset
            self.write_checkpoint(clean=True)
            for seg in self._segments:
                seg.close()
            self._close_sync_fds()
            self._closed = True

    def release(self) -> None:
        """Release descriptors without writing anything (topic deletion; tests use it to simulate a crash)."""
        with self._lock:
            for seg in self._segments:
                seg.close()
            if not self._flushing:  # else the running flush closes them when its fsync returns
                self._close_sync_fds()
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return (f"PartitionLog({self.topic}-{self.partition}, start={self.log_start_offset}, "
                f"end={self.log_end_offset}, segments={len(self._segments)})")
