"""Group commit: concurrent acks=-1 producers on one partition share fsyncs.

A flush covers every append made before it started, so a producer whose append is already covered
by the running fsync just waits for it, and everyone who appended while it ran is covered by the
single next one. With `log.flush.interval.messages=1` this turns N fsyncs per N concurrent requests
into about two.
"""

import asyncio
import weakref

from keystream.broker.log.partition import PartitionLog


class GroupCommit:
    """The in-flight fsync of one partition log, if any."""

    def __init__(self, plog: PartitionLog):
        self.plog = plog
        self._running: asyncio.Future | None = None

    async def flush_through(self, offset: int) -> None:
        """Returns once every record before `offset` is on disk (recovery point ≥ offset)."""
        loop = asyncio.get_running_loop()
        while self.plog.recovery_point < offset and not self.plog.closed:
            # A finished fsync did not cover this append (it started before it): start the next one.
            # (A done future may still be `_running` here, and awaiting it would not yield.)
            if self._running is None or self._running.done():
                self._running = loop.run_in_executor(None, self.plog.flush)
            await asyncio.shield(self._running)


class GroupCommits:
    """One GroupCommit per live partition log (entries go away with their logs)."""

    def __init__(self) -> None:
        self._by_log: weakref.WeakKeyDictionary[PartitionLog, GroupCommit] = weakref.WeakKeyDictionary()

    async def flush(self, plog: PartitionLog) -> None:
        """Flushes everything appended to `plog` so far, sharing the fsync with concurrent callers."""
        commit = self._by_log.get(plog)
        if commit is None:
            commit = self._by_log[plog] = GroupCommit(plog)
        await commit.flush_through(plog.log_end_offset)
