"""The broker's own metadata log: ACLs now, SCRAM credentials and tenants later.

A private, compacted, single-partition log (`<log.dir>/__keystream_metadata-0`) built from the
ordinary PartitionLog, so it gets crash recovery for free, but is not a topic: clients cannot see,
read or write it (like Kafka's `__cluster_metadata`), and topic names starting `__keystream` are
reserved. Keys are namespaced by their owner (`b"acl\\0..."`, `b"scram\\0..."`), values are the
owner's business; a None value is a tombstone. Every append is fsynced before it returns: an
acknowledged change survives kill -9.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator

from keystream.broker import records
from keystream.broker.log.cleaner import clean_partition
from keystream.broker.log.config import build_log_config
from keystream.broker.log.partition import PartitionLog

log = logging.getLogger("keystream.metadata")

TOPIC = "__keystream_metadata"
READ_CHUNK = 1 << 20


class MetadataLog:
    """Append-and-replay access to the metadata log kept beside the topics in the first log dir."""

    def __init__(self, logs):
        self.logs = logs
        self._lock = threading.Lock()
        self._plog: PartitionLog | None = None

    def open(self) -> None:
        """Opens (creating on first start, recovering after a crash) the log; idempotent."""
        if self._plog is None:
            config = build_log_config(self.logs.broker_defaults, {"cleanup.policy": "compact"})
            self._plog = PartitionLog(os.path.join(self.logs.log_dirs[0], f"{TOPIC}-0"), TOPIC, 0, config)

    def compact(self, now_ms: int) -> None:
        """Keeps only the latest record per key (run by the broker's maintenance task)."""
        if self._plog is not None:
            with self._lock:
                clean_partition(self._plog, now_ms)

    def close(self) -> None:
        if self._plog is not None:
            self._plog.close()
            self._plog = None

    def _partition(self) -> PartitionLog:
        self.open()
        return self._plog

    def append(self, key: bytes, value: bytes | None) -> int:
        """Writes one record and fsyncs; returns its offset."""
        return self.append_many([(key, value)])

    def append_many(self, entries: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Writes the entries as one batch (all or nothing after a crash) and fsyncs; returns the base offset."""
        now = int(time.time() * 1000)
        batch_records = [(bytes(k), None if v is None else bytes(v), [], now) for k, v in entries]
        if not batch_records:
            raise ValueError("nothing to append")
        if any(not k for k, *_ in batch_records):
            raise ValueError("metadata records need a key (the log is compacted)")
        batch = bytearray(records.build_batch(batch_records))
        with self._lock:
            plog = self._partition()
            result = plog.append(batch, [records.parse_header(batch, 0)], now_ms=now)
            plog.flush()
        return result.base_offset

    def replay(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """The live (key, value) pairs whose key starts with `prefix`: last value per key wins,
        and keys whose last record is a tombstone are left out."""
        latest: dict[bytes, bytes | None] = {}
        for key, value in self._records():
            if key.startswith(prefix):
                latest[key] = value
        for key, value in latest.items():
            if value is not None:
                yield key, value

    def _records(self) -> Iterator[tuple[bytes, bytes | None]]:
        plog = self._partition()
        offset = plog.log_start_offset
        while offset < plog.log_end_offset:
            start = offset
            for batch in records.split_batches(plog.read(offset, READ_CHUNK).chunks):
                h = records.parse_header(batch, 0)
                offset = max(offset, h.next_offset)
                if h.is_control:
                    continue
                for rec in records.iter_records(batch):
                    if rec.key is not None and rec.offset >= start:
                        yield rec.key, rec.value
            if offset == start:  # nothing readable up to the log end (e.g. compacted away)
                break
