"""Offsets through the handlers: commit, fetch, delete, expiry and durability in __consumer_offsets."""

from __future__ import annotations

import asyncio

import pytest

from keystream.broker import records
from keystream.broker.errors import ErrorCode
from keystream.broker.groups import GroupState, formats
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from keystream.broker.protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from keystream.broker.protocol.messages.offset_delete_request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from keystream.broker.protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)
from tests.unit.test_groups_support import Node, eventually, run, subscription

MINUTE = 60_000


def commit_request(group, offsets: dict, *, generation=-1, member="", instance=None, metadata="md", retention=-1):
    """offsets: {(topic, partition): offset}."""
    by_topic: dict[str, list] = {}
    for (t, p), o in offsets.items():
        by_topic.setdefault(t, []).append(OffsetCommitRequestPartition(
            partition_index=p, committed_offset=o, committed_leader_epoch=3, committed_metadata=metadata))
    return OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=generation, member_id=member,
                               group_instance_id=instance, retention_time_ms=retention,
                               topics=[OffsetCommitRequestTopic(t, ps) for t, ps in by_topic.items()])


def commit_errors(resp) -> dict:
    return {(t.name, p.partition_index): p.error_code for t in resp.topics for p in t.partitions}


async def commit(node, group, offsets, version=8, **kwargs) -> dict:
    return commit_errors(await node.call(commit_request(group, offsets, **kwargs), version))


async def fetch(node, group, topics=None, version=8, require_stable=False) -> tuple[int, dict]:
    """(group error, {(topic, partition): (offset, metadata, error)}) for any version."""
    if version >= 8:
        wanted = None if topics is None else [OffsetFetchRequestTopics(t, ps) for t, ps in topics.items()]
        req = OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=wanted)],
                                 require_stable=require_stable)
        [g] = (await node.call(req, version)).groups
        error, topic_list = g.error_code, g.topics
    else:
        wanted = None if topics is None else [OffsetFetchRequestTopic(t, ps) for t, ps in topics.items()]
        resp = await node.call(OffsetFetchRequest(group_id=group, topics=wanted, require_stable=require_stable),
                               version)
        error, topic_list = (resp.error_code if version >= 2 else 0), resp.topics
    return error, {(t.name, p.partition_index): (p.committed_offset, p.metadata, p.error_code)
                   for t in topic_list for p in t.partitions}


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


@pytest.mark.parametrize("version", range(0, 10))
@run
async def test_standalone_commit_and_fetch_every_version(node, version):
    await node.start()
    node.topic("t", 3)
    errors = await commit(node, "simple", {("t", 0): 10, ("t", 2): 12}, version=version)
    assert errors == {("t", 0): 0, ("t", 2): 0}
    for fetch_version in range(0, 10):
        error, got = await fetch(node, "simple", {"t": [0, 1, 2]}, version=fetch_version)
        assert error == 0
        assert got == {("t", 0): (10, "md", 0), ("t", 1): (-1, "", 0), ("t", 2): (12, "md", 0)}
    error, everything = await fetch(node, "simple", None, version=8)
    assert set(everything) == {("t", 0), ("t", 2)}
    group = node.groups.groups["simple"]
    assert group.state is GroupState.EMPTY and group.protocol_type is None
    await node.stop()


@run
async def test_fetch_for_unknown_group_and_all_topics(node):
    await node.start()
    node.topic("a", 2)
    node.topic("b")
    assert await fetch(node, "nobody", {"a": [0]}) == (0, {("a", 0): (-1, "", 0)})
    assert await fetch(node, "nobody", None) == (0, {})
    await commit(node, "g", {("a", 1): 5, ("b", 0): 7})
    for version in (2, 7, 8, 9):
        assert await fetch(node, "g", None, version=version) == (0, {("a", 1): (5, "md", 0), ("b", 0): (7, "md", 0)})
    await node.stop()


@run
async def test_fetch_v8_batches_groups(node):
    await node.start()
    node.topic("t")
    await commit(node, "g1", {("t", 0): 1})
    await commit(node, "g2", {("t", 0): 2})
    req = OffsetFetchRequest(groups=[
        OffsetFetchRequestGroup(group_id="g1", topics=[OffsetFetchRequestTopics("t", [0])]),
        OffsetFetchRequestGroup(group_id="g2", topics=None),
        OffsetFetchRequestGroup(group_id="g3", topics=[OffsetFetchRequestTopics("t", [0])]),
    ], require_stable=True)
    resp = await node.call(req, 8)
    got = {g.group_id: [(t.name, p.partition_index, p.committed_offset) for t in g.topics for p in t.partitions]
           for g in resp.groups}
    assert got == {"g1": [("t", 0, 1)], "g2": [("t", 0, 2)], "g3": [("t", 0, -1)]}
    await node.stop()


