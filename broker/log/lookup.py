"""Offset queries for ListOffsets and OffsetForLeaderEpoch: by timestamp (through the time index, then
decoding the one batch that holds the answer, so the result is the exact record as in Kafka), the
record with the largest timestamp, and where a leader epoch ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keystream.broker.records import iter_records

if TYPE_CHECKING:
    from keystream.broker.log.segment import Segment


class LookupMixin:
    """Methods of PartitionLog that answer offset queries."""

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after the log start with timestamp >= `timestamp`
        and below the high watermark, or None."""
        with self._lock:
            self._check_open()
            for seg in self._segments:
                seg.ensure_indexes()
                if seg.max_timestamp < timestamp or seg.end_offset() <= self.log_start_offset:
                    continue
                found = self._find_in_segment(seg, timestamp)
                if found is not None:
                    return found
            return None

    def _find_in_segment(self, seg: Segment, timestamp: int) -> tuple[int, int] | None:
        after = seg.timeindex.lookup_before(timestamp)
        start_offset = max(self.log_start_offset, after + 1 if after is not None else seg.base_offset)
        h0 = seg.locate(start_offset)
        if h0 is None:
            return None
        for h in seg.iter_headers(h0.position):
            if h.base_offset >= self.high_watermark:
                return None
            if h.max_timestamp < timestamp or h.last_offset < start_offset:
                continue
            for rec in iter_records(seg.read(h.position, h.size)):
                if rec.offset >= start_offset and rec.timestamp >= timestamp and rec.offset < self.high_watermark:
                    return rec.offset, rec.timestamp
        return None

    def max_timestamp(self) -> tuple[int, int]:
        """(offset, timestamp) of the first record holding the largest timestamp; (-1, -1) when none."""
        with self._lock:
            self._check_open()
            best: Segment | None = None
            for seg in self._segments:
                seg.ensure_indexes()
                if seg.max_timestamp >= 0 and (best is None or seg.max_timestamp > best.max_timestamp):
                    best = seg
            if best is None:
                return -1, -1
            ts = best.max_timestamp
            h = best.locate(best.offset_of_max_timestamp)
            if h is None:
                return best.offset_of_max_timestamp, ts
            for rec in iter_records(best.read(h.position, h.size)):
                if rec.timestamp == ts:
                    return rec.offset, ts
            return h.last_offset, ts

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset) by Kafka's leader-epoch-cache rules."""
        with self._lock:
            self._check_open()
            return self.epochs.end_offset_for(epoch, self.log_end_offset)
