"""One log segment: `<20-digit base offset>.log` plus its `.index` and `.timeindex`, as in Kafka.

Batches are written as received with pwrite and read back as raw slices with pread. Header walks read
64 KiB windows, so locating an offset costs a couple of syscalls rather than one per batch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from keystream.broker import records
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.fileio import pread_exact, pwrite_all, remove_quietly
from keystream.broker.log.index import CorruptIndex, OffsetIndex, TimeIndex
from keystream.broker.records import HEADER_SIZE, BatchHeader, parse_header

WINDOW = 64 * 1024
MIN_BATCH = HEADER_SIZE


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class Segment:
    """A segment file and its indexes; the caller (PartitionLog) serialises access with its lock."""

    def __init__(self, directory: str, base_offset: int, *, index_interval: int, index_bytes: int,
                 created_ms: int = 0):
        self.dir = directory
        self.base_offset = base_offset
        stem = os.path.join(directory, segment_name(base_offset))
        self.log_path = stem + ".log"
        self.index = OffsetIndex(stem + ".index", base_offset, index_bytes // 8)
        self.timeindex = TimeIndex(stem + ".timeindex", base_offset, index_bytes // 12)
        self.index_interval = index_interval
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        st = os.fstat(self.fd)
        if st.st_size == 0:  # a new segment: empty indexes are valid, a missing one means "rebuild"
            for ix in (self.index, self.timeindex):
                if not os.path.exists(ix.path):
                    os.close(os.open(ix.path, os.O_WRONLY | os.O_CREAT, 0o644))
        self.size = st.st_size
        self.created_ms = created_ms or int(st.st_mtime * 1000)
        self.next_offset: int | None = base_offset if self.size == 0 else None
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp: int | None = None
        self.bytes_since_index = 0
        self.dirty = False
        self.active = False
        self.roll_jitter_ms = 0

    # ------------------------------------------------------------------ loading

    def ensure_indexes(self) -> None:
        """Load both indexes, rebuilding them from the log when missing entries or damaged."""
        if self.index.loaded and self.timeindex.loaded:
            return
        try:
            self.index.load(self.size)
            self.timeindex.load(self.size)
            if self.size > 0 and not (os.path.exists(self.index.path) and os.path.exists(self.timeindex.path)):
                raise CorruptIndex("missing index")
        except CorruptIndex:
            self.rebuild_indexes()
            return
        last = self.timeindex.last
        if last is not None and last[0] > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = last

    def rebuild_indexes(self) -> None:
        """Recreate both indexes by walking the batch headers (no CRC check)."""
        self.index.reset()
        self.timeindex.reset()
        self.max_timestamp, self.offset_of_max_timestamp, self.bytes_since_index = -1, -1, 0
        self.index.close()
        self.timeindex.close()
        last = None
        for h in self.iter_headers(0):
            self._index_batch(h, h.position, write=False)
            last = h
        if not self.active:
            self._final_time_entry(write=False)
        self.index.write_all()
        self.timeindex.write_all()
        if last is not None:
            self.next_offset = last.next_offset

    def load_tail(self) -> None:
        """After a clean shutdown: read only what follows the last index entry to learn the end."""
        self.ensure_indexes()
        start = self.index.last_position
        last = None
        for h in self.iter_headers(start):
            if h.max_timestamp > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = h.max_timestamp, h.last_offset
            last = h
        self.bytes_since_index = self.size - start
        self.next_offset = last.next_offset if last is not None else self.base_offset
        if self.size:
            self.first_batch_timestamp = parse_header(self.read(0, HEADER_SIZE)).max_timestamp

    # ------------------------------------------------------------------ writing

    def append(self, data: memoryview, batches: Sequence[BatchHeader], data_start: int) -> None:
        """Write `data` (the batches, already offset-assigned) at the end and index them."""
        pos0 = self.size
        try:
            pwrite_all(self.fd, data, pos0)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, pos0)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"write to {self.log_path} failed: {e}") from None
        self.size = pos0 + len(data)
        self.dirty = True
        self.ensure_indexes()
        for h in batches:
            self._index_batch(h, pos0 + h.position - data_start, write=True)
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = batches[0].max_timestamp
        self.next_offset = batches[-1].next_offset

    def _index_batch(self, h: BatchHeader, pos: int, *, write: bool) -> None:
        last = h.last_offset
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = h.max_timestamp, last
        if self.bytes_since_index > self.index_interval:
            self._add(self.index, last, pos, write)
            if self.max_timestamp >= 0 and (not self.timeindex.keys or self.max_timestamp > self.timeindex.keys[-1]):
                self._add(self.timeindex, self.max_timestamp, self.offset_of_max_timestamp, write)
            self.bytes_since_index = 0
        self.bytes_since_index += h.size

    @staticmethod
    def _add(index, key: int, value: int, write: bool) -> None:
        if write:
            index.append(key, value)
        else:
            index.keys.append(key)
            index.values.append(value)

    def _final_time_entry(self, *, write: bool) -> None:
        ti = self.timeindex
        if self.max_timestamp >= 0 and (not ti.keys or self.max_timestamp > ti.keys[-1]):
            self._add(ti, self.max_timestamp, self.offset_of_max_timestamp, write)

    @property
    def indexes_full(self) -> bool:
        return self.index.full or self.timeindex.full

    def deactivate(self) -> None:
        """On roll or close: record the segment's max timestamp in the time index, sync and close indexes."""
        self.ensure_indexes()
        self._final_time_entry(write=True)
        for ix in (self.index, self.timeindex):
            if ix.dirty:
                ix.sync()
            ix.close()
        self.active = False

    def truncate_to(self, position: int, next_offset: int) -> None:
        os.ftruncate(self.fd, position)
        self.size = position
        self.next_offset = next_offset

    def fsync_fds(self) -> list[int]:
        """Duplicated descriptors of every dirty file, so fsync can run without the partition lock."""
        fds = []
        if self.dirty:
            self.dirty = False
            fds.append(os.dup(self.fd))
        for ix in (self.index, self.timeindex):
            fd = ix.fsync_fd()
            if fd is not None:
                fds.append(fd)
        return fds

    def close(self) -> None:
        self.index.close()
        self.timeindex.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def delete_files(self) -> None:
        self.close()
        for p in (self.log_path, self.index.path, self.timeindex.path):
            remove_quietly(p)

    # ------------------------------------------------------------------ reading

    def read(self, pos: int, size: int) -> bytes:
        return pread_exact(self.fd, size, pos)

    def iter_headers(self, start: int, end: int | None = None) -> Iterator[BatchHeader]:
        """Headers of the batches from file position `start`; positions are file positions."""
        limit = self.size if end is None else min(end, self.size)
        pos = start
        while pos + HEADER_SIZE <= limit:
            data = self.read(pos, min(WINDOW, limit - pos))
            off = 0
            while off + HEADER_SIZE <= len(data):
                h = parse_header(data, off)
                if h.batch_length < MIN_BATCH - records.LOG_OVERHEAD:
                    raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"bad batch length in {self.log_path}")
                yield h._replace(position=pos + off)
                off += h.size
            if off == 0:
                return
            pos += off

    def locate(self, offset: int) -> BatchHeader | None:
        """Header of the first batch whose last offset is >= `offset` (None if the segment ends first)."""
        self.ensure_indexes()
        for h in self.iter_headers(self.index.lookup(offset)):
            if h.last_offset >= offset:
                return h
        return None

    @property
    def largest_timestamp(self) -> int:
        """Largest batch timestamp, or the file's mtime when no batch carries one (as Kafka)."""
        self.ensure_indexes()
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.fstat(self.fd).st_mtime * 1000)

    def last_batch(self) -> BatchHeader | None:
        self.ensure_indexes()
        last = None
        for h in self.iter_headers(self.index.last_position):
            last = h
        return last

    def end_offset(self) -> int:
        """Offset after the last batch (scans from the last index entry the first time)."""
        if self.next_offset is None:
            last = self.last_batch()
            self.next_offset = last.next_offset if last else self.base_offset
        return self.next_offset
