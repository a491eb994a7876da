"""No per-request buffer outlives its response (issue 5, Memory).

Decoded requests hold memoryviews into their frame, so anything that keeps a piece of a request
(group state, parked fetches, producer state, response lists) keeps the whole frame. Two guards:

- a real broker process answers 200 produce + 200 fetch requests of 1 MiB each; its RSS may not
  grow by 100 MiB between a warm-up point and the end (retaining each frame would add 400 MiB);
- the broker in this process under tracemalloc: after produce, fetch and group requests carrying
  large payloads, no allocation site holds 16 MiB more than after the warm-up, and the report
  names the line that does.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import tracemalloc

import pytest

from keystream.broker.broker import Broker
from keystream.broker.protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from keystream.broker.server import Server
from keystream.config import load_config
from tests.fixtures.broker import free_port
from tests.fixtures.records import Record, build_batch
from tests.fixtures.wire import WireClient, unique_name

MiB = 1 << 20
VALUE = MiB - 4096  # one record per batch; the batch stays under message.max.bytes


def _produce_and_fetch(c: WireClient, topic: str, batch: bytes, rounds: int, offset: int) -> int:
    """Each round: produce one ~1 MiB batch, then fetch it back whole. Returns the next offset."""
    for _ in range(rounds):
        assert c.produce(topic, 0, batch, acks=1).error_code == 0
        p = c.fetch(topic, 0, offset, max_bytes=2 * MiB, partition_max_bytes=2 * MiB)
        assert p.error_code == 0 and len(p.records) >= len(batch) - 64
        offset += 1
    return offset


def test_rss_does_not_grow_with_large_requests(broker):
    batch = build_batch([Record(value=os.urandom(VALUE))])
    topic = unique_name("mem")
    with WireClient(broker.address, timeout=30) as c:
        c.create_topic(topic, 1)
        offset = _produce_and_fetch(c, topic, batch, 20, 0)  # warm-up: allocator arenas, page cache, codecs
        before = broker.rss_bytes()
        _produce_and_fetch(c, topic, batch, 200, offset)
        grown = broker.rss_bytes() - before
    assert grown < 100 * MiB, f"RSS grew by {grown / MiB:.0f} MiB over 200 produce + 200 fetch requests of 1 MiB"


@pytest.fixture
def in_process_broker(tmp_path):
    """Broker and Server on an asyncio loop in a thread of this process, so tracemalloc sees them."""
    port = free_port()
    listener = f"PLAINTEXT://127.0.0.1:{port}"
    config = load_config(None, environ={}, overrides={
        "node.id": "1", "listeners": listener, "advertised.listeners": listener,
        "log.dirs": str(tmp_path / "data"), "super.users": "User:ANONYMOUS",
        "group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "1",
    })
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    broker = Broker(config)
    server = Server(broker)

    def run(coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    run(broker.start())
    run(server.start())
    try:
        yield ("127.0.0.1", port)
    finally:
        run(server.stop(grace_s=2))
        run(broker.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _group_round(c: WireClient, group: str, metadata: bytes, assignment: bytes, member: str) -> str:
    """One JoinGroup + SyncGroup of a one-member group with large metadata and assignment."""
    join = c.request(JoinGroupRequest(
        group_id=group, session_timeout_ms=30000, rebalance_timeout_ms=30000, member_id=member,
        protocol_type="consumer", protocols=[JoinGroupRequestProtocol(name="range", metadata=metadata)],
    ), 7, timeout=30)
    if join.error_code == 79:  # MEMBER_ID_REQUIRED: join again with the id the broker gave
        return _group_round(c, group, metadata, assignment, join.member_id)
    assert join.error_code == 0, join
    sync = c.request(SyncGroupRequest(
        group_id=group, generation_id=join.generation_id, member_id=join.member_id, protocol_type="consumer",
        protocol_name="range", assignments=[SyncGroupRequestAssignment(member_id=join.member_id,
                                                                         assignment=assignment)],
    ), 5, timeout=30)
    assert sync.error_code == 0, sync
    return join.member_id


def test_no_allocation_site_retains_request_buffers(in_process_broker):
    batch = build_batch([Record(value=os.urandom(VALUE))])
    topic, group = unique_name("mem"), unique_name("g")
    # Big fields padded onto small requests: a kept memoryview would pin each whole frame.
    metadata, assignment = os.urandom(256 << 10), os.urandom(256 << 10)
    tracemalloc.start(1)
    try:
        with WireClient(in_process_broker, timeout=30) as c:
            c.create_topic(topic, 1)
            offset = _produce_and_fetch(c, topic, batch, 5, 0)
            member = _group_round(c, group, metadata, assignment, "")
            gc.collect()
            before = tracemalloc.take_snapshot()
            offset = _produce_and_fetch(c, topic, batch, 60, offset)
            for _ in range(60):
                member = _group_round(c, group, metadata, assignment, member)
            gc.collect()
            after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = [s for s in after.compare_to(before, "lineno") if s.size_diff > 0]
    total = sum(s.size_diff for s in growth)
    top = "\n".join(f"  {s.size_diff / MiB:+.1f} MiB {s.traceback}" for s in growth[:5])
    assert total < 16 * MiB, f"{total / MiB:.0f} MiB still allocated after 120 large requests:\n{top}"
