"""The classic rebalance protocol through the handlers: join, sync, heartbeat, leave, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from keystream.broker.errors import ErrorCode
from keystream.broker.groups import GroupState
from keystream.broker.groups.results import CommitRequestPartition
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from tests.unit.test_groups_support import Node, eventually, finish, parked, run, subscription, timers


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


@pytest.mark.parametrize("version", range(0, 10))
@run
async def test_single_member_join_sync_heartbeat_every_version(node, version):
    await node.start()
    first = await node.join("g", version=version)
    if version >= 4:
        # KIP-394: the broker hands out a member id and asks the client to come back with it.
        assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
        assert first.member_id.startswith("client-")
        joined = await node.join("g", first.member_id, version=version)
    else:
        joined = first
    assert joined.error_code == ErrorCode.NONE
    assert joined.generation_id == 1
    assert joined.leader == joined.member_id
    assert joined.protocol_name == "range"
    assert joined.protocol_type == ("consumer" if version >= 7 else None)
    assert [(m.member_id, m.metadata) for m in joined.members] == [(joined.member_id, b"meta")]
    assert node.groups.groups["g"].state is GroupState.COMPLETING_REBALANCE

    synced = await node.sync("g", 1, joined.member_id, {joined.member_id: b"assignment"},
                             version=min(version, 5))
    assert synced.error_code == ErrorCode.NONE
    assert synced.assignment == b"assignment"
    assert node.groups.groups["g"].state is GroupState.STABLE
    assert await node.heartbeat("g", 1, joined.member_id, version=min(version, 4)) == ErrorCode.NONE
    await node.stop()


@run
async def test_describe_shows_members_with_metadata_and_assignment(node):
    await node.start()
    joined = await node.stable_member("g", assignment=b"xyz", client_id="app-1")
    resp = await node.call(DescribeGroupsRequest(groups=["g", "missing"], include_authorized_operations=True), 5)
    g, missing = resp.groups
    assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (0, "Stable", "consumer", "range")
    [m] = g.members
    assert (m.member_id, m.client_id, m.client_host) == (joined.member_id, "app-1", "/127.0.0.1")
    assert (m.member_metadata, m.member_assignment) == (b"meta", b"xyz")
    assert g.authorized_operations != -2147483648
    assert (missing.error_code, missing.group_state, missing.members) == (0, "Dead", [])
    await node.stop()


@run
async def test_second_member_triggers_rebalance_and_follower_waits_for_leader(node):
    await node.start()
    a = await node.stable_member("g", assignment=b"all")
    b_join = asyncio.create_task(node.join_new("g", client_id="b"))
    await eventually(lambda: node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE, what="rebalance")
    assert await node.heartbeat("g", 1, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
    assert await parked(b_join)

    a2 = await node.join("g", a.member_id)  # the rejoin completes the rebalance
    b2 = await finish(b_join)
    assert a2.generation_id == b2.generation_id == 2
    assert a2.leader == b2.leader == a.member_id
    assert {m.member_id for m in a2.members} == {a.member_id, b2.member_id}
    assert b2.members == []  # only the leader gets the member list

    follower = asyncio.create_task(node.sync("g", 2, b2.member_id))
    assert await parked(follower), "a follower's SyncGroup waits for the leader"
    leader = await node.sync("g", 2, a.member_id, {a.member_id: b"p0", b2.member_id: b"p1"})
    assert leader.assignment == b"p0"
    assert (await finish(follower)).assignment == b"p1"
    assert await node.heartbeat("g", 2, b2.member_id) == ErrorCode.NONE
    await node.stop()


@run
async def test_initial_rebalance_delay_collects_members_into_one_generation(tmp_path):
    node = await Node(tmp_path, group_initial_rebalance_delay_ms=150).start()
    first = asyncio.create_task(node.join("g", version=3, client_id="a"))
    assert await parked(first)
    second = asyncio.create_task(node.join("g", version=3, client_id="b"))
    a, b = await finish(first), await finish(second)
    assert a.generation_id == b.generation_id == 1
    assert len(a.members or b.members) == 2
    await node.stop()


@run
async def test_member_that_does_not_rejoin_is_removed_after_rebalance_timeout(node):
    await node.start()
    a = await node.join_new("g", rebalance_ms=200, client_id="a")
    b_task = asyncio.create_task(node.join_new("g", rebalance_ms=200, client_id="b"))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    a_again = await node.join("g", a.member_id, rebalance_ms=200)
    b = await finish(b_task)
    assert a_again.generation_id == b.generation_id == 2
    await node.sync("g", 2, a.member_id, {a.member_id: b"x", b.member_id: b"y"})
    await node.sync("g", 2, b.member_id)

    # a forces a rebalance (a leader's JoinGroup always does); b never rejoins
    a3 = await finish(asyncio.create_task(node.join("g", a.member_id, rebalance_ms=200)), timeout=3)
    assert a3.generation_id == 3
    assert [m.member_id for m in a3.members] == [a.member_id]
    assert await node.heartbeat("g", 2, b.member_id) == ErrorCode.UNKNOWN_MEMBER_ID
    await node.stop()


@run
async def test_session_expiry_removes_member_and_rebalances_the_rest(node):
    await node.start()
    a = await node.join_new("g", session_ms=5000, client_id="a")
    b_task = asyncio.create_task(node.join_new("g", session_ms=150, client_id="b"))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    await node.join("g", a.member_id, session_ms=5000)
    b = await finish(b_task)
    await node.sync("g", 2, a.member_id, {a.member_id: b"x", b.member_id: b"y"})
    await node.sync("g", 2, b.member_id)

    # b stops heartbeating: after 150 ms the coordinator drops it and a is told to rejoin
    group = node.groups.groups["g"]
    await eventually(lambda: b.member_id not in group.members, what="b's session to expire")
    assert await node.heartbeat("g", 2, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
    a2 = await node.join("g", a.member_id, session_ms=5000)
    assert a2.generation_id == 3 and [m.member_id for m in a2.members] == [a.member_id]
    await node.stop()


@run
async def test_last_member_expiring_leaves_an_empty_group_without_timers(node):
    await node.start()
    a = await node.stable_member("g", session_ms=100)
    group = node.groups.groups["g"]
    await eventually(lambda: group.state is GroupState.EMPTY, what="the group to empty")
    assert group.generation_id == 2 and not group.members
    assert timers(node) == []
    assert await node.heartbeat("g", 1, a.member_id) == ErrorCode.UNKNOWN_MEMBER_ID
    await eventually(lambda: len(node.groups.background) == 0, what="the metadata write")
    await node.stop()


@run
async def test_static_member_rejoin_replaces_member_id_without_rebalance(node):
    await node.start()
    a = await node.stable_member("g", instance="i-1", assignment=b"mine")
    group = node.groups.groups["g"]
    again = await node.join("g", instance="i-1")  # restarted client: no member id, same instance id
    assert again.error_code == ErrorCode.NONE
    assert again.member_id != a.member_id and again.member_id.startswith("i-1-")
    assert again.generation_id == 1
    assert again.leader == a.member_id  # pre-v9: the old leader id, so the client does not re-assign
    assert group.state is GroupState.STABLE
    synced = await node.sync("g", 1, again.member_id, instance="i-1")
    assert synced.assignment == b"mine"
    # the old incarnation is fenced
    assert await node.heartbeat("g", 1, a.member_id, instance="i-1") == ErrorCode.FENCED_INSTANCE_ID
    assert await node.heartbeat("g", 1, again.member_id, instance="i-1") == ErrorCode.NONE
    await node.stop()


@run
async def test_static_leader_rejoin_v9_is_told_to_skip_assignment(node):
    await node.start()
    await node.stable_member("g", instance="i-1", version=9)
    again = await node.join("g", instance="i-1", version=9)
    assert again.skip_assignment is True
    assert again.leader == again.member_id
    assert [m.member_id for m in again.members] == [again.member_id]
    await node.stop()


@run
async def test_static_member_with_changed_protocols_triggers_rebalance(node):
    await node.start()
    a = await node.stable_member("g", instance="i-1")
    # it now prefers another assignor (still supporting the group's current one, or it could not join)
    protocols = [("cooperative-sticky", b"m"), ("range", b"meta")]
    task = asyncio.create_task(node.join("g", instance="i-1", protocols=protocols))
    await eventually(lambda: node.groups.groups["g"].state is not GroupState.STABLE, what="a rebalance")
    joined = await finish(task)
    assert joined.generation_id == 2 and joined.protocol_name == "cooperative-sticky"
    assert joined.member_id != a.member_id
    await node.stop()


@run
async def test_rejoining_static_member_fences_a_parked_join_of_the_old_id(node):
    await node.start()
    a = await node.join_new("g", instance="i-1", client_id="a")
    c_task = asyncio.create_task(node.join_new("g", client_id="c"))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    await node.join("g", a.member_id, instance="i-1")
    c = await finish(c_task)
    await node.sync("g", 2, a.member_id, instance="i-1")
    await node.sync("g", 2, c.member_id)

    b_task = asyncio.create_task(node.join_new("g", client_id="b"))
    await eventually(lambda: node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE, what="rebalance")
    old = asyncio.create_task(node.join("g", a.member_id, instance="i-1"))
    assert await parked(old), "waits for c to rejoin"
    new = asyncio.create_task(node.join("g", instance="i-1"))  # the same instance, restarted
    fenced = await finish(old)
    assert fenced.error_code == ErrorCode.FENCED_INSTANCE_ID
    assert await parked(new)
    await node.join("g", c.member_id)
    joined, b = await finish(new), await finish(b_task)
    assert joined.generation_id == b.generation_id == 3
    assert joined.member_id != a.member_id
    await node.stop()


@pytest.mark.parametrize("version", [0, 1, 2])
@run
async def test_leave_group_single_member_versions(node, version):
    await node.start()
    a = await node.stable_member("g")
    resp = await node.call(LeaveGroupRequest(group_id="g", member_id=a.member_id), version)
    assert resp.error_code == ErrorCode.NONE
    group = node.groups.groups["g"]
    assert group.state is GroupState.EMPTY and not group.members
    resp = await node.call(LeaveGroupRequest(group_id="g", member_id="nobody"), version)
    assert resp.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    await node.stop()


@pytest.mark.parametrize("version", [3, 4, 5])
@run
async def test_leave_group_batch_by_member_id_and_instance_id(node, version):
    await node.start()
    a = await node.join_new("g", instance="i-a", client_id="a")
    b_task = asyncio.create_task(node.join_new("g", client_id="b"))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    await node.join("g", a.member_id, instance="i-a")
    b = await finish(b_task)
    members = [
        MemberIdentity(member_id=b.member_id, reason="shutting down"),
        MemberIdentity(member_id="", group_instance_id="i-a"),  # admin removal by instance id
        MemberIdentity(member_id="ghost"),
        MemberIdentity(member_id="", group_instance_id="i-unknown"),
    ]
    resp = await node.call(LeaveGroupRequest(group_id="g", members=members), version)
    assert resp.error_code == ErrorCode.NONE
    assert [(m.member_id, m.group_instance_id, m.error_code) for m in resp.members] == [
        (b.member_id, None, 0), ("", "i-a", 0), ("ghost", None, ErrorCode.UNKNOWN_MEMBER_ID),
        ("", "i-unknown", ErrorCode.UNKNOWN_MEMBER_ID),
    ]
    assert not node.groups.groups["g"].members
    missing = await node.call(LeaveGroupRequest(group_id="nope", members=[MemberIdentity(member_id="x")]), version)
    assert [m.error_code for m in missing.members] == [ErrorCode.UNKNOWN_MEMBER_ID]
    await node.stop()


@run
async def test_leaving_member_completes_a_pending_rebalance(node):
    await node.start()
    a = await node.join_new("g", client_id="a")
    b_task = asyncio.create_task(node.join_new("g", client_id="b"))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    # a leaves instead of rejoining: b's parked join completes without waiting for the timeout
    await node.call(LeaveGroupRequest(group_id="g", members=[MemberIdentity(member_id=a.member_id)]), 3)
    b = await finish(b_task)
    assert b.error_code == ErrorCode.NONE and b.leader == b.member_id and b.generation_id == 2
    await node.stop()


@run
async def test_protocol_is_chosen_by_vote(node):
    await node.start()
    t1 = asyncio.create_task(node.join_new("g", client_id="a", protocols=[("range", b"1"), ("roundrobin", b"1")]))
    await eventually(lambda: len(node.groups.groups.get("g") and node.groups.groups["g"].members or ()) == 1,
                     what="first member")
    first = await finish(t1)
    t2 = asyncio.create_task(node.join_new("g", client_id="b", protocols=[("roundrobin", b"2"), ("range", b"2")]))
    t3 = asyncio.create_task(node.join_new("g", client_id="c", protocols=[("roundrobin", b"3")]))
    await eventually(lambda: len(node.groups.groups["g"].members) == 3, what="three members")
    t1 = asyncio.create_task(node.join("g", first.member_id, protocols=[("range", b"1"), ("roundrobin", b"1")]))
    results = [await finish(t) for t in (t1, t2, t3)]
    assert {r.protocol_name for r in results} == {"roundrobin"}
    leader = next(r for r in results if r.members)
    assert sorted(m.metadata for m in leader.members) == [b"1", b"2", b"3"]
    await node.stop()


@run
async def test_cancelled_parked_requests_leave_nothing_behind(node):
    await node.start()
    a = await node.join_new("g", client_id="a", rebalance_ms=300, session_ms=200)
    b_task = asyncio.create_task(node.join_new("g", client_id="b", rebalance_ms=300, session_ms=200))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    b_task.cancel()  # b's client disconnects while parked
    a_task = asyncio.create_task(node.join("g", a.member_id, rebalance_ms=300, session_ms=200))
    a2 = await finish(a_task)
    assert a2.generation_id == 2
    a_task = asyncio.create_task(node.sync("g", 2, a.member_id, {a.member_id: b"x"}))
    a_task.cancel()  # the leader disconnects too; nobody heartbeats any more
    group = node.groups.groups["g"]
    await eventually(lambda: group.state is GroupState.EMPTY, timeout=5, what="everyone to expire")
    await eventually(lambda: not timers(node) and not len(node.groups.background), what="timers to go")
    await node.stop()


# ---------------------------------------------------------------- error codes


@run
async def test_join_errors(tmp_path):
    node = await Node(tmp_path, group_min_session_timeout_ms=6000, group_max_session_timeout_ms=30000).start()
    assert (await node.join("g", session_ms=5999)).error_code == ErrorCode.INVALID_SESSION_TIMEOUT
    assert (await node.join("g", session_ms=30001)).error_code == ErrorCode.INVALID_SESSION_TIMEOUT
    assert (await node.join("")).error_code == ErrorCode.INVALID_GROUP_ID
    assert (await node.join("new", "made-up-id")).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await node.join("g", protocols=[])).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert (await node.join("g", protocol_type="")).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL

    a = await node.stable_member("g")
    other_type = await node.join_new("g", protocol_type="connect")
    assert other_type.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    no_common = await node.join_new("g", protocols=[("roundrobin", b"")])
    assert no_common.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert (await node.join("g", a.member_id, protocols=[("x", b"")])).error_code == \
        ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert (await node.join("g", "unknown-member")).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert (await node.join("g", a.member_id, instance="i-x")).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert node.groups.groups["g"].state is GroupState.STABLE
    await node.stop()


@run
async def test_group_max_size(tmp_path):
    node = await Node(tmp_path, group_max_size=1).start()
    a = await node.stable_member("g")
    full = await node.join_new("g", client_id="b")
    assert (full.error_code, full.member_id) == (ErrorCode.GROUP_MAX_SIZE_REACHED, "")
    # an existing member is always let back in
    again = await node.join("g", a.member_id)
    assert again.error_code == ErrorCode.NONE and again.generation_id == 2
    await node.stop()


@run
async def test_sync_and_heartbeat_errors(node):
    await node.start()
    for call in (node.sync("", 1, "m"), node.sync("g", 1, "m")):
        resp = await call
        assert resp.error_code in (ErrorCode.INVALID_GROUP_ID, ErrorCode.UNKNOWN_MEMBER_ID)
    assert (await node.sync("", 1, "m")).error_code == ErrorCode.INVALID_GROUP_ID
    assert await node.heartbeat("", 1, "m") == ErrorCode.INVALID_GROUP_ID
    assert await node.heartbeat("missing", 1, "m") == ErrorCode.UNKNOWN_MEMBER_ID

    joined = await node.join_new("g")
    m = joined.member_id
    assert (await node.sync("g", 7, m)).error_code == ErrorCode.ILLEGAL_GENERATION
    wrong = await node.sync("g", 1, m, version=5, protocol_type="consumer", protocol_name="roundrobin")
    assert wrong.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    wrong = await node.sync("g", 1, m, version=5, protocol_type="connect", protocol_name="range")
    assert wrong.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    ok = await node.sync("g", 1, m, {m: b"a"}, version=5, protocol_type="consumer", protocol_name="range")
    assert (ok.error_code, ok.protocol_type, ok.protocol_name) == (0, "consumer", "range")
    assert await node.heartbeat("g", 7, m) == ErrorCode.ILLEGAL_GENERATION
    assert await node.heartbeat("g", 1, "stranger") == ErrorCode.UNKNOWN_MEMBER_ID

    b_task = asyncio.create_task(node.join_new("g", client_id="b"))
    await eventually(lambda: node.groups.groups["g"].state is GroupState.PREPARING_REBALANCE, what="rebalance")
    assert (await node.sync("g", 1, m)).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    b_task.cancel()
    await node.stop()


@run
async def test_coordinator_not_available_when_stopped(node):
    await node.start()
    joined = await node.stable_member("g")
    parked_join = asyncio.create_task(node.join_new("g", client_id="b"))
    assert await parked(parked_join)
    await node.groups.stop()
    # parked requests are answered so clients look for the coordinator again
    assert (await finish(parked_join)).error_code == ErrorCode.NOT_COORDINATOR
    assert (await node.join("g")).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert await node.heartbeat("g", 1, joined.member_id) == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert (await node.sync("g", 1, joined.member_id)).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    node.logs.close()


@run
async def test_pending_member_expires_after_session_timeout(node):
    await node.start()
    first = await node.join("g", session_ms=100)
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
    group = node.groups.groups["g"]
    assert first.member_id in group.pending_members
    await eventually(lambda: not group.pending_members, what="the pending member to expire")
    # coming back too late is like coming back with an unknown id
    assert (await node.join("g", first.member_id, session_ms=100)).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    await node.stop()


@run
async def test_consumer_subscription_is_parsed_for_offset_delete_checks(node):
    await node.start()
    await node.stable_member("g", protocols=[("range", subscription("t1", "t2"))])
    assert node.groups.groups["g"].subscribed_topics == {"t1", "t2"}
    await node.stop()


@run
async def test_new_leader_is_elected_when_the_leader_does_not_rejoin(node):
    await node.start()
    a = await node.join_new("g", client_id="a", rebalance_ms=200)
    b_task = asyncio.create_task(node.join_new("g", client_id="b", rebalance_ms=200))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    await node.join("g", a.member_id, rebalance_ms=200)
    b = await finish(b_task)
    await node.sync("g", 2, a.member_id, {a.member_id: b"x", b.member_id: b"y"})
    await node.sync("g", 2, b.member_id)
    # b changes its metadata (forcing a rebalance); the leader a never rejoins
    b3 = await finish(asyncio.create_task(node.join("g", b.member_id, rebalance_ms=200,
                                                     protocols=[("range", b"new")])))
    assert (b3.generation_id, b3.leader) == (3, b.member_id)
    assert [(m.member_id, m.metadata) for m in b3.members] == [(b.member_id, b"new")]
    # members the leader leaves out of its assignment get an empty one
    assert (await node.sync("g", 3, b.member_id, {})).assignment == b""
    await node.stop()


@run
async def test_join_v0_uses_the_session_timeout_as_rebalance_timeout(node):
    await node.start()
    joined = await node.join("g", version=0, session_ms=7000, rebalance_ms=60000)
    assert joined.error_code == 0
    member = node.groups.groups["g"].members[joined.member_id]
    assert (member.session_timeout_ms, member.rebalance_timeout_ms) == (7000, 7000)
    await node.stop()


@run
async def test_member_that_never_syncs_is_removed(node):
    await node.start()
    a = await node.join_new("g", client_id="a", rebalance_ms=150)
    b_task = asyncio.create_task(node.join_new("g", client_id="b", rebalance_ms=150))
    await eventually(lambda: len(node.groups.groups["g"].members) == 2, what="second member")
    await node.join("g", a.member_id, rebalance_ms=150)
    b = await finish(b_task)
    # the leader syncs; b got its JoinGroup answer but never sends SyncGroup
    await node.sync("g", 2, a.member_id, {a.member_id: b"x", b.member_id: b"y"})
    group = node.groups.groups["g"]
    await eventually(lambda: b.member_id not in group.members, what="b to be dropped for not syncing")
    assert await node.heartbeat("g", 2, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
    await node.stop()


@run
async def test_requests_while_loading(tmp_path):
    node = await Node(tmp_path).start()
    node.topic("t")
    joined = await node.stable_member("g")
    for i in range(200):
        await node.groups.commit_offsets("simple", -1, "", None, [_partition("t", 0, i)])
    await node.stop()

    slow = Node(tmp_path, offsets_load_buffer_size=64)  # one batch per read: the load yields often
    task = asyncio.create_task(slow.start())
    # checked after every loop turn: the load yields ~200 times, far faster than a timed poll
    await eventually(lambda: slow.groups is not None and slow.groups.started and not slow.groups.active,
                     what="the load to be under way", interval=0)
    assert (await slow.join("g", joined.member_id)).error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert (await slow.sync("g", 1, joined.member_id)).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert await slow.heartbeat("g", 1, joined.member_id) == ErrorCode.NONE
    assert (await slow.call(FindCoordinatorRequest(key="g"), 3)).error_code == ErrorCode.NONE
    assert (await slow.call(ListGroupsRequest(), 3)).error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    await finish(task)
    assert await slow.heartbeat("g", 1, joined.member_id) == ErrorCode.NONE
    await slow.stop()


def _partition(topic, partition, offset):
    return CommitRequestPartition(topic, partition, offset)
