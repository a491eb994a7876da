"""Leader epoch cache (`leader-epoch-checkpoint`): the start offset of each leader epoch, so that
OffsetForLeaderEpoch can tell a follower or a client where an epoch ended (Kafka's LeaderEpochFileCache).
"""

from __future__ import annotations

import bisect
import os

from keystream.broker.log.fileio import read_text_checkpoint, write_text_checkpoint

FILE_NAME = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class LeaderEpochCache:
    """(epoch, start offset) entries in increasing order, persisted in Kafka's checkpoint text format."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, FILE_NAME)
        self.entries: list[tuple[int, int]] = []
        rows = read_text_checkpoint(self.path) or []
        for row in rows:
            if len(row) == 2 and all(x.lstrip("-").isdigit() for x in row):
                self.entries.append((int(row[0]), int(row[1])))
        self._persisted = list(self.entries)

    def _save(self) -> None:
        """Writes the file only when the entries changed (start-up reconciles thousands of logs)."""
        if self.entries != self._persisted:
            write_text_checkpoint(self.path, self.entries, durable=False)
            self._persisted = list(self.entries)

    def reconcile(self, log_start_offset: int, log_end_offset: int, epoch: int) -> None:
        """After loading a log: fit the entries to its offsets and current epoch, saving at most once."""
        self._truncate_from_end(log_end_offset)
        self._truncate_from_start(log_start_offset)
        self._assign(epoch, log_end_offset)
        self._save()

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that `epoch` starts at `start_offset` (ignored unless it is a newer epoch)."""
        self._assign(epoch, start_offset)
        self._save()

    def _assign(self, epoch: int, start_offset: int) -> None:
        if epoch < 0 or (self.entries and epoch <= self.entries[-1][0]):
            return
        while self.entries and self.entries[-1][1] > start_offset:
            self.entries.pop()
        self.entries.append((epoch, start_offset))

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's semantics: (largest epoch <= requested, start offset of the next epoch or the log end)."""
        if epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        if epoch == self.entries[-1][0]:
            return epoch, log_end_offset
        epochs = [e for e, _ in self.entries]
        hi = bisect.bisect_right(epochs, epoch)
        if hi >= len(self.entries):
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        higher_start = self.entries[hi][1]
        if hi == 0:
            return epoch, higher_start
        return self.entries[hi - 1][0], higher_start

    def truncate_from_end(self, end_offset: int) -> None:
        """After the log was cut back to `end_offset`: drop epochs that start at or after it."""
        self._truncate_from_end(end_offset)
        self._save()

    def _truncate_from_end(self, end_offset: int) -> None:
        self.entries = [e for e in self.entries if e[1] < end_offset]

    def truncate_from_start(self, start_offset: int) -> None:
        """After the log start moved: epochs wholly before it go, the one spanning it starts there."""
        self._truncate_from_start(start_offset)
        self._save()

    def _truncate_from_start(self, start_offset: int) -> None:
        below = [e for e in self.entries if e[1] < start_offset]
        if not below:
            return
        rest = [e for e in self.entries if e[1] >= start_offset]
        if not rest or rest[0][1] > start_offset:
            rest.insert(0, (below[-1][0], start_offset))
        self.entries = rest
