"""Group commit: concurrent acks=-1 appends with flush.messages=1 share fsyncs and all end up durable.

A slow disk is injected where a test needs an fsync to stay in flight: `os.fsync` of the partition
module is wrapped so that the first call waits for the test to let it go.
"""

import asyncio
import os
import threading

import pytest

from keystream.auth.principal import Principal, Session
from keystream.broker import group_commit, records
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.group_commit import GroupCommits
from keystream.broker.handlers import HANDLERS
from keystream.broker.log import partition as partition_module
from keystream.broker.log.config import build_log_config
from keystream.broker.log.partition import PartitionLog
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from keystream.config import load_config

PRODUCERS = 16
WAIT_S = 10


def _log(tmp_path, name: str = "t", **config) -> PartitionLog:
    cfg = build_log_config({}, {"flush.messages": "1", **{k.replace("_", "."): str(v) for k, v in config.items()}})
    return PartitionLog(str(tmp_path / f"{name}-0"), name, 0, cfg)


def _append(plog: PartitionLog, value: bytes) -> None:
    batch = bytearray(records.build_batch([(None, value, [], 1_700_000_000_000)]))
    plog.append(batch, [records.parse_header(batch, 0)])


class SlowDisk:
    """Holds the next fsync (anywhere: `os` is one module) until `release()`; later ones run."""

    def __init__(self, monkeypatch):
        self.entered = threading.Event()
        self._go = threading.Event()
        self.calls = 0
        real = os.fsync

        def fsync(fd: int) -> None:
            self.calls += 1
            if self.calls == 1:
                self.entered.set()
                assert self._go.wait(WAIT_S), "the test never released the held fsync"
            real(fd)

        monkeypatch.setattr(partition_module.os, "fsync", fsync)

    async def wait_entered(self) -> None:
        assert await asyncio.get_running_loop().run_in_executor(None, self.entered.wait, WAIT_S)

    def release(self) -> None:
        self._go.set()


