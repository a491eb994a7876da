"""Moving the log start: DeleteRecords, and retention by time and size, which delete whole segments
(the active one only after rolling it, as Kafka does when it has expired too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keystream.broker.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from keystream.broker.log.segment import Segment


class RetentionMixin:
    """Methods of PartitionLog that remove data from the head of the log."""

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move the log start to `offset` (-1: the high watermark); return the new start."""
        with self._lock:
            self._check_open()
            if offset == -1:
                offset = self.high_watermark
            if offset < 0 or offset > self.high_watermark:
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"cannot delete records before {offset}: high watermark is {self.high_watermark}",
                )
            if offset > self.log_start_offset:
                self._advance_log_start(offset)
                self.write_checkpoint(clean=False)
            return self.log_start_offset

    def _advance_log_start(self, offset: int) -> None:
        self.log_start_offset = offset
        while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
            self._delete_segment(self._segments[0])
        self.epochs.truncate_from_start(offset)
        self.producer_state.delete_snapshots_below(self._segments[0].base_offset)

    def _delete_segment(self, seg: Segment) -> None:
        self._segments.remove(seg)
        seg.delete_files()
        if self._segments and self._segments[0].base_offset > self.log_start_offset:
            self.log_start_offset = self._segments[0].base_offset

    def apply_retention(self, now_ms: int) -> int:
        """Delete segments past retention.ms / retention.bytes; return the bytes removed."""
        with self._lock:
            if self._closed or not self.config.delete:
                return 0
            removed = self._retain_by_time(now_ms) + self._retain_by_size()
            if removed:
                self.epochs.truncate_from_start(self.log_start_offset)
                self.producer_state.delete_snapshots_below(self._segments[0].base_offset)
            return removed

    def _retain_by_time(self, now_ms: int) -> int:
        limit = self.config.retention_ms
        if limit < 0:
            return 0
        removed = 0
        while self._segments:
            seg = self._segments[0]
            active = seg is self._segments[-1]
            if (active and seg.size == 0) or now_ms - seg.largest_timestamp <= limit:
                break
            if active:
                self.roll(now_ms)
            removed += seg.size
            self._delete_segment(seg)
        return removed

    def _retain_by_size(self) -> int:
        limit = self.config.retention_bytes
        if limit < 0:
            return 0
        excess = self.size_bytes - limit
        removed = 0
        while len(self._segments) > 1 and excess - self._segments[0].size >= 0:
            seg = self._segments[0]
            excess -= seg.size
            removed += seg.size
            self._delete_segment(seg)
        return removed

    def expire_producers(self, now_ms: int) -> None:
        with self._lock:
            self.producer_state.expire(now_ms, self.producer_id_expiration_ms)
