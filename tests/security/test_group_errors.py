"""Group requests from unknown members or with a stale generation get UNKNOWN_MEMBER_ID /
ILLEGAL_GENERATION and change nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.heartbeat_request import HeartbeatRequest
from keystream.broker.protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from keystream.broker.protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from keystream.broker.protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestTopic,
)
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import WireClient, unique_name

ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79

JOIN_V = 5  # aiokafka's version; v4+ asks new members to rejoin with an assigned id
SYNC_V = 3
HEARTBEAT_V = 3
COMMIT_V = 7


def join_request(group: str, member_id: str = "") -> JoinGroupRequest:
    return JoinGroupRequest(
        group_id=group,
        session_timeout_ms=10000,
        rebalance_timeout_ms=10000,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"\x00\x01meta")],
    )


def join_new_member(c: WireClient, group: str) -> str:
    """First JoinGroup of a new member: MEMBER_ID_REQUIRED with the id to rejoin with."""
    resp = c.request(join_request(group), JOIN_V)
    assert resp.error_code == MEMBER_ID_REQUIRED, resp.error_code
    assert resp.member_id
    return resp.member_id


@dataclass
class Member:
    client: WireClient
    member_id: str
    generation: int = -1


@pytest.fixture
def group_of_two(shared_broker):
    """A group that went through two generations: `a` alone (gen N), then `a` and `b` (gen N+1),
    both synced and stable. Yields (group, a, b, old_generation)."""
    group = unique_name("grp")
    with WireClient(shared_broker.address) as ca, WireClient(shared_broker.address) as cb:
        fc = ca.request(FindCoordinatorRequest(key=group, key_type=0), 3)
        assert fc.error_code == 0 and fc.port == shared_broker.port
        a = Member(ca, join_new_member(ca, group))
        r = ca.request(join_request(group, a.member_id), JOIN_V)
        assert r.error_code == 0 and r.leader == a.member_id
        a.generation = r.generation_id
        s = ca.request(
            SyncGroupRequest(
                group_id=group,
                generation_id=a.generation,
                member_id=a.member_id,
                assignments=[SyncGroupRequestAssignment(member_id=a.member_id, assignment=b"all")],
            ),
            SYNC_V,
        )
        assert s.error_code == 0 and bytes(s.assignment) == b"all"
        old_generation = a.generation

        # b joins: the group rebalances; a rejoins when told, both get the new generation.
        b = Member(cb, join_new_member(cb, group))
        cid_b = cb.send(join_request(group, b.member_id), JOIN_V)
        # a learns of the rebalance from its heartbeat (REBALANCE_IN_PROGRESS) once b is waiting.
        wait_for(
            lambda: heartbeat(a, group, a.member_id, a.generation) == REBALANCE_IN_PROGRESS,
            10,
            message="REBALANCE_IN_PROGRESS for the first member after a second one joined",
        )
        ra = ca.request(join_request(group, a.member_id), JOIN_V, timeout=20)
        rb = cb.receive(cid_b, timeout=20)
        assert ra.error_code == 0 and rb.error_code == 0, (ra.error_code, rb.error_code)
        assert ra.generation_id == rb.generation_id > old_generation
        a.generation = b.generation = ra.generation_id
        leader, follower = (a, b) if ra.leader == a.member_id else (b, a)
        cid_f = follower.client.send(
            SyncGroupRequest(group_id=group, generation_id=follower.generation, member_id=follower.member_id, assignments=[]),
            SYNC_V,
        )
        sl = leader.client.request(
            SyncGroupRequest(
                group_id=group,
                generation_id=leader.generation,
                member_id=leader.member_id,
                assignments=[
                    SyncGroupRequestAssignment(member_id=a.member_id, assignment=b"A"),
                    SyncGroupRequestAssignment(member_id=b.member_id, assignment=b"B"),
                ],
            ),
            SYNC_V,
        )
        sf = follower.client.receive(cid_f, timeout=20)
        assert sl.error_code == 0 and sf.error_code == 0
        yield group, a, b, old_generation


def heartbeat(m: Member, group: str, member_id: str, generation: int) -> int:
    return m.client.request(HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id), HEARTBEAT_V).error_code


def commit(m: Member, group: str, member_id: str, generation: int, topic: str = "t", offset: int = 5) -> int:
    resp = m.client.request(
        OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            topics=[OffsetCommitRequestTopic(name=topic, partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=offset)])],
        ),
        COMMIT_V,
    )
    return resp.topics[0].partitions[0].error_code


def test_heartbeat_unknown_member_and_stale_generation(group_of_two):
    group, a, b, old = group_of_two
    assert heartbeat(a, group, a.member_id, a.generation) == 0
    assert heartbeat(a, group, "intruder-1234", a.generation) == UNKNOWN_MEMBER_ID
    assert heartbeat(a, group, "", a.generation) == UNKNOWN_MEMBER_ID
    assert heartbeat(a, group, a.member_id, old) == ILLEGAL_GENERATION
    assert heartbeat(a, group, a.member_id, a.generation + 7) == ILLEGAL_GENERATION
    assert heartbeat(b, group, b.member_id, b.generation) == 0, "the group is undisturbed"


def test_heartbeat_to_a_group_that_does_not_exist(shared_broker):
    with WireClient(shared_broker.address) as c:
        m = Member(c, "ghost")
        assert heartbeat(m, unique_name("nogroup"), "ghost", 1) == UNKNOWN_MEMBER_ID


def test_sync_group_unknown_member_and_stale_generation(group_of_two):
    group, a, b, old = group_of_two

    def sync(member_id: str, generation: int) -> int:
        return a.client.request(
            SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id, assignments=[]), SYNC_V
        ).error_code

    assert sync("intruder", a.generation) == UNKNOWN_MEMBER_ID
    assert sync(a.member_id, old) == ILLEGAL_GENERATION
    assert heartbeat(b, group, b.member_id, b.generation) == 0


def test_offset_commit_unknown_member_and_stale_generation(group_of_two):
    group, a, b, old = group_of_two
    topic = unique_name("commit-topic")
    a.client.create_topic(topic, 1)
    assert commit(a, group, "intruder", a.generation, topic) == UNKNOWN_MEMBER_ID
    assert commit(a, group, a.member_id, old, topic) == ILLEGAL_GENERATION
    # Nothing was committed by the refused requests.
    resp = a.client.request(
        OffsetFetchRequest(group_id=group, topics=[OffsetFetchRequestTopic(name=topic, partition_indexes=[0])]), 7
    )
    assert resp.topics[0].partitions[0].committed_offset == -1
    assert commit(a, group, a.member_id, a.generation, topic, 3) == 0


def test_join_with_unknown_member_id(group_of_two):
    group, a, b, _ = group_of_two
    resp = a.client.request(join_request(group, "intruder-member"), JOIN_V)
    assert resp.error_code == UNKNOWN_MEMBER_ID
    assert heartbeat(b, group, b.member_id, b.generation) == 0, "an unknown joiner does not rebalance the group"


@pytest.mark.parametrize("version", [0, 3, 5])
def test_leave_group_unknown_member(group_of_two, version):
    group, a, b, _ = group_of_two
    if version < 3:
        resp = a.client.request(LeaveGroupRequest(group_id=group, member_id="intruder"), version)
        assert resp.error_code == UNKNOWN_MEMBER_ID
    else:
        resp = a.client.request(
            LeaveGroupRequest(group_id=group, members=[MemberIdentity(member_id="intruder", group_instance_id=None)]), version
        )
        assert resp.error_code == 0
        assert [m.error_code for m in resp.members] == [UNKNOWN_MEMBER_ID]
    assert heartbeat(a, group, a.member_id, a.generation) == 0
    assert heartbeat(b, group, b.member_id, b.generation) == 0
