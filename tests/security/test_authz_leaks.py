"""A client without Describe cannot tell whether a topic or a group exists, from any API or error code.

Attack: probe a name that exists and one that does not, and compare the broker's answers. Every
answer below must be byte-for-byte the same once the probed name (or topic id) is swapped, and must
be the refusal Kafka gives. The broker is a real process; the attacker is the PLAINTEXT listener's
User:ANONYMOUS, with a few ACLs of its own (so the broker takes its ACL-matching path, not only the
"no ACL at all" one) and none on the probed resources, which other users do have ACLs on.
"""

from __future__ import annotations

import uuid

import pytest

from keystream.broker.protocol.messages import RESPONSES
from keystream.broker.protocol.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from keystream.broker.protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from keystream.broker.protocol.messages.delete_groups_request import DeleteGroupsRequest
from keystream.broker.protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from keystream.broker.protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.heartbeat_request import HeartbeatRequest
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    AlterableConfig as IncrementalConfig,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    AlterConfigsResource as IncrementalResource,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    IncrementalAlterConfigsRequest,
)
from keystream.broker.protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from keystream.broker.protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from keystream.broker.protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
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
from keystream.broker.protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from keystream.broker.protocol.messages.response_header import ResponseHeader
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest
from keystream.broker.records import build_batch
from tests.fixtures.wire import WireClient, response_header_version

EXISTS, ABSENT = "exists-1", "absent-1"  # same length, so the answers can be compared byte for byte
GROUP_EXISTS, GROUP_ABSENT = "group-ex", "group-no"
OWN_TOPIC, OWN_GROUP = "mine", "mygroup"
TOPIC_AUTHZ, GROUP_AUTHZ, UNKNOWN_TOPIC_ID = 29, 30, 100
TOPIC_RES, GROUP_RES, LITERAL, ALLOW = 2, 3, 3, 3
READ, DELETE = 3, 6


def _acl(rtype: int, name: str, principal: str, op: int) -> AclCreation:
    return AclCreation(resource_type=rtype, resource_name=name, resource_pattern_type=LITERAL, principal=principal,
                       host="*", operation=op, permission_type=ALLOW)


def _commit(group: str, topic: str, version: int = 8) -> OffsetCommitRequest:
    return OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="",
                               topics=[OffsetCommitRequestTopic(topic, [OffsetCommitRequestPartition(0, 1)])])


@pytest.fixture(scope="module")
def target(module_broker_factory):
    """A broker holding EXISTS and GROUP_EXISTS, restarted so that ANONYMOUS is no longer a super user."""
    broker = module_broker_factory()  # PLAINTEXT clients are super users while we set up
    with WireClient(broker.address) as c:
        for name in (EXISTS, OWN_TOPIC):
            c.create_topic(name, partitions=1)
        c.produce(EXISTS, 0, build_batch([(b"k", b"v", [], 1_700_000_000_000)]))
        for group, topic in ((GROUP_EXISTS, EXISTS), (OWN_GROUP, OWN_TOPIC), (OWN_GROUP, EXISTS)):
            resp = c.request(_commit(group, topic), 8)
            assert resp.topics[0].partitions[0].error_code == 0
        acls = CreateAclsRequest(creations=[
            _acl(TOPIC_RES, OWN_TOPIC, "User:ANONYMOUS", READ),
            _acl(GROUP_RES, OWN_GROUP, "User:ANONYMOUS", READ),
            _acl(GROUP_RES, OWN_GROUP, "User:ANONYMOUS", DELETE),
            _acl(TOPIC_RES, EXISTS, "User:bob", READ),
            _acl(GROUP_RES, GROUP_EXISTS, "User:bob", READ),
        ])
        assert all(r.error_code == 0 for r in c.request(acls, 3).results)
        topic_id = bytes(c.metadata([EXISTS]).topics[0].topic_id)
    broker.stop()
    broker.overrides["super.users"] = "User:admin"
    broker.start()
    broker.topic_id = topic_id
    yield broker
    assert broker.partition_dir(EXISTS, 0).exists(), "an unauthorized request changed the probed topic"


def raw_answer(broker, request, version: int) -> bytes:
    """The response frame (correlation id 1 on a fresh connection, so equal requests give equal frames)."""
    with WireClient(broker.address) as c:
        c.send(request, version)
        return c.read_frame()


def decode(request, version: int, frame: bytes):
    _, pos = ResponseHeader.decode(frame, 0, response_header_version(request.API_KEY, version))
    resp, _ = RESPONSES[request.API_KEY].decode(frame, pos, version)
    return resp