@run
async def test_member_commits_are_checked_against_generation_and_membership(node):
    await node.start()
    node.topic("t")
    joined = await node.stable_member("g")
    m = joined.member_id
    assert await commit(node, "g", {("t", 0): 5}, generation=1, member=m) == {("t", 0): 0}
    assert await commit(node, "g", {("t", 0): 6}, generation=2, member=m) == {("t", 0): ErrorCode.ILLEGAL_GENERATION}
    assert await commit(node, "g", {("t", 0): 6}, generation=1, member="x") == {("t", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    # a non-member cannot commit while the group has members
    assert await commit(node, "g", {("t", 0): 6}) == {("t", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    assert await commit(node, "g", {("t", 0): 6}, version=0) == {("t", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    assert (await fetch(node, "g", {"t": [0]}))[1][("t", 0)][0] == 5
    # a commit for a group that does not exist with a real generation
    assert await commit(node, "ghost", {("t", 0): 1}, generation=3, member="m", version=8) == \
        {("t", 0): ErrorCode.ILLEGAL_GENERATION}
    assert await commit(node, "ghost", {("t", 0): 1}, generation=3, member="m", version=9) == \
        {("t", 0): ErrorCode.GROUP_ID_NOT_FOUND}
    assert "ghost" not in node.groups.groups
    await node.stop()


@run
async def test_commit_during_completing_rebalance_and_static_fencing(node):
    await node.start()
    node.topic("t")
    joined = await node.join_new("g", instance="i-1")
    m = joined.member_id
    assert await commit(node, "g", {("t", 0): 1}, generation=1, member=m, instance="i-1") == \
        {("t", 0): ErrorCode.REBALANCE_IN_PROGRESS}
    await node.sync("g", 1, m, {m: b""}, instance="i-1")
    assert await commit(node, "g", {("t", 0): 1}, generation=1, member="old", instance="i-1", version=7) == \
        {("t", 0): ErrorCode.FENCED_INSTANCE_ID}
    assert await commit(node, "g", {("t", 0): 1}, generation=1, member=m, instance="i-1", version=7) == \
        {("t", 0): 0}
    await node.stop()


@run
async def test_metadata_too_large_and_unknown_partitions(tmp_path):
    node = await Node(tmp_path, offset_metadata_max_bytes=8).start()
    node.topic("t", 2)
    resp = await node.call(OffsetCommitRequest(group_id="g", topics=[
        OffsetCommitRequestTopic("t", [
            OffsetCommitRequestPartition(partition_index=0, committed_offset=1, committed_metadata="12345678"),
            OffsetCommitRequestPartition(partition_index=1, committed_offset=1, committed_metadata="123456789"),
            OffsetCommitRequestPartition(partition_index=2, committed_offset=1, committed_metadata=None),
        ]),
        OffsetCommitRequestTopic("nope", [OffsetCommitRequestPartition(partition_index=0, committed_offset=1)]),
    ]), 8)
    assert commit_errors(resp) == {
        ("t", 0): 0, ("t", 1): ErrorCode.OFFSET_METADATA_TOO_LARGE,
        ("t", 2): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ("nope", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert await commit(node, "g", {("t", 1): 4}, metadata=None) == {("t", 1): 0}
    assert (await fetch(node, "g", {"t": [1]}))[1] == {("t", 1): (4, "", 0)}  # null metadata reads as ""
    await node.stop()


@run
async def test_offsets_and_groups_survive_a_restart(node):
    await node.start()
    node.topic("t", 2)
    joined = await node.stable_member("g", instance="i-1", assignment=b"asg",
                                      protocols=[("range", subscription("t"))])
    await commit(node, "g", {("t", 0): 100, ("t", 1): 200}, generation=1, member=joined.member_id, instance="i-1")
    await commit(node, "simple", {("t", 0): 7})
    await commit(node, "simple", {("t", 0): 8})  # the later commit wins on replay too
    await commit(node, "gone", {("t", 0): 1})
    await node.call(OffsetDeleteRequest(group_id="gone", topics=[
        OffsetDeleteRequestTopic("t", [OffsetDeleteRequestPartition(0)])]), 0)
    await node.restart()

    assert (await fetch(node, "g", None))[1] == {("t", 0): (100, "md", 0), ("t", 1): (200, "md", 0)}
    assert (await fetch(node, "simple", {"t": [0]}))[1] == {("t", 0): (8, "md", 0)}
    assert "gone" not in node.groups.groups
    group = node.groups.groups["g"]
    assert group.state is GroupState.STABLE and group.generation_id == 1
    assert group.subscribed_topics == {"t"}
    # the member is still known: it can heartbeat and fetch its assignment without rejoining
    assert await node.heartbeat("g", 1, joined.member_id, instance="i-1") == ErrorCode.NONE
    synced = await node.sync("g", 1, joined.member_id, instance="i-1")
    assert synced.assignment == b"asg"
    await node.stop()


@run
async def test_loaded_members_expire_if_they_do_not_come_back(node):
    await node.start()
    await node.stable_member("g", session_ms=150)
    await node.restart()
    group = node.groups.groups["g"]
    assert group.state is GroupState.STABLE
    await eventually(lambda: group.state is GroupState.EMPTY, what="the loaded member to expire")
    await node.stop()


@run
async def test_records_use_kafkas_formats_and_partitioning(node):
    await node.start()
    node.topic("t")
    joined = await node.stable_member("grp", assignment=b"asg")
    await commit(node, "grp", {("t", 0): 42}, generation=1, member=joined.member_id, version=6)
    partition = formats.partition_for("grp", 4)
    assert node.groups.partition_for("grp") == partition
    plog = node.logs.partition("__consumer_offsets", partition)
    found = {}
    for chunk in plog.read(0, 1 << 20).chunks:
        view, pos = memoryview(chunk), 0
        while pos < len(view):
            size = records.parse_header(view, pos).size
            for rec in records.iter_records(view[pos:pos + size]):
                kind, group, topic, part = formats.parse_key(rec.key)
                found[(kind, topic, part)] = rec.value
            pos += size
    offset = formats.parse_offset_value(found[("offset", "t", 0)])
    assert (offset.offset, offset.leader_epoch, offset.metadata) == (42, 3, "md")
    assert found[("offset", "t", 0)][:2] == b"\x00\x03"  # OffsetCommitValue v3, as Kafka writes
    meta = formats.parse_group_value(found[("group", None, None)])
    assert (meta.protocol_type, meta.generation, meta.protocol, meta.leader) == ("consumer", 1, "range",
                                                                                  joined.member_id)
    assert [(m.member_id, m.subscription, m.assignment) for m in meta.members] == [(joined.member_id, b"meta", b"asg")]
    topic = node.logs.topics["__consumer_offsets"]
    assert topic.is_internal and topic.config.compact and len(topic.partitions) == 4
    await node.stop()


def test_partitioning_matches_javas_string_hash_code():
    assert formats.java_string_hash("hello") == 99162322
    assert formats.java_string_hash("polygenelubricants") == -(2**31)  # abs() overflows in Java
    assert formats.partition_for("polygenelubricants", 50) == 0
    assert formats.java_string_hash("grüße-😀") == _java_hash("grüße-😀")
    assert formats.partition_for("hello", 50) == 99162322 % 50


def _java_hash(s: str) -> int:
    h = 0
    for unit in [int.from_bytes(s.encode("utf-16-be")[i:i + 2], "big") for i in range(0, len(s.encode("utf-16-be")), 2)]:
        h = (31 * h + unit) % 2**32
    return h - 2**32 if h >= 2**31 else h


@run
async def test_commit_waits_for_flush_when_the_log_policy_asks(tmp_path):
    node = await Node(tmp_path, broker_config={"log.flush.interval.messages": 1}).start()
    node.topic("t")
    await commit(node, "g", {("t", 0): 1})
    plog = node.logs.partition("__consumer_offsets", node.groups.partition_for("g"))
    assert plog.unflushed_messages == 0 and plog.recovery_point == plog.log_end_offset
    await node.stop()


@run
async def test_offset_delete(node):
    await node.start()
    node.topic("sub", 2)
    node.topic("other")
    joined = await node.stable_member("g", protocols=[("range", subscription("sub"))])
    m = joined.member_id
    await commit(node, "g", {("sub", 0): 1, ("sub", 1): 1, ("other", 0): 1}, generation=1, member=m)
    req = OffsetDeleteRequest(group_id="g", topics=[
        OffsetDeleteRequestTopic("sub", [OffsetDeleteRequestPartition(0)]),
        OffsetDeleteRequestTopic("other", [OffsetDeleteRequestPartition(0)]),
        OffsetDeleteRequestTopic("nope", [OffsetDeleteRequestPartition(0)]),
    ])
    resp = await node.call(req, 0)
    assert resp.error_code == 0
    assert {(t.name, p.partition_index): p.error_code for t in resp.topics for p in t.partitions} == {
        ("sub", 0): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ("other", 0): 0,
        ("nope", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert set((await fetch(node, "g", None))[1]) == {("sub", 0), ("sub", 1)}

    missing = await node.call(OffsetDeleteRequest(group_id="missing", topics=req.topics), 0)
    assert (missing.error_code, missing.topics) == (ErrorCode.GROUP_ID_NOT_FOUND, [])
    assert (await node.call(OffsetDeleteRequest(group_id="", topics=[]), 0)).error_code == ErrorCode.INVALID_GROUP_ID

    # a non-consumer group with members: Kafka cannot tell what it uses
    await node.stable_member("connect-g", protocol_type="connect")
    other = await node.call(OffsetDeleteRequest(group_id="connect-g", topics=req.topics), 0)
    assert other.error_code == ErrorCode.NON_EMPTY_GROUP

    # once empty, everything can go, and the group with it
    await node.call(_leave("g", m), 3)
    resp = await node.call(OffsetDeleteRequest(group_id="g", topics=[
        OffsetDeleteRequestTopic("sub", [OffsetDeleteRequestPartition(0), OffsetDeleteRequestPartition(1)])]), 0)
    assert [p.error_code for t in resp.topics for p in t.partitions] == [0, 0]
    assert "g" not in node.groups.groups
    await node.stop()


def _leave(group, member_id):
    return LeaveGroupRequest(group_id=group, members=[MemberIdentity(member_id=member_id)])


@run
async def test_offsets_expire_for_empty_groups_after_retention(node):
    await node.start()
    node.topic("t")
    await commit(node, "simple", {("t", 0): 1})
    joined = await node.stable_member("g")
    await commit(node, "g", {("t", 0): 2}, generation=1, member=joined.member_id)
    committed = node.groups.groups["simple"].offsets[("t", 0)].value.commit_timestamp
    retention = node.groups.config.offsets_retention_ms
    assert await node.groups.expire_offsets(committed + retention - 1) == 0
    # the consumer group's offsets are kept while it has members (its subscription is not parsable)
    assert await node.groups.expire_offsets(node.groups.clock() + retention + 1) == 1
    assert "simple" not in node.groups.groups and "g" in node.groups.groups

    await node.call(_leave("g", joined.member_id), 3)
    group = node.groups.groups["g"]
    emptied = group.state_timestamp
    assert await node.groups.expire_offsets(emptied + retention - 1) == 0
    assert await node.groups.expire_offsets(emptied + retention) == 1
    assert "g" not in node.groups.groups
    await node.restart()
    assert not node.groups.groups, "tombstones keep expired offsets and groups deleted"
    await node.stop()


@run
async def test_stable_consumer_group_keeps_offsets_of_subscribed_topics_only(node):
    await node.start()
    node.topic("sub")
    node.topic("old")
    joined = await node.stable_member("g", protocols=[("range", subscription("sub"))])
    await commit(node, "g", {("sub", 0): 1, ("old", 0): 1}, generation=1, member=joined.member_id)
    later = node.groups.clock() + node.groups.config.offsets_retention_ms + 1
    assert await node.groups.expire_offsets(later) == 1
    assert set(node.groups.groups["g"].offsets) == {("sub", 0)}
    await node.stop()


@run
async def test_explicit_retention_time_from_old_clients(node):
    await node.start()
    node.topic("t")
    await commit(node, "g", {("t", 0): 1}, version=2, retention=MINUTE)
    now = node.groups.clock()
    assert await node.groups.expire_offsets(now + MINUTE - 1000) == 0
    assert await node.groups.expire_offsets(now + MINUTE + 1000) == 1
    await node.stop()


@run
async def test_require_stable_reports_commits_still_being_written(node):
    await node.start()
    node.topic("t")
    await commit(node, "g", {("t", 0): 1})
    group = node.groups.groups["g"]
    group.pending_offset_commits[("t", 0)] += 1  # as while an append is being flushed
    assert (await fetch(node, "g", {"t": [0]}, version=7, require_stable=True))[1] == \
        {("t", 0): (-1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT)}
    assert (await fetch(node, "g", {"t": [0]}, version=7))[1] == {("t", 0): (1, "md", 0)}
    group.pending_offset_commits.clear()
    await node.stop()


@run
async def test_concurrent_commits_settle_in_log_order(node):
    await node.start()
    node.topic("t")
    results = await asyncio.gather(*(commit(node, "g", {("t", 0): i}) for i in range(20)))
    assert all(r == {("t", 0): 0} for r in results)
    assert (await fetch(node, "g", {"t": [0]}))[1][("t", 0)][0] == 19
    await node.restart()
    assert (await fetch(node, "g", {"t": [0]}))[1][("t", 0)][0] == 19
    await node.stop()


@pytest.mark.parametrize("version", [0, 1, 2, 7])
@run
async def test_fetch_when_coordinator_unavailable(node, version):
    await node.start()
    node.topic("t")
    await node.groups.stop()
    error, got = await fetch(node, "g", {"t": [0]}, version=version)
    if version >= 2:
        assert (error, got) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, {})
    else:
        assert got == {("t", 0): (-1, "", ErrorCode.COORDINATOR_NOT_AVAILABLE)}
    assert await commit(node, "g", {("t", 0): 1}) == {("t", 0): ErrorCode.COORDINATOR_NOT_AVAILABLE}
    node.logs.close()
