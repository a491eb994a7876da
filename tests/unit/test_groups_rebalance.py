"""The initial join window and how late members reach a group that has already formed.

The window is `group.initial.rebalance.delay.ms` of loop time, so these tests run on an event loop
whose clock the test moves forward (`WarpLoop`): the coordinator's timers fire as if that much time
had passed, and the few real milliseconds a step takes are far inside the margins asserted.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from keystream.broker.errors import ErrorCode
from keystream.broker.groups import GroupState
from tests.unit.test_groups_support import Node, finish, parked

DELAY_MS = 3000
LONG = {"session_ms": 60_000, "rebalance_ms": 60_000}  # no member expires while the clock jumps


class WarpLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `offset` seconds ahead of the real monotonic clock."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


def warped(fn: Callable) -> Callable:
    """Runs an `async def test_...(...)` on a fresh WarpLoop, failing after 30 s of real time."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with asyncio.Runner(loop_factory=WarpLoop) as runner:
            return runner.run(asyncio.wait_for(fn(*args, **kwargs), 30 + 60))  # 60 s of warps at most

    return wrapper


async def advance(ms: float) -> None:
    """Moves the loop clock forward and lets every timer now due run."""
    asyncio.get_running_loop().offset += ms / 1000
    for _ in range(5):
        await asyncio.sleep(0)


async def first_join(node: Node, group: str, client_id: str, **kwargs) -> asyncio.Task:
    """A new dynamic member's KIP-394 join, parked in the group: returns the task of its second JoinGroup."""
    first = await node.join(group, client_id=client_id, **kwargs)
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
    task = asyncio.create_task(node.join(group, first.member_id, client_id=client_id, **kwargs))
    assert await parked(task)
    return task


@warped
async def test_member_inside_the_window_joins_the_first_generation_without_extending_it(tmp_path):
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=DELAY_MS).start()
    a = await first_join(node, "g", "a", **LONG)
    await advance(DELAY_MS - 1000)
    b = await first_join(node, "g", "b", **LONG)
    await advance(900)  # 100 ms before the window ends
    assert await parked(a) and await parked(b)
    assert node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE

    # Kafka's InitialDelayedJoin would now wait another full delay, since b joined inside the first.
    await advance(200)
    ra, rb = await finish(a, 1), await finish(b, 1)
    assert ra.generation_id == rb.generation_id == 1
    assert ra.leader == ra.member_id
    assert sorted(m.member_id for m in ra.members) == sorted([ra.member_id, rb.member_id])
    await node.stop()


@warped
async def test_initial_window_is_bounded_by_the_rebalance_timeout(tmp_path):
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=DELAY_MS).start()
    a = await first_join(node, "g", "a", session_ms=60_000, rebalance_ms=1000)
    await advance(900)
    assert await parked(a)
    await advance(200)
    assert (await finish(a, 1)).generation_id == 1
    await node.stop()


@warped
async def test_member_after_the_window_starts_a_normal_rebalance(tmp_path):
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=DELAY_MS).start()
    a = await first_join(node, "g", "a", **LONG)
    await advance(DELAY_MS + 100)
    ra = await finish(a, 1)
    assert ra.generation_id == 1 and len(ra.members) == 1
    assert (await node.sync("g", 1, ra.member_id, {ra.member_id: b"all"})).error_code == ErrorCode.NONE

    b = await first_join(node, "g", "b", **LONG)
    assert node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE
    assert await node.heartbeat("g", 1, ra.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
    # No initial delay this time: the rebalance completes as soon as every member has rejoined.
    ra2 = await node.join("g", ra.member_id, **LONG)
    rb = await finish(b, 1)
    assert ra2.generation_id == rb.generation_id == 2
    await node.stop()


@warped
async def test_delay_zero_completes_at_once_without_waiting_for_a_pending_member(tmp_path):
    """As in Kafka, the initial join never completes early nor waits: with no delay it ends at once."""
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=0).start()
    a_id = (await node.join("g", client_id="a")).member_id
    b_id = (await node.join("g", client_id="b")).member_id  # MEMBER_ID_REQUIRED: b is pending
    ra = await finish(asyncio.create_task(node.join("g", a_id, client_id="a")), 1)
    assert ra.generation_id == 1 and [m.member_id for m in ra.members] == [a_id]

    # b's rejoin arrives while a's SyncGroup is still to come: a is sent back to JoinGroup at once.
    b = asyncio.create_task(node.join("g", b_id, client_id="b"))
    assert await parked(b)
    assert (await node.sync("g", 1, a_id, {a_id: b"all"})).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    ra2 = await node.join("g", a_id, client_id="a")
    assert ra2.generation_id == (await finish(b, 1)).generation_id == 2
    await node.stop()


@warped
async def test_member_joining_during_completing_rebalance_releases_a_parked_sync(tmp_path):
    """Kafka's resetAndPropagateAssignmentWithError: a follower waiting for the leader rejoins at once."""
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=0).start()
    a = await node.join_new("g", client_id="a")
    b = asyncio.create_task(node.join_new("g", client_id="b"))
    assert await parked(b)
    assert (await node.sync("g", 1, a.member_id)).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    ra = await node.join("g", a.member_id, client_id="a")
    rb = await finish(b, 1)
    assert ra.generation_id == rb.generation_id == 2
    follower = asyncio.create_task(node.sync("g", 2, rb.member_id))  # parked until the leader syncs
    assert await parked(follower)

    c = asyncio.create_task(node.join_new("g", client_id="c"))
    assert (await finish(follower, 1)).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE
    c.cancel()
    await node.stop()