def error_codes(obj) -> set[int]:
    """Every error_code / topic_config_error_code anywhere in a decoded response."""
    found: set[int] = set()
    if isinstance(obj, list):
        for x in obj:
            found |= error_codes(x)
    elif hasattr(obj, "__slots__") and not isinstance(obj, (str, bytes, int, memoryview)):
        for attr in obj.__slots__:
            value = getattr(obj, attr)
            if attr.endswith("error_code"):
                found.add(value)
            else:
                found |= error_codes(value)
    return found


def probe(broker, build, version: int, present, absent, expected: int) -> None:
    """Asks about the existing and the missing resource; the answers must not tell them apart."""
    a = raw_answer(broker, build(present), version)
    b = raw_answer(broker, build(absent), version)
    present_b = present.encode() if isinstance(present, str) else present
    absent_b = absent.encode() if isinstance(absent, str) else absent
    assert b.count(absent_b) == a.count(present_b)
    assert a == b.replace(absent_b, present_b), f"{type(build(present)).__name__} v{version} tells them apart"
    assert expected in error_codes(decode(build(present), version, a))


def produce(name):
    batch = build_batch([(b"k", b"v", [], 1_700_000_000_000)])
    return ProduceRequest(acks=1, timeout_ms=1000, topic_data=[TopicProduceData(name, [PartitionProduceData(0, batch)])])


def fetch(name=None, topic_id=None):
    return FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic=name or "", topic_id=topic_id or bytes(16),
                                                          partitions=[FetchPartition(0, fetch_offset=0,
                                                                                     partition_max_bytes=1 << 16)])])


TOPIC_PROBES = [
    ("metadata v1", lambda n: MetadataRequest(topics=[MetadataRequestTopic(name=n)]), 1, TOPIC_AUTHZ),
    ("metadata v12", lambda n: MetadataRequest(topics=[MetadataRequestTopic(name=n)],
                                               include_topic_authorized_operations=True), 12, TOPIC_AUTHZ),
    ("list offsets v0", lambda n: ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsTopic(n, [ListOffsetsPartition(0, timestamp=-1, max_num_offsets=1)])]), 0, TOPIC_AUTHZ),
    ("list offsets v7", lambda n: ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsTopic(n, [ListOffsetsPartition(0, timestamp=-1)])]), 7, TOPIC_AUTHZ),
    ("offset fetch v7", lambda n: OffsetFetchRequest(group_id=OWN_GROUP, topics=[OffsetFetchRequestTopic(n, [0])]),
     7, TOPIC_AUTHZ),
    ("offset fetch v8", lambda n: OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
        group_id=OWN_GROUP, topics=[OffsetFetchRequestTopics(n, [0])])]), 8, TOPIC_AUTHZ),
    ("describe configs", lambda n: DescribeConfigsRequest(resources=[DescribeConfigsResource(2, n, None)]), 4,
     TOPIC_AUTHZ),
    ("alter configs", lambda n: AlterConfigsRequest(resources=[
        AlterConfigsResource(2, n, [AlterableConfig("retention.ms", "1000")])]), 2, TOPIC_AUTHZ),
    ("incremental alter configs", lambda n: IncrementalAlterConfigsRequest(resources=[
        IncrementalResource(2, n, [IncrementalConfig("retention.ms", 0, "1000")])]), 1, TOPIC_AUTHZ),
    ("delete topics v5", lambda n: DeleteTopicsRequest(topic_names=[n], timeout_ms=1000), 5, TOPIC_AUTHZ),
    ("delete topics v6", lambda n: DeleteTopicsRequest(topics=[DeleteTopicState(name=n)], timeout_ms=1000), 6,
     TOPIC_AUTHZ),
    ("create partitions", lambda n: CreatePartitionsRequest(topics=[CreatePartitionsTopic(n, 3, None)],
                                                            timeout_ms=1000), 3, TOPIC_AUTHZ),
    ("create topics", lambda n: CreateTopicsRequest(topics=[CreatableTopic(n, 1, -1, [], [])], timeout_ms=1000), 7,
     TOPIC_AUTHZ),
    ("produce", produce, 9, TOPIC_AUTHZ),
    ("fetch by name", lambda n: fetch(name=n), 12, TOPIC_AUTHZ),
    ("delete records", lambda n: DeleteRecordsRequest(topics=[DeleteRecordsTopic(n, [DeleteRecordsPartition(0, 1)])],
                                                      timeout_ms=1000), 2, TOPIC_AUTHZ),
    ("offset for leader epoch", lambda n: OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderTopic(n, [OffsetForLeaderPartition(0, current_leader_epoch=-1, leader_epoch=0)])]), 4,
     TOPIC_AUTHZ),
    ("offset commit", lambda n: _commit(OWN_GROUP, n), 8, TOPIC_AUTHZ),
    ("offset delete", lambda n: OffsetDeleteRequest(group_id=OWN_GROUP, topics=[
        OffsetDeleteRequestTopic(n, [OffsetDeleteRequestPartition(0)])]), 0, TOPIC_AUTHZ),
]


