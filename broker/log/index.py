"""Kafka's sparse segment indexes: `.index` (relative offset, position) and `.timeindex`
(timestamp, relative offset). Loaded lazily into memory, appended with pwrite, and checked on load so
that a damaged file is rebuilt from the log instead of trusted.
"""

from __future__ import annotations

import bisect
import os
import struct

from keystream.broker.log.fileio import atomic_write, pread_exact, pwrite_all


class CorruptIndex(Exception):
    """The index file does not pass its sanity check; rebuild it from the log."""


class _Index:
    ENTRY: struct.Struct

    def __init__(self, path: str, base_offset: int, max_entries: int):
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_entries)
        self.keys: list[int] = []
        self.values: list[int] = []
        self.loaded = False
        self._fd: int | None = None
        self.dirty = False

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def full(self) -> bool:
        return len(self.keys) >= self.max_entries

    def load(self, log_size: int) -> None:
        """Read and sanity-check the file; raises CorruptIndex. A missing file is an empty index."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            data = b""
        else:
            try:
                data = pread_exact(fd, os.fstat(fd).st_size, 0)
            finally:
                os.close(fd)
        if len(data) % self.ENTRY.size:
            raise CorruptIndex(f"{self.path}: size {len(data)} is not a multiple of {self.ENTRY.size}")
        keys, values = [], []
        for a, b in self.ENTRY.iter_unpack(data):
            k, v = self._decode(a, b)
            if keys and (k < keys[-1] or v < values[-1]):
                raise CorruptIndex(f"{self.path}: entries are not in order")
            keys.append(k)
            values.append(v)
        self._check(values, log_size)
        self.keys, self.values, self.loaded = keys, values, True

    def _decode(self, a: int, b: int) -> tuple[int, int]:
        raise NotImplementedError

    def _encode(self, key: int, value: int) -> bytes:
        raise NotImplementedError

    def _check(self, values: list[int], log_size: int) -> None:
        pass

    def reset(self) -> None:
        self.keys, self.values, self.loaded, self.dirty = [], [], True, True

    def append(self, key: int, value: int) -> None:
        """Add an entry in memory and at the end of the file (opened on first append)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._fd, len(self.keys) * self.ENTRY.size)
        pwrite_all(self._fd, self._encode(key, value), len(self.keys) * self.ENTRY.size)
        self.keys.append(key)
        self.values.append(value)
        self.dirty = True

    def truncate_to_entries(self, n: int) -> None:
        del self.keys[n:]
        del self.values[n:]
        if self._fd is not None:
            os.ftruncate(self._fd, n * self.ENTRY.size)

    def write_all(self, *, durable: bool = True) -> None:
        """Replace the file with the in-memory entries (after a rebuild)."""
        self.close()
        atomic_write(self.path, b"".join(self._encode(k, v) for k, v in zip(self.keys, self.values, strict=True)),
                     durable=durable)
        self.dirty = False

    def fsync_fd(self) -> int | None:
        """A duplicate descriptor to fsync outside the partition lock (None when nothing to sync)."""
        if self._fd is None or not self.dirty:
            return None
        self.dirty = False
        return os.dup(self._fd)

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            self.dirty = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class OffsetIndex(_Index):
    """Entries map a batch's last offset (relative) to the file position where the batch starts."""

    ENTRY = struct.Struct(">ii")

    def _decode(self, a: int, b: int) -> tuple[int, int]:
        return a + self.base_offset, b

    def _encode(self, key: int, value: int) -> bytes:
        return self.ENTRY.pack(key - self.base_offset, value)

    def _check(self, values: list[int], log_size: int) -> None:
        if values and values[-1] >= max(log_size, 1):
            raise CorruptIndex(f"{self.path}: position {values[-1]} is past the log end {log_size}")

    def lookup(self, offset: int) -> int:
        """Position of the last indexed batch whose last offset is <= `offset` (0 when none)."""
        i = bisect.bisect_right(self.keys, offset) - 1
        return self.values[i] if i >= 0 else 0

    @property
    def last_position(self) -> int:
        return self.values[-1] if self.values else 0


class TimeIndex(_Index):
    """Entries map the largest timestamp so far to the (last) offset of the batch holding it."""

    ENTRY = struct.Struct(">qi")

    def _decode(self, a: int, b: int) -> tuple[int, int]:
        return a, b + self.base_offset

    def _encode(self, key: int, value: int) -> bytes:
        return self.ENTRY.pack(key, value - self.base_offset)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if timestamp >= 0 and (not self.keys or timestamp > self.keys[-1]):
            self.append(timestamp, offset)

    def lookup_before(self, timestamp: int) -> int | None:
        """Offset of the last entry whose timestamp is < `timestamp`: no record at or before it qualifies."""
        i = bisect.bisect_left(self.keys, timestamp) - 1
        return self.values[i] if i >= 0 else None

    @property
    def last(self) -> tuple[int, int] | None:
        return (self.keys[-1], self.values[-1]) if self.keys else None