async def _until(predicate, what: str) -> None:
    """Yields to the loop until `predicate()` holds (it only depends on tasks of this loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0)


def test_concurrent_flushes_share_fsyncs(tmp_path):
    plog = _log(tmp_path)
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
        # All 16 append in one loop iteration, which hands the log over once: one round.
        assert plog.flushes == commits.rounds == 1, f"{plog.flushes} fsync rounds for {PRODUCERS} producers"
    finally:
        plog.close()


def test_appends_during_an_fsync_share_the_next_one(tmp_path, monkeypatch):
    """Classic group commit: whatever arrives while an fsync is in flight waits for it to end, and
    then a single next fsync covers all of it."""
    plog = _log(tmp_path)
    disk = SlowDisk(monkeypatch)
    commits = GroupCommits()

    async def run() -> None:
        _append(plog, b"first")
        first = asyncio.ensure_future(commits.flush(plog))
        await disk.wait_entered()  # round 1 is fsyncing offset 0 only
        later = []
        for i in range(PRODUCERS - 1):
            _append(plog, b"v%d" % i)
            later.append(asyncio.ensure_future(commits.flush(plog)))
        await _until(lambda: commits._queue.qsize() == 1, "the hand-over of the later appends")
        assert not first.done() and plog.recovery_point == 0
        disk.release()
        await asyncio.wait_for(asyncio.gather(first, *later), WAIT_S)

    try:
        asyncio.run(run())
        assert plog.recovery_point == plog.log_end_offset == PRODUCERS
        assert commits.rounds == 2 and plog.flushes == 2
        assert disk.calls == 2  # one fsync per round: the segment log (indexes are synced at roll)
    finally:
        plog.close()


def test_one_round_covers_every_partition_handed_over(tmp_path, monkeypatch):
    held, a, b = _log(tmp_path, "held"), _log(tmp_path, "a"), _log(tmp_path, "b")
    disk = SlowDisk(monkeypatch)
    commits = GroupCommits()

    async def run() -> None:
        _append(held, b"x")
        first = asyncio.ensure_future(commits.flush(held))
        await disk.wait_entered()
        waits = []
        for plog in (a, b, a, b):
            _append(plog, b"y")
            waits.append(asyncio.ensure_future(commits.flush(plog)))
        await _until(lambda: commits._queue.qsize() == 1, "the hand-over")
        disk.release()
        await asyncio.wait_for(asyncio.gather(first, *waits), WAIT_S)

    try:
        asyncio.run(run())
        assert commits.rounds == 2
        assert (held.flushes, a.flushes, b.flushes) == (1, 1, 1)
        assert a.recovery_point == a.log_end_offset == 2 and b.recovery_point == b.log_end_offset == 2
    finally:
        for plog in (held, a, b):
            plog.close()


def test_a_round_over_many_logs_syncs_them_all(tmp_path):
    """More logs than one thread syncs in a round: the other chunks go to helper threads."""
    logs = [_log(tmp_path, f"t{i}") for i in range(3 * group_commit.LOGS_PER_THREAD + 1)]
    commits = GroupCommits()

    async def run() -> None:
        for plog in logs:
            _append(plog, b"x")
        await asyncio.wait_for(asyncio.gather(*(commits.flush(plog) for plog in logs)), WAIT_S)

    try:
        asyncio.run(run())
        assert commits.rounds == 1
        assert all(plog.recovery_point == plog.log_end_offset == 1 and plog.flushes == 1 for plog in logs)
    finally:
        for plog in logs:
            plog.close()


def test_the_commit_delay_applies_only_after_a_round_shared_by_many(tmp_path, monkeypatch):
    """A lone synchronous producer never waits before its fsync; after a round that covered
    COMMIT_SIBLINGS requests or more, the next round waits COMMIT_DELAY_S for more to join."""
    delays = []
    real_sleep = group_commit.time.sleep
    monkeypatch.setattr(group_commit.time, "sleep", lambda s: delays.append(s) or real_sleep(s))
    plog = _log(tmp_path)
    commits = GroupCommits()

    async def run() -> None:
        for i in range(5):  # one request per round
            _append(plog, b"%d" % i)
            await commits.flush(plog)
        assert delays == []
        for _ in range(2):  # two rounds of many concurrent requests: the second one waits
            for i in range(group_commit.COMMIT_SIBLINGS):
                _append(plog, b"%d" % i)
            await asyncio.gather(*(commits.flush(plog) for _ in range(group_commit.COMMIT_SIBLINGS)))

    try:
        asyncio.run(asyncio.wait_for(run(), WAIT_S))
        assert delays == [group_commit.COMMIT_DELAY_S]
        assert plog.recovery_point == plog.log_end_offset == 5 + 2 * group_commit.COMMIT_SIBLINGS
    finally:
        plog.close()


def test_a_flush_after_the_last_append_is_a_no_op(tmp_path):
    plog = _log(tmp_path)
    commits = GroupCommits()
    try:
        _append(plog, b"a")
        asyncio.run(commits.flush(plog))
        rounds = plog.flushes
        asyncio.run(commits.flush(plog))
        assert plog.flushes == rounds == commits.rounds == 1
    finally:
        plog.close()


def test_a_failed_fsync_fails_the_waiters_of_that_log_only(tmp_path, monkeypatch):
    bad, good = _log(tmp_path, "bad"), _log(tmp_path, "good")
    commits = GroupCommits()
    bad_fds: set[int] = set()
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.path.realpath(f"/proc/self/fd/{fd}").startswith(bad.dir):
            bad_fds.add(fd)
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(partition_module.os, "fsync", fsync)

    async def run():
        _append(bad, b"x")
        _append(good, b"y")
        return await asyncio.gather(commits.flush(bad), commits.flush(good), return_exceptions=True)

    try:
        bad_result, good_result = asyncio.run(asyncio.wait_for(run(), WAIT_S))
        assert isinstance(bad_result, KafkaError) and bad_result.code == ErrorCode.KAFKA_STORAGE_ERROR
        assert good_result is None and good.recovery_point == 1
        assert bad_fds and bad.recovery_point == 0
    finally:
        monkeypatch.undo()
        for plog in (bad, good):
            plog.close()


def test_later_loops_are_served_too(tmp_path):
    """One GroupCommits outlives event loops (tests run several): each loop's waiters are answered."""
    plog = _log(tmp_path)
    commits = GroupCommits()
    try:
        for i in range(3):
            _append(plog, b"v%d" % i)
            asyncio.run(asyncio.wait_for(commits.flush(plog), WAIT_S))
            assert plog.recovery_point == i + 1
    finally:
        plog.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("end", ["close", "release"])
