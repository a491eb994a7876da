"""FindCoordinator, ListGroups, DescribeGroups and DeleteGroups through the handlers."""

from __future__ import annotations

import asyncio

import pytest

from keystream.broker.errors import ErrorCode
from keystream.broker.protocol.messages.delete_groups_request import DeleteGroupsRequest
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from keystream.broker.protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from tests.unit.test_groups_support import Node, eventually, finish, run


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


@pytest.mark.parametrize("version", range(0, 4))
@run
async def test_find_coordinator_single_key(node, version):
    await node.start()
    resp = await node.call(FindCoordinatorRequest(key="g", key_type=0), version)
    assert (resp.error_code, resp.node_id, resp.host, resp.port) == (0, 1, "broker.test", 9092)
    if version >= 1:
        txn = await node.call(FindCoordinatorRequest(key="tx", key_type=1), version)
        assert (txn.error_code, txn.node_id, txn.host, txn.port) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1, "", -1)
        assert "not supported" in txn.error_message
    await node.stop()


@pytest.mark.parametrize("version", range(4, 7))
@run
async def test_find_coordinator_batched_keys(node, version):
    await node.start()
    resp = await node.call(FindCoordinatorRequest(key_type=0, coordinator_keys=["a", "b"]), version)
    assert [(c.key, c.error_code, c.node_id, c.host, c.port, c.error_message) for c in resp.coordinators] == [
        ("a", 0, 1, "broker.test", 9092, None), ("b", 0, 1, "broker.test", 9092, None)]
    txn = await node.call(FindCoordinatorRequest(key_type=1, coordinator_keys=["t1"]), version)
    [c] = txn.coordinators
    assert (c.key, c.error_code, c.node_id) == ("t1", ErrorCode.COORDINATOR_NOT_AVAILABLE, -1)
    assert "not supported" in c.error_message
    await node.stop()


@run
async def test_find_coordinator_before_start(node):
    await node.start()
    await node.groups.stop()
    resp = await node.call(FindCoordinatorRequest(key="g"), 3)
    assert resp.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    node.logs.close()


async def _groups_in_every_state(node):
    """'stable' (consumer), 'empty' (left), 'simple' (offsets only), 'preparing' (rebalancing)."""
    node.topic("t")
    await node.stable_member("stable")
    left = await node.stable_member("empty")
    await node.call(LeaveGroupRequest(group_id="empty", member_id=left.member_id), 1)
    await node.call(OffsetCommitRequest(group_id="simple", topics=[
        OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(partition_index=0, committed_offset=1)])]), 2)
    await node.stable_member("preparing", protocol_type="connect", protocols=[("v1", b"")])
    task = asyncio.create_task(node.join_new("preparing", protocol_type="connect", protocols=[("v1", b"")]))
    await eventually(lambda: node.groups.groups["preparing"].state.value == "PreparingRebalance", what="rebalance")
    return task


@pytest.mark.parametrize("version", range(0, 6))
@run
async def test_list_groups(node, version):
    await node.start()
    task = await _groups_in_every_state(node)
    resp = await node.call(ListGroupsRequest(), version)
    assert resp.error_code == 0
    listed = {g.group_id: g for g in resp.groups}
    assert set(listed) == {"stable", "empty", "simple", "preparing"}
    assert (listed["stable"].protocol_type, listed["simple"].protocol_type) == ("consumer", "")
    assert listed["preparing"].protocol_type == "connect"
    if version >= 4:
        assert {k: g.group_state for k, g in listed.items()} == {
            "stable": "Stable", "empty": "Empty", "simple": "Empty", "preparing": "PreparingRebalance"}
        resp = await node.call(ListGroupsRequest(states_filter=["Empty", "stable"]), version)
        assert {g.group_id for g in resp.groups} == {"stable", "empty", "simple"}
    if version >= 5:
        assert {g.group_type for g in listed.values()} == {"classic"}
        resp = await node.call(ListGroupsRequest(types_filter=["consumer"]), version)
        assert resp.groups == []
        resp = await node.call(ListGroupsRequest(types_filter=["Classic"], states_filter=["Stable"]), version)
        assert [g.group_id for g in resp.groups] == ["stable"]
    task.cancel()
    await node.stop()


@pytest.mark.parametrize("version", range(0, 6))
@run
async def test_describe_groups_states(node, version):
    await node.start()
    task = await _groups_in_every_state(node)
    resp = await node.call(DescribeGroupsRequest(groups=["stable", "empty", "preparing", "nope"]), version)
    by_id = {g.group_id: g for g in resp.groups}
    stable, empty, preparing, nope = (by_id[k] for k in ("stable", "empty", "preparing", "nope"))
    assert (stable.group_state, stable.protocol_data, len(stable.members)) == ("Stable", "range", 1)
    assert stable.members[0].member_assignment == b"A"
    assert (empty.group_state, empty.protocol_type, empty.protocol_data, empty.members) == ("Empty", "consumer", "", [])
    # outside Stable, Kafka gives no protocol, metadata or assignment
    assert (preparing.group_state, preparing.protocol_data) == ("PreparingRebalance", "")
    assert all(m.member_metadata == b"" and m.member_assignment == b"" for m in preparing.members)
    assert (nope.error_code, nope.group_state) == (0, "Dead")
    if version >= 3:
        assert all(g.authorized_operations == -2147483648 for g in resp.groups)
    task.cancel()
    await node.stop()


@pytest.mark.parametrize("version", range(0, 3))
@run
async def test_delete_groups(node, version):
    await node.start()
    task = await _groups_in_every_state(node)
    resp = await node.call(DeleteGroupsRequest(groups_names=["stable", "empty", "simple", "nope", "empty"]),
                           version)
    assert {r.group_id: r.error_code for r in resp.results} == {
        "stable": ErrorCode.NON_EMPTY_GROUP, "empty": 0, "simple": 0, "nope": ErrorCode.GROUP_ID_NOT_FOUND}
    assert len(resp.results) == 4
    assert "empty" not in node.groups.groups and "simple" not in node.groups.groups
    task.cancel()
    await node.restart()
    assert set(node.groups.groups) == {"stable", "preparing"}, "tombstones keep deleted groups away"
    await node.stop()


@run
async def test_deleted_group_can_be_recreated(node):
    await node.start()
    left = await node.stable_member("g")
    await node.call(LeaveGroupRequest(group_id="g", member_id=left.member_id), 1)
    resp = await node.call(DeleteGroupsRequest(groups_names=["g"]), 2)
    assert resp.results[0].error_code == 0
    joined = await finish(asyncio.create_task(node.join_new("g")))
    assert joined.error_code == 0 and joined.generation_id == 1
    await node.stop()