@pytest.mark.parametrize("build, version, expected", [p[1:] for p in TOPIC_PROBES], ids=[p[0] for p in TOPIC_PROBES])
def test_topic_existence_does_not_leak_by_name(target, build, version, expected):
    probe(target, build, version, EXISTS, ABSENT, expected)


ID_PROBES = [
    ("metadata", lambda i: MetadataRequest(topics=[MetadataRequestTopic(topic_id=i, name=None)]), 12,
     UNKNOWN_TOPIC_ID),
    ("fetch v13", lambda i: fetch(topic_id=i), 13, UNKNOWN_TOPIC_ID),
    ("fetch v16", lambda i: fetch(topic_id=i), 16, UNKNOWN_TOPIC_ID),
    ("delete topics", lambda i: DeleteTopicsRequest(topics=[DeleteTopicState(name=None, topic_id=i)],
                                                    timeout_ms=1000), 6, UNKNOWN_TOPIC_ID),
]


@pytest.mark.parametrize("build, version, expected", [p[1:] for p in ID_PROBES], ids=[p[0] for p in ID_PROBES])
def test_topic_existence_does_not_leak_by_topic_id(target, build, version, expected):
    probe(target, build, version, target.topic_id, uuid.uuid4().bytes, expected)


def test_listings_leave_out_what_the_caller_may_not_describe(target):
    with WireClient(target.address) as c:
        names = [t.name for t in c.request(MetadataRequest(topics=None), 12).topics]
        assert names == [OWN_TOPIC]
        groups = [g.group_id for g in c.request(ListGroupsRequest(), 4).groups]
        assert groups == [OWN_GROUP]
        offsets = c.request(OffsetFetchRequest(group_id=OWN_GROUP, topics=None), 7)
        assert [t.name for t in offsets.topics] == [OWN_TOPIC]  # the offset on EXISTS is not shown


def join(g):
    return JoinGroupRequest(group_id=g, session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id="",
                            protocol_type="consumer", protocols=[JoinGroupRequestProtocol("range", b"")])


GROUP_PROBES = [
    ("describe groups", lambda g: DescribeGroupsRequest(groups=[g], include_authorized_operations=True), 5,
     GROUP_AUTHZ),
    ("offset fetch v1", lambda g: OffsetFetchRequest(group_id=g, topics=[OffsetFetchRequestTopic(EXISTS, [0])]), 1,
     GROUP_AUTHZ),
    ("offset fetch v7", lambda g: OffsetFetchRequest(group_id=g, topics=None), 7, GROUP_AUTHZ),
    ("offset fetch v8", lambda g: OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=g, topics=None)]), 8,
     GROUP_AUTHZ),
    ("delete groups", lambda g: DeleteGroupsRequest(groups_names=[g]), 2, GROUP_AUTHZ),
    ("find coordinator v3", lambda g: FindCoordinatorRequest(key=g, key_type=0), 3, GROUP_AUTHZ),
    ("find coordinator v4", lambda g: FindCoordinatorRequest(key_type=0, coordinator_keys=[g]), 4, GROUP_AUTHZ),
    ("join group", join, 7, GROUP_AUTHZ),
    ("sync group", lambda g: SyncGroupRequest(group_id=g, generation_id=1, member_id="m", assignments=[]), 5,
     GROUP_AUTHZ),
    ("heartbeat", lambda g: HeartbeatRequest(group_id=g, generation_id=1, member_id="m"), 4, GROUP_AUTHZ),
    ("leave group", lambda g: LeaveGroupRequest(group_id=g, members=[MemberIdentity(member_id="m")]), 4,
     GROUP_AUTHZ),
    ("offset commit", lambda g: _commit(g, EXISTS), 8, GROUP_AUTHZ),
    ("offset delete", lambda g: OffsetDeleteRequest(group_id=g, topics=[
        OffsetDeleteRequestTopic(EXISTS, [OffsetDeleteRequestPartition(0)])]), 0, GROUP_AUTHZ),
]


@pytest.mark.parametrize("build, version, expected", [p[1:] for p in GROUP_PROBES], ids=[p[0] for p in GROUP_PROBES])
def test_group_existence_does_not_leak(target, build, version, expected):
    probe(target, build, version, GROUP_EXISTS, GROUP_ABSENT, expected)