def test_flushing_leaves_no_descriptor_behind(tmp_path, end):
    before = _open_fds()
    plog = _log(tmp_path, segment_bytes=1024, segment_index_bytes=4096)
    commits = GroupCommits()

    async def run() -> None:
        for i in range(40):  # rolls several segments; each round syncs the old and the new one
            _append(plog, b"%d" % i * 100)
            await commits.flush(plog)

    asyncio.run(asyncio.wait_for(run(), WAIT_S))
    assert len(plog.segments) > 3 and plog.recovery_point == plog.log_end_offset == 40
    getattr(plog, end)()
    assert _open_fds() == before


def test_a_log_released_while_its_fsync_runs_closes_its_descriptors_after(tmp_path, monkeypatch):
    before = _open_fds()
    plog = _log(tmp_path)
    disk = SlowDisk(monkeypatch)
    commits = GroupCommits()

    async def run() -> None:
        _append(plog, b"x")
        waiting = asyncio.ensure_future(commits.flush(plog))
        await disk.wait_entered()
        plog.release()  # topic deletion while the flusher is inside fsync
        disk.release()
        await asyncio.wait_for(waiting, WAIT_S)  # answered: the log is gone, nothing left to wait for

    asyncio.run(run())
    assert _open_fds() == before


def test_produce_answers_a_failed_fsync_with_a_storage_error(tmp_path, monkeypatch):
    """acks=-1 in durable mode: an fsync that fails answers KAFKA_STORAGE_ERROR for that partition
    (the handler returns normally, so the connection stays up) while the others succeed."""
    async def main() -> None:
        config = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
                  "super.users": "User:admin", "offsets.topic.num.partitions": 1,
                  "log.flush.interval.messages": 1}
        broker = Broker(load_config(None, overrides=config, environ={}))
        await broker.start()
        try:
            topic = broker.logs.create_topic("t", 2, {})
            bad_dir = topic.partitions[1].dir
            real = os.fsync

            def fsync(fd: int) -> None:
                if os.path.realpath(f"/proc/self/fd/{fd}").startswith(bad_dir):
                    raise OSError(5, "Input/output error")
                real(fd)

            monkeypatch.setattr(partition_module.os, "fsync", fsync)
            batch = records.build_batch([(None, b"v", [], 1_700_000_000_000)])
            req = ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[TopicProduceData(
                "t", [PartitionProduceData(0, bytearray(batch)), PartitionProduceData(1, bytearray(batch))])])
            ctx = RequestContext(broker, 9, 1, "test", Session(Principal("User", "admin"), "127.0.0.1"))
            resp = await asyncio.wait_for(HANDLERS[0].fn(ctx, req), WAIT_S)
            good, bad = resp.responses[0].partition_responses
            assert (good.error_code, good.base_offset) == (0, 0)
            assert bad.error_code == ErrorCode.KAFKA_STORAGE_ERROR and bad.base_offset == -1
            assert "Input/output error" in bad.error_message
            monkeypatch.undo()
        finally:
            await broker.stop()

    asyncio.run(main())
