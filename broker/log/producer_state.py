"""Idempotent-producer state per partition, as Kafka's ProducerStateManager keeps it.

Per producer id: the epoch and the last 5 batches' (first seq, last seq, base offset, last offset), so
a retried batch gets its original offsets back instead of being written twice. Checks read batch
headers only. Semantics follow current Kafka (2.5+, KIP-360):
- duplicate of one of the last 5 batches (same epoch, same first and last seq) -> original offsets;
- older epoch -> INVALID_PRODUCER_EPOCH; a newer epoch must start at sequence 0;
- same epoch: first seq must be last seq + 1 (wrapping at Int32.MAX), else OUT_OF_ORDER_SEQUENCE_NUMBER;
- an unknown producer id is accepted at any sequence (its earlier batches may have been removed by
  retention or DeleteRecords), as Kafka does since KIP-360.
State is snapshotted to `<20-digit offset>.snapshot` files (on roll, clean shutdown, and by log
maintenance when the log grew since the last one) and rebuilt by replaying batch headers from the
newest snapshot after an unclean one, so a crash costs a replay of only what followed it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.fileio import read_json, remove_quietly, write_json
from keystream.broker.records import BatchHeader, increment_sequence

MAX_CACHED_BATCHES = 5
SNAPSHOT_SUFFIX = ".snapshot"


@dataclass
class ProducerEntry:
    producer_id: int
    epoch: int = -1
    batches: list[tuple[int, ...]] = field(default_factory=list)  # first seq, last seq, base, last, append ms
    last_timestamp: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1

    def copy(self) -> ProducerEntry:
        return ProducerEntry(self.producer_id, self.epoch, list(self.batches), self.last_timestamp)

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> tuple[int, int, int] | None:
        """(base offset, last offset, append time) of a cached batch with this exact sequence range."""
        if epoch != self.epoch:
            return None
        for fs, ls, base, last, ts in self.batches:
            if fs == first_seq and ls == last_seq:
                return base, last, ts
        return None

    def add(self, h: BatchHeader, base_offset: int, timestamp: int) -> None:
        if h.producer_epoch != self.epoch:
            self.epoch = h.producer_epoch
            self.batches.clear()
        last = base_offset + h.last_offset_delta
        self.batches.append((h.base_sequence, h.last_sequence, base_offset, last, timestamp))
        del self.batches[:-MAX_CACHED_BATCHES]
        self.last_timestamp = max(self.last_timestamp, timestamp)


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == increment_sequence(last_seq, 1) if last_seq >= 0 else next_seq == 0


class ProducerStateManager:
    """Producer entries for one partition plus their snapshot files in the partition directory."""

    def __init__(self, directory: str):
        self.dir = directory
        self.producers: dict[int, ProducerEntry] = {}
        self.snapshot_offset: int | None = None  # of the newest snapshot this process wrote or loaded

    # ------------------------------------------------------------------ appends

    def prepare(
        self, batches: Iterable[BatchHeader], next_offset: int, now_ms: int
    ) -> tuple[tuple[int, int, int] | None, dict[int, ProducerEntry]]:
        """Check an append; return (duplicate's (base, last, time) or None, updated entries to commit)."""
        updates: dict[int, ProducerEntry] = {}
        offset = next_offset
        for h in batches:
            base, offset = offset, offset + h.last_offset_delta + 1
            if h.producer_id < 0 or h.is_control or h.base_sequence < 0:
                continue
            entry = updates.get(h.producer_id)
            if entry is None:
                current = self.producers.get(h.producer_id)
                entry = current.copy() if current else ProducerEntry(h.producer_id)
            dup = entry.find_duplicate(h.producer_epoch, h.base_sequence, h.last_sequence)
            if dup is not None:
                return dup, {}
            self._check(entry, h)
            entry.add(h, base, now_ms)
            updates[h.producer_id] = entry
        return None, updates

    @staticmethod
    def _check(entry: ProducerEntry, h: BatchHeader) -> None:
        pid, epoch, seq = h.producer_id, h.producer_epoch, h.base_sequence
        if entry.epoch >= 0 and epoch < entry.epoch:
            raise KafkaError(
                ErrorCode.INVALID_PRODUCER_EPOCH,
                f"producer {pid} epoch {epoch} is older than the current epoch {entry.epoch}",
            )
        if epoch != entry.epoch:
            if seq != 0 and entry.epoch >= 0:
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {pid} new epoch {epoch} must start at sequence 0, got {seq}",
                )
        elif not _in_sequence(entry.last_seq, seq):
            raise KafkaError(
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"producer {pid} epoch {epoch}: sequence {seq} does not follow {entry.last_seq}",
            )

    def commit(self, updates: dict[int, ProducerEntry]) -> None:
        self.producers.update(updates)

    def replay(self, h: BatchHeader) -> None:
        """Recovery: apply a stored batch without checks."""
        if h.producer_id < 0 or h.is_control or h.base_sequence < 0:
            return
        entry = self.producers.setdefault(h.producer_id, ProducerEntry(h.producer_id))
        entry.add(h, h.base_offset, h.max_timestamp)

    def expire(self, now_ms: int, expiration_ms: int) -> None:
        """Forget producers idle longer than producer.id.expiration.ms."""
        for pid in [p for p, e in self.producers.items() if now_ms - e.last_timestamp >= expiration_ms]:
            del self.producers[pid]

    # ------------------------------------------------------------------ snapshots

    def _path(self, offset: int) -> str:
        return os.path.join(self.dir, f"{offset:020d}{SNAPSHOT_SUFFIX}")

    def snapshot_offsets(self) -> list[int]:
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(SNAPSHOT_SUFFIX) and name[:-len(SNAPSHOT_SUFFIX)].isdigit():
                out.append(int(name[: -len(SNAPSHOT_SUFFIX)]))
        return sorted(out)

    def take_snapshot(self, offset: int, *, durable: bool) -> None:
        data = {
            "version": 1,
            "offset": offset,
            "producers": [[e.producer_id, e.epoch, e.last_timestamp, e.batches] for e in self.producers.values()],
        }
        write_json(self._path(offset), data, durable=durable)
        self.snapshot_offset = offset

    def load(self, log_end_offset: int) -> int | None:
        """Load the newest readable snapshot at or below the log end; return its offset (None: no snapshot)."""
        self.producers = {}
        for off in reversed(self.snapshot_offsets()):
            if off > log_end_offset:
                remove_quietly(self._path(off))
                continue
            data = read_json(self._path(off))
            try:
                if not isinstance(data, dict) or data.get("version") != 1 or data.get("offset") != off:
                    raise ValueError("not a snapshot")
                for pid, epoch, ts, batches in data["producers"]:
                    self.producers[pid] = ProducerEntry(pid, epoch, [tuple(b) for b in batches], ts)
                self.snapshot_offset = off
                return off
            except (TypeError, KeyError, ValueError):
                self.producers = {}
                remove_quietly(self._path(off))
        return None

    def delete_snapshots_below(self, offset: int) -> None:
        """Drop snapshots below the log start, always keeping the newest one."""
        for off in self.snapshot_offsets()[:-1]:
            if off < offset:
                remove_quietly(self._path(off))

    def prune(self, keep: int = 3) -> None:
        """Keep the newest few snapshots: older ones only help after truncating several segments, and
        without one the state is rebuilt from the log start, which is slower but still right."""
        for off in self.snapshot_offsets()[:-keep]:
            remove_quietly(self._path(off))

    def delete_snapshots_above(self, offset: int) -> None:
        """Drop snapshots beyond a truncated log end."""
        for off in self.snapshot_offsets():
            if off > offset:
                remove_quietly(self._path(off))
