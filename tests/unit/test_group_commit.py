"""Group commit: concurrent acks=-1 appends with flush.messages=1 share fsyncs and all end up durable."""

import asyncio

from keystream.broker import records
from keystream.broker.group_commit import GroupCommits
from keystream.broker.log.config import build_log_config
from keystream.broker.log.partition import PartitionLog

PRODUCERS = 16


def _append(plog: PartitionLog, value: bytes) -> None:
    batch = bytearray(records.build_batch([(None, value, [], 1_700_000_000_000)]))
    plog.append(batch, [records.parse_header(batch, 0)])


def test_concurrent_flushes_share_fsyncs(tmp_path):
    plog = PartitionLog(str(tmp_path / "t-0"), "t", 0, build_log_config({}, {"flush.messages": "1"}))
    commits = GroupCommits()

    async def producer(i: int) -> None:
        _append(plog, b"v%d" % i)
        assert plog.flush_due()
        await commits.flush(plog)
        assert plog.recovery_point >= i + 1  # this producer's record is on disk before it is answered

    async def run() -> None:
        await asyncio.gather(*(producer(i) for i in range(PRODUCERS)))

    try:
        asyncio.run(run())
        assert plog.recovery_point == plog.log_end_offset == PRODUCERS
        assert 1 <= plog.flushes <= 3, f"{plog.flushes} fsync rounds for {PRODUCERS} concurrent producers"
    finally:
        plog.close()


def test_a_flush_after_the_last_append_is_a_no_op(tmp_path):
    plog = PartitionLog(str(tmp_path / "t-0"), "t", 0, build_log_config({}, {"flush.messages": "1"}))
    commits = GroupCommits()
    try:
        _append(plog, b"a")
        asyncio.run(commits.flush(plog))
        rounds = plog.flushes
        asyncio.run(commits.flush(plog))
        assert plog.flushes == rounds
    finally:
        plog.close()


def test_a_finished_flush_that_did_not_cover_an_append_is_followed_by_another(tmp_path):
    """The fsync that was running when a producer appended has completed, but not covered it."""
    plog = PartitionLog(str(tmp_path / "t-0"), "t", 0, build_log_config({}, {"flush.messages": "1"}))
    commits = GroupCommits()

    async def run() -> None:
        _append(plog, b"a")
        await commits.flush(plog)
        # The race: an fsync has finished, but its future is still the recorded one when the next
        # producer appends (its done-callbacks have not run yet).
        finished = asyncio.get_running_loop().create_future()
        finished.set_result(None)
        commits._by_log[plog]._running = finished
        _append(plog, b"b")
        await asyncio.wait_for(commits.flush(plog), 10)

    try:
        asyncio.run(run())
        assert plog.recovery_point == plog.log_end_offset == 2
    finally:
        plog.close()
