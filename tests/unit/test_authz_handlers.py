"""Every handler asks the authorizer what Apache Kafka's broker asks, and answers refusals with Kafka's codes.

Handlers run in-process over a started Broker in a temporary directory, every request and response
through the wire codecs at the version under test. `User:admin` is the only super user; alice, bob
and carol get exactly the ACLs a test grants through the broker's Authorizer.
"""

from __future__ import annotations

import asyncio

import pytest

from keystream.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from keystream.auth.principal import Principal, Session
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode as E
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import ZERO_UUID, Writer
from keystream.broker.protocol.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
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
from keystream.broker.protocol.messages.describe_cluster_request import DescribeClusterRequest
from keystream.broker.protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
    ReplicaState,
)
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
from keystream.broker.protocol.messages.init_producer_id_request import InitProducerIdRequest
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
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest
from keystream.broker.records import build_batch
from keystream.config import load_config

Op, R = Operation, ResourceType
TOPIC_CFG, BROKER_CFG = 2, 4
NOT_REQUESTED = -2147483648


def session(name: str, host: str = "127.0.0.1") -> Session:
    return Session(Principal("User", name), host)


ADMIN, ALICE, BOB = session("admin"), session("alice"), session("bob")


def bits(*ops: Operation) -> int:
    return sum(1 << op for op in ops)


def _wire(msg, version: int) -> memoryview:
    w = Writer()
    msg.encode(w, version)
    return memoryview(b"".join(bytes(part) for part in w.getbuffers()))


class Node:
    """A started Broker plus the calls tests make on it."""

    def __init__(self, broker: Broker):
        self.broker = broker

    async def raw(self, who: Session, req, version: int) -> bytes:
        """The encoded response body, for byte-for-byte comparisons."""
        handler = HANDLERS[type(req).API_KEY]
        assert handler.supports(version), f"{type(req).__name__} v{version}"
        decoded, _ = type(req).decode(_wire(req, version), 0, version)
        resp = await handler.fn(RequestContext(self.broker, version, 7, "test", who), decoded)
        return bytes(_wire(resp, version))

    async def call(self, who: Session, req, version: int):
        raw = await self.raw(who, req, version)
        handler = HANDLERS[type(req).API_KEY]
        decoded, end = handler.response_cls.decode(memoryview(raw), 0, version)
        assert end == len(raw)
        return decoded

    def acl(self, principal: str, op: Operation, rtype: ResourceType, name: str, *,
            pattern: PatternType = PatternType.LITERAL, permission: Permission = Permission.ALLOW,
            host: str = "*") -> None:
        errors = self.broker.authorizer.create([AclBinding(rtype, name, pattern, principal, host, op, permission)])
        assert errors == [None], errors

    def topic(self, name: str, partitions: int = 1):
        return self.broker.logs.topic(name) or self.broker.logs.create_topic(name, partitions, {})


def scenario(**props):
    """Runs `async def test(node)` against a fresh started broker; `props` are broker overrides."""

    def decorate(fn):
        def test(tmp_path):
            async def main():
                config = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
                          "super.users": "User:admin", "group.initial.rebalance.delay.ms": 0,
                          "offsets.topic.num.partitions": 1, **props}
                broker = Broker(load_config(None, overrides=config, environ={}))
                await broker.start()
                try:
                    await fn(Node(broker))
                finally:
                    await broker.stop()

            asyncio.run(asyncio.wait_for(main(), 30))

        test.__name__ = fn.__name__
        test.__doc__ = fn.__doc__
        return test

    return decorate


def produce_req(topic: str, transactional_id: str | None = None, **batch) -> ProduceRequest:
    data = build_batch([(b"k", b"v", [], 1_700_000_000_000)], **batch)
    return ProduceRequest(transactional_id=transactional_id, acks=1, timeout_ms=1000,
                          topic_data=[TopicProduceData(topic, [PartitionProduceData(0, data)])])


def fetch_req(topic: str = "", topic_id: bytes = ZERO_UUID, replica_id: int = -1) -> FetchRequest:
    return FetchRequest(replica_id=replica_id, replica_state=ReplicaState(replica_id=replica_id), max_wait_ms=0,
                        topics=[FetchTopic(topic=topic, topic_id=topic_id,
                                           partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 20)])])


def fetch_codes(resp) -> list[int]:
    return [p.error_code for t in resp.responses for p in t.partitions]


# ---------------------------------------------------------------------------- Metadata

@scenario()
async def test_metadata_all_topics_leaves_out_topics_without_describe(node):
    for name in ("mine", "other", "theirs"):
        node.topic(name)
    node.acl("User:alice", Op.READ, R.TOPIC, "mine")  # Read implies Describe
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "oth", pattern=PatternType.PREFIXED)
    for version in (1, 9, 12):
        resp = await node.call(ALICE, MetadataRequest(topics=None), version)
        assert sorted(t.name for t in resp.topics) == ["mine", "other"]
        assert all(t.error_code == 0 for t in resp.topics)
    nobody = await node.call(BOB, MetadataRequest(topics=None), 12)
    assert nobody.topics == [] and len(nobody.brokers) == 1
    admin = await node.call(ADMIN, MetadataRequest(topics=None), 12)
    assert {"mine", "other", "theirs"} <= {t.name for t in admin.topics}


@scenario()
async def test_metadata_named_topics_without_describe_fail_whether_or_not_they_exist(node):
    node.topic("secret")
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "open", pattern=PatternType.PREFIXED)
    node.topic("open")
    resp = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name=n) for n in
                                                          ("secret", "missing", "open", "open-missing")]), 12)
    codes = {t.name: t.error_code for t in resp.topics}
    assert codes == {"secret": E.TOPIC_AUTHORIZATION_FAILED, "missing": E.TOPIC_AUTHORIZATION_FAILED,
                     "open": 0, "open-missing": E.UNKNOWN_TOPIC_OR_PARTITION}
    refused = [t for t in resp.topics if t.error_code]
    assert all(t.topic_id == ZERO_UUID and t.partitions == [] for t in refused)


@scenario()
async def test_metadata_by_topic_id_without_describe_answers_unknown_topic_id(node):
    topic = node.topic("secret")
    resp = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(topic_id=topic.topic_id, name=None)]),
                           12)
    assert [(t.error_code, t.name, t.partitions) for t in resp.topics] == [(E.UNKNOWN_TOPIC_ID, None, [])]
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "secret")
    resp = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(topic_id=topic.topic_id, name=None)]),
                           12)
    assert [(t.error_code, t.name) for t in resp.topics] == [(0, "secret")]


@scenario()
async def test_metadata_authorized_operations_are_the_real_bitfields(node):
    node.topic("t")
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    node.acl("User:alice", Op.DESCRIBE_CONFIGS, R.TOPIC, "t")
    req = MetadataRequest(topics=[MetadataRequestTopic(name="t")], include_topic_authorized_operations=True,
                          include_cluster_authorized_operations=True)
    resp = await node.call(ALICE, req, 10)
    assert resp.topics[0].topic_authorized_operations == bits(Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)
    assert resp.cluster_authorized_operations == 0  # no Describe on the cluster: Kafka answers 0
    node.acl("User:alice", Op.DESCRIBE, R.CLUSTER, "kafka-cluster")
    node.acl("User:alice", Op.IDEMPOTENT_WRITE, R.CLUSTER, "kafka-cluster")
    resp = await node.call(ALICE, req, 10)
    assert resp.cluster_authorized_operations == bits(Op.DESCRIBE, Op.IDEMPOTENT_WRITE)
    admin = await node.call(ADMIN, req, 12)
    assert admin.topics[0].topic_authorized_operations == bits(
        Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS)
    assert admin.cluster_authorized_operations == NOT_REQUESTED  # v11+ moved it to DescribeCluster
    plain = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name="t")]), 10)
    assert plain.topics[0].topic_authorized_operations == NOT_REQUESTED
    assert plain.cluster_authorized_operations == NOT_REQUESTED


@scenario(**{"auto.create.topics.enable": True})
async def test_metadata_auto_creation_needs_create(node):
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "*")
    resp = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name="auto1")]), 12)
    assert resp.topics[0].error_code == E.TOPIC_AUTHORIZATION_FAILED
    assert node.broker.logs.topic("auto1") is None
    node.acl("User:alice", Op.CREATE, R.TOPIC, "auto1")
    resp = await node.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name="auto1")]), 12)
    assert resp.topics[0].error_code == 0 and node.broker.logs.topic("auto1") is not None
    node.acl("User:bob", Op.DESCRIBE, R.TOPIC, "*")
    node.acl("User:bob", Op.CREATE, R.CLUSTER, "kafka-cluster")
    resp = await node.call(BOB, MetadataRequest(topics=[MetadataRequestTopic(name="auto2")]), 12)
    assert resp.topics[0].error_code == 0
    # Create without Describe: Kafka refuses before it thinks about creating.
    node.acl("User:carol", Op.CREATE, R.TOPIC, "*")
    resp = await node.call(session("carol"), MetadataRequest(topics=[MetadataRequestTopic(name="auto3")]), 12)
    assert resp.topics[0].error_code == E.TOPIC_AUTHORIZATION_FAILED


# ---------------------------------------------------------------------------- Produce / Fetch

@scenario()
async def test_produce_needs_write_on_the_topic(node):
    node.topic("t")
    for name in ("t", "missing"):
        resp = await node.call(ALICE, produce_req(name), 9)
        part = resp.responses[0].partition_responses[0]
        assert (part.error_code, part.base_offset) == (E.TOPIC_AUTHORIZATION_FAILED, -1)
    assert node.broker.logs.topic("t").partitions[0].log_end_offset == 0
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    resp = await node.call(ALICE, produce_req("t"), 9)
    assert resp.responses[0].partition_responses[0].error_code == E.TOPIC_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.WRITE, R.TOPIC, "t")
    resp = await node.call(ALICE, produce_req("t"), 9)
    assert resp.responses[0].partition_responses[0].error_code == 0
    # Write on an unknown topic: now the caller may learn it does not exist.
    node.acl("User:alice", Op.WRITE, R.TOPIC, "missing")
    resp = await node.call(ALICE, produce_req("missing"), 9)
    assert resp.responses[0].partition_responses[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION


@scenario()
async def test_idempotent_produce_needs_only_write_on_the_topic(node):
    node.topic("t")
    node.acl("User:alice", Op.WRITE, R.TOPIC, "t")
    resp = await node.call(ALICE, produce_req("t", producer_id=7, producer_epoch=0, base_sequence=0), 9)
    assert resp.responses[0].partition_responses[0].error_code == 0


@scenario()
async def test_transactional_produce_needs_write_on_the_transactional_id(node):
    node.topic("t")
    node.acl("User:alice", Op.WRITE, R.TOPIC, "t")
    req = produce_req("t", "tx-1", producer_id=7, producer_epoch=0, base_sequence=0, is_transactional=True)
    resp = await node.call(ALICE, req, 9)
    assert resp.responses[0].partition_responses[0].error_code == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    no_id = produce_req("t", None, producer_id=7, producer_epoch=0, base_sequence=0, is_transactional=True)
    resp = await node.call(ADMIN, no_id, 9)  # transactional batches without an id: even a super user
    assert resp.responses[0].partition_responses[0].error_code == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.WRITE, R.TRANSACTIONAL_ID, "tx-1")
    resp = await node.call(ALICE, req, 9)  # authorized; then refused as unsupported, as before
    assert resp.responses[0].partition_responses[0].error_code == E.INVALID_RECORD


@scenario()
async def test_fetch_needs_read_on_the_topic(node):
    node.topic("t")
    await node.call(ADMIN, produce_req("t"), 9)
    for name in ("t", "missing"):
        assert fetch_codes(await node.call(ALICE, fetch_req(name), 12)) == [E.TOPIC_AUTHORIZATION_FAILED]
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    assert fetch_codes(await node.call(ALICE, fetch_req("t"), 12)) == [E.TOPIC_AUTHORIZATION_FAILED]
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    resp = await node.call(ALICE, fetch_req("t"), 12)
    assert fetch_codes(resp) == [0] and bytes(resp.responses[0].partitions[0].records)


@scenario()
async def test_fetch_by_topic_id_hides_topics_the_caller_may_not_describe(node):
    topic = node.topic("t")
    assert fetch_codes(await node.call(ALICE, fetch_req(topic_id=topic.topic_id), 13)) == [E.UNKNOWN_TOPIC_ID]
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    assert fetch_codes(await node.call(ALICE, fetch_req(topic_id=topic.topic_id), 13)) == [
        E.TOPIC_AUTHORIZATION_FAILED]
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    assert fetch_codes(await node.call(ALICE, fetch_req(topic_id=topic.topic_id), 16)) == [0]


@scenario()
async def test_follower_fetch_needs_cluster_action(node):
    node.topic("t")
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    for version in (12, 15):
        resp = await node.call(ALICE, fetch_req("t", node.topic("t").topic_id, replica_id=2), version)
        assert fetch_codes(resp) == [E.TOPIC_AUTHORIZATION_FAILED]
    node.acl("User:bob", Op.CLUSTER_ACTION, R.CLUSTER, "kafka-cluster")
    assert fetch_codes(await node.call(BOB, fetch_req("t", replica_id=2), 12)) == [0]


# ---------------------------------------------------------------------------- ListOffsets / epochs / DeleteRecords

def list_offsets_req(name: str) -> ListOffsetsRequest:
    return ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(name, [ListOffsetsPartition(0, timestamp=-1)])])


@scenario()
async def test_list_offsets_needs_describe(node):
    node.topic("t")
    for version in (0, 1, 7):
        for name in ("t", "missing"):
            resp = await node.call(ALICE, list_offsets_req(name), version)
            part = resp.topics[0].partitions[0]
            assert (part.error_code, part.offset) == (E.TOPIC_AUTHORIZATION_FAILED, -1), (version, name)
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    for version in (0, 1, 7):
        assert (await node.call(ALICE, list_offsets_req("t"), version)).topics[0].partitions[0].error_code == 0


@scenario()
async def test_offset_for_leader_epoch_needs_describe_or_cluster_action(node):
    node.topic("t")
    req = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderTopic("t", [OffsetForLeaderPartition(0, current_leader_epoch=-1, leader_epoch=0)])])
    assert (await node.call(ALICE, req, 4)).topics[0].partitions[0].error_code == E.TOPIC_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    assert (await node.call(ALICE, req, 4)).topics[0].partitions[0].error_code == 0
    node.acl("User:bob", Op.CLUSTER_ACTION, R.CLUSTER, "kafka-cluster")
    assert (await node.call(BOB, req, 4)).topics[0].partitions[0].error_code == 0


@scenario()
async def test_delete_records_needs_delete(node):
    node.topic("t")
    await node.call(ADMIN, produce_req("t"), 9)
    req = DeleteRecordsRequest(topics=[DeleteRecordsTopic("t", [DeleteRecordsPartition(0, 1)])], timeout_ms=1000)
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    part = (await node.call(ALICE, req, 2)).topics[0].partitions[0]
    assert (part.error_code, part.low_watermark) == (E.TOPIC_AUTHORIZATION_FAILED, -1)
    node.acl("User:alice", Op.DELETE, R.TOPIC, "t")
    part = (await node.call(ALICE, req, 2)).topics[0].partitions[0]
    assert (part.error_code, part.low_watermark) == (0, 1)


# ---------------------------------------------------------------------------- topics

def create_req(*names: str) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=[CreatableTopic(n, 1, -1, [], []) for n in names], timeout_ms=1000)


@scenario()
async def test_create_topics_needs_create_on_cluster_or_topic(node):
    node.topic("exists")
    resp = await node.call(ALICE, create_req("new", "exists"), 7)
    assert [(t.name, t.error_code, t.error_message) for t in resp.topics] == [
        ("new", E.TOPIC_AUTHORIZATION_FAILED, "Authorization failed."),
        ("exists", E.TOPIC_AUTHORIZATION_FAILED, "Authorization failed."),  # not TOPIC_ALREADY_EXISTS
    ]
    assert node.broker.logs.topic("new") is None
    node.acl("User:alice", Op.CREATE, R.TOPIC, "app.", pattern=PatternType.PREFIXED)
    resp = await node.call(ALICE, create_req("app.orders", "other"), 7)
    assert [(t.name, t.error_code) for t in resp.topics] == [("app.orders", 0), ("other", E.TOPIC_AUTHORIZATION_FAILED)]
    created = resp.topics[0]
    # Created, but alice may not describe its configs: Kafka's config error instead of the configs.
    assert (created.topic_config_error_code, created.configs, created.num_partitions) == (
        E.TOPIC_AUTHORIZATION_FAILED, [], -1)
    node.acl("User:bob", Op.CREATE, R.CLUSTER, "kafka-cluster")
    node.acl("User:bob", Op.DESCRIBE_CONFIGS, R.TOPIC, "*")
    resp = await node.call(BOB, create_req("bobs"), 7)
    t = resp.topics[0]
    assert (t.error_code, t.topic_config_error_code, t.num_partitions) == (0, 0, 1) and t.configs


@scenario()
async def test_delete_topics_by_name_needs_delete(node):
    node.topic("t")
    node.topic("u")
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "u")
    resp = await node.call(ALICE, DeleteTopicsRequest(topic_names=["t", "missing", "u"], timeout_ms=1000), 5)
    assert {(r.name, r.error_code, r.error_message) for r in resp.responses} == {
        ("t", E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
        ("missing", E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
        ("u", E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
    }
    assert node.broker.logs.topic("t") is not None
    node.acl("User:alice", Op.DELETE, R.TOPIC, "t")
    resp = await node.call(ALICE, DeleteTopicsRequest(topic_names=["t"], timeout_ms=1000), 5)
    assert [(r.name, r.error_code) for r in resp.responses] == [("t", 0)]
    assert node.broker.logs.topic("t") is None
    node.acl("User:bob", Op.DELETE, R.CLUSTER, "kafka-cluster")
    resp = await node.call(BOB, DeleteTopicsRequest(topic_names=["u"], timeout_ms=1000), 5)
    assert [(r.name, r.error_code) for r in resp.responses] == [("u", 0)]


@scenario()
async def test_delete_topics_by_id(node):
    t = node.topic("t")
    req = DeleteTopicsRequest(topics=[DeleteTopicState(name=None, topic_id=t.topic_id)], timeout_ms=1000)
    r = (await node.call(ALICE, req, 6)).responses[0]
    assert (r.name, r.topic_id, r.error_code) == (None, t.topic_id, E.UNKNOWN_TOPIC_ID)
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    r = (await node.call(ALICE, req, 6)).responses[0]
    assert (r.name, r.error_code, r.error_message) == ("t", E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed.")
    node.acl("User:alice", Op.DELETE, R.TOPIC, "t")
    r = (await node.call(ALICE, req, 6)).responses[0]
    assert (r.name, r.error_code) == ("t", 0)


@scenario()
async def test_create_partitions_needs_alter(node):
    node.topic("t")
    req = CreatePartitionsRequest(topics=[CreatePartitionsTopic("t", 2, None)], timeout_ms=1000)
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    r = (await node.call(ALICE, req, 3)).results[0]
    assert (r.error_code, r.error_message) == (E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed.")
    assert len(node.broker.logs.topic("t").partitions) == 1
    node.acl("User:alice", Op.ALTER, R.TOPIC, "t")
    assert (await node.call(ALICE, req, 3)).results[0].error_code == 0
    assert len(node.broker.logs.topic("t").partitions) == 2


# ---------------------------------------------------------------------------- configs

def describe_configs_req(rtype: int, name: str) -> DescribeConfigsRequest:
    return DescribeConfigsRequest(resources=[DescribeConfigsResource(rtype, name, None)])


@scenario()
async def test_describe_configs_needs_describe_configs(node):
    node.topic("t")
    node.acl("User:alice", Op.READ, R.TOPIC, "t")  # Read does not imply DescribeConfigs
    r = (await node.call(ALICE, describe_configs_req(TOPIC_CFG, "t"), 4)).results[0]
    assert (r.error_code, r.error_message, r.configs) == (E.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed.",
                                                          [])
    r = (await node.call(ALICE, describe_configs_req(BROKER_CFG, "1"), 4)).results[0]
    assert (r.error_code, r.error_message) == (E.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    node.acl("User:alice", Op.ALTER_CONFIGS, R.TOPIC, "t")  # AlterConfigs implies DescribeConfigs
    node.acl("User:alice", Op.DESCRIBE_CONFIGS, R.CLUSTER, "kafka-cluster")
    r = (await node.call(ALICE, describe_configs_req(TOPIC_CFG, "t"), 4)).results[0]
    assert r.error_code == 0 and r.configs
    r = (await node.call(ALICE, describe_configs_req(BROKER_CFG, "1"), 4)).results[0]
    assert r.error_code == 0 and r.configs


@scenario()
async def test_alter_configs_need_alter_configs(node):
    node.topic("t")
    legacy = AlterConfigsRequest(resources=[AlterConfigsResource(TOPIC_CFG, "t", [AlterableConfig("retention.ms", "1000")])])
    incremental = IncrementalAlterConfigsRequest(resources=[
        IncrementalResource(TOPIC_CFG, "t", [IncrementalConfig("retention.ms", 0, "2000")])])
    broker_res = IncrementalAlterConfigsRequest(resources=[
        IncrementalResource(BROKER_CFG, "1", [IncrementalConfig("log.retention.ms", 0, "2000")])])
    node.acl("User:alice", Op.DESCRIBE_CONFIGS, R.TOPIC, "t")
    assert (await node.call(ALICE, legacy, 2)).responses[0].error_code == E.TOPIC_AUTHORIZATION_FAILED
    assert (await node.call(ALICE, incremental, 1)).responses[0].error_code == E.TOPIC_AUTHORIZATION_FAILED
    r = (await node.call(ALICE, broker_res, 1)).responses[0]
    assert (r.error_code, r.error_message) == (E.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    assert "retention.ms" not in node.broker.logs.topic("t").overrides
    node.acl("User:alice", Op.ALTER_CONFIGS, R.TOPIC, "t")
    assert (await node.call(ALICE, legacy, 2)).responses[0].error_code == 0
    assert (await node.call(ALICE, incremental, 1)).responses[0].error_code == 0
    assert node.broker.logs.topic("t").overrides["retention.ms"] == "2000"
    node.acl("User:alice", Op.ALTER_CONFIGS, R.CLUSTER, "kafka-cluster")
    # Authorized now, and refused for what it is: a static broker config.
    assert (await node.call(ALICE, broker_res, 1)).responses[0].error_code == E.INVALID_REQUEST


@scenario()
async def test_alter_configs_preprocessing_comes_before_authorization(node):
    dup = IncrementalAlterConfigsRequest(resources=[IncrementalResource(TOPIC_CFG, "t", [
        IncrementalConfig("retention.ms", 0, "1"), IncrementalConfig("retention.ms", 0, "2")])])
    r = (await node.call(ALICE, dup, 1)).responses[0]
    assert (r.error_code, r.error_message) == (E.INVALID_REQUEST, "Error due to duplicate config keys")


# ---------------------------------------------------------------------------- cluster / producer ids

@scenario()
async def test_describe_cluster_answers_anyone_with_their_real_bitfield(node):
    req = DescribeClusterRequest(include_cluster_authorized_operations=True)
    r = await node.call(ALICE, req, 1)
    assert (r.error_code, r.cluster_authorized_operations, len(r.brokers)) == (0, 0, 1)
    node.acl("User:alice", Op.DESCRIBE, R.CLUSTER, "kafka-cluster")
    node.acl("User:alice", Op.CREATE, R.CLUSTER, "kafka-cluster")
    assert (await node.call(ALICE, req, 1)).cluster_authorized_operations == bits(Op.DESCRIBE, Op.CREATE)
    assert (await node.call(ALICE, DescribeClusterRequest(), 1)).cluster_authorized_operations == NOT_REQUESTED
    admin = (await node.call(ADMIN, req, 0)).cluster_authorized_operations
    assert admin == bits(Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE,
                         Op.ALTER, Op.DESCRIBE)


@scenario()
async def test_init_producer_id_idempotent_needs_idempotent_write_or_write_on_some_topic(node):
    req = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000)
    assert (await node.call(ALICE, req, 4)).error_code == E.CLUSTER_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.READ, R.TOPIC, "*")
    assert (await node.call(ALICE, req, 4)).error_code == E.CLUSTER_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.WRITE, R.TOPIC, "app.", pattern=PatternType.PREFIXED)
    r = await node.call(ALICE, req, 4)
    assert (r.error_code, r.producer_epoch) == (0, 0) and r.producer_id >= 0
    node.acl("User:bob", Op.IDEMPOTENT_WRITE, R.CLUSTER, "kafka-cluster")
    assert (await node.call(BOB, req, 0)).error_code == 0


@scenario()
async def test_init_producer_id_transactional_needs_write_on_the_id(node):
    req = InitProducerIdRequest(transactional_id="tx-1", transaction_timeout_ms=60000)
    node.acl("User:alice", Op.WRITE, R.TOPIC, "*")
    node.acl("User:alice", Op.DESCRIBE, R.TRANSACTIONAL_ID, "tx-1")
    assert (await node.call(ALICE, req, 4)).error_code == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    node.acl("User:alice", Op.WRITE, R.TRANSACTIONAL_ID, "tx-1")
    # Authorized; transactions themselves are not available yet.
    assert (await node.call(ALICE, req, 4)).error_code == E.COORDINATOR_NOT_AVAILABLE


# ---------------------------------------------------------------------------- groups

@scenario()
async def test_find_coordinator_needs_describe_on_the_group_or_transactional_id(node):
    r = await node.call(ALICE, FindCoordinatorRequest(key="g", key_type=0), 3)
    assert (r.error_code, r.error_message, r.node_id, r.host, r.port) == (
        E.GROUP_AUTHORIZATION_FAILED, "Group authorization failed.", -1, "", -1)
    r = await node.call(ALICE, FindCoordinatorRequest(key_type=0, coordinator_keys=["g", "h"]), 4)
    assert [(c.key, c.error_code) for c in r.coordinators] == [
        ("g", E.GROUP_AUTHORIZATION_FAILED), ("h", E.GROUP_AUTHORIZATION_FAILED)]
    node.acl("User:alice", Op.READ, R.GROUP, "g")
    r = await node.call(ALICE, FindCoordinatorRequest(key_type=0, coordinator_keys=["g", "h"]), 4)
    assert [(c.key, c.error_code) for c in r.coordinators] == [("g", 0), ("h", E.GROUP_AUTHORIZATION_FAILED)]
    r = await node.call(ALICE, FindCoordinatorRequest(key="tx", key_type=1), 3)
    assert (r.error_code, r.error_message) == (E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                               "Transactional Id authorization failed.")
    node.acl("User:alice", Op.DESCRIBE, R.TRANSACTIONAL_ID, "tx")
    assert (await node.call(ALICE, FindCoordinatorRequest(key="tx", key_type=1), 3)).error_code == \
        E.COORDINATOR_NOT_AVAILABLE


def join_req(group: str, member_id: str = "") -> JoinGroupRequest:
    return JoinGroupRequest(group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id=member_id,
                            protocol_type="consumer", protocols=[JoinGroupRequestProtocol("range", b"m")])


@scenario()
async def test_membership_apis_need_read_on_the_group(node):
    node.acl("User:alice", Op.DESCRIBE, R.GROUP, "g")
    for version in (5, 7):
        r = await node.call(ALICE, join_req("g"), version)
        assert (r.error_code, r.generation_id, r.member_id, r.leader, r.members) == (
            E.GROUP_AUTHORIZATION_FAILED, -1, "", "", [])
        assert r.protocol_name == (None if version >= 7 else "")
    sync = SyncGroupRequest(group_id="g", generation_id=1, member_id="m", assignments=[])
    assert (await node.call(ALICE, sync, 3)).error_code == E.GROUP_AUTHORIZATION_FAILED
    hb = HeartbeatRequest(group_id="g", generation_id=1, member_id="m")
    assert (await node.call(ALICE, hb, 3)).error_code == E.GROUP_AUTHORIZATION_FAILED
    leave = LeaveGroupRequest(group_id="g", member_id="m", members=[MemberIdentity(member_id="m")])
    assert (await node.call(ALICE, leave, 1)).error_code == E.GROUP_AUTHORIZATION_FAILED
    r = await node.call(ALICE, leave, 3)
    assert (r.error_code, r.members) == (E.GROUP_AUTHORIZATION_FAILED, [])
    node.acl("User:alice", Op.READ, R.GROUP, "g")
    first = await node.call(ALICE, join_req("g"), 5)
    assert first.error_code == E.MEMBER_ID_REQUIRED
    joined = await node.call(ALICE, join_req("g", first.member_id), 5)
    assert joined.error_code == 0
    sync = SyncGroupRequest(group_id="g", generation_id=joined.generation_id, member_id=joined.member_id,
                            assignments=[])
    assert (await node.call(ALICE, sync, 3)).error_code == 0
    hb = HeartbeatRequest(group_id="g", generation_id=joined.generation_id, member_id=joined.member_id)
    assert (await node.call(ALICE, hb, 3)).error_code == 0
    leave = LeaveGroupRequest(group_id="g", members=[MemberIdentity(member_id=joined.member_id)])
    assert (await node.call(ALICE, leave, 3)).error_code == 0


def commit_req(group: str, *topics: str) -> OffsetCommitRequest:
    return OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="", topics=[
        OffsetCommitRequestTopic(t, [OffsetCommitRequestPartition(0, 5)]) for t in topics])


def commit_codes(resp) -> dict[str, int]:
    return {t.name: t.partitions[0].error_code for t in resp.topics}


@scenario()
async def test_offset_commit_needs_read_on_group_then_topic(node):
    node.topic("t")
    node.topic("u")
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    resp = await node.call(ALICE, commit_req("g", "t", "u"), 8)
    assert commit_codes(resp) == {"t": E.GROUP_AUTHORIZATION_FAILED, "u": E.GROUP_AUTHORIZATION_FAILED}
    node.acl("User:alice", Op.READ, R.GROUP, "g")
    resp = await node.call(ALICE, commit_req("g", "t", "u", "missing"), 8)
    assert commit_codes(resp) == {"t": 0, "u": E.TOPIC_AUTHORIZATION_FAILED, "missing": E.TOPIC_AUTHORIZATION_FAILED}


def fetch_group(group: str, *topics: str, v8: bool = False):
    if v8:
        return OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=None if topics == ("*",) else [
            OffsetFetchRequestTopics(t, [0]) for t in topics])])
    return OffsetFetchRequest(group_id=group, topics=None if topics == ("*",) else [
        OffsetFetchRequestTopic(t, [0]) for t in topics])


@scenario()
async def test_offset_fetch_needs_describe_on_group_and_filters_topics(node):
    node.topic("t")
    node.topic("u")
    await node.call(ADMIN, commit_req("g", "t", "u"), 8)
    r = await node.call(ALICE, fetch_group("g", "t"), 7)
    assert (r.error_code, r.topics) == (E.GROUP_AUTHORIZATION_FAILED, [])
    r = await node.call(ALICE, fetch_group("g", "t"), 1)  # no group error field: on every partition
    assert [p.error_code for t in r.topics for p in t.partitions] == [E.GROUP_AUTHORIZATION_FAILED]
    r = await node.call(ALICE, fetch_group("g", "t", v8=True), 8)
    assert (r.groups[0].error_code, r.groups[0].topics) == (E.GROUP_AUTHORIZATION_FAILED, [])
    node.acl("User:alice", Op.DESCRIBE, R.GROUP, "g")
    node.acl("User:alice", Op.DESCRIBE, R.TOPIC, "t")
    r = await node.call(ALICE, fetch_group("g", "t", "u", "missing"), 7)
    got = {t.name: (t.partitions[0].error_code, t.partitions[0].committed_offset) for t in r.topics}
    assert got == {"t": (0, 5), "u": (E.TOPIC_AUTHORIZATION_FAILED, -1), "missing": (E.TOPIC_AUTHORIZATION_FAILED, -1)}
    r = await node.call(ALICE, fetch_group("g", "*"), 7)
    assert [t.name for t in r.topics] == ["t"]  # all topics: the ones alice may not describe are left out
    r = await node.call(ALICE, fetch_group("g", "*", v8=True), 8)
    assert [t.name for t in r.groups[0].topics] == ["t"]
    admin = await node.call(ADMIN, fetch_group("g", "*"), 7)
    assert sorted(t.name for t in admin.topics) == ["t", "u"]


@scenario()
async def test_offset_delete_needs_delete_on_group_and_read_on_topic(node):
    node.topic("t")
    node.topic("u")
    await node.call(ADMIN, commit_req("g", "t", "u"), 8)
    req = OffsetDeleteRequest(group_id="g", topics=[OffsetDeleteRequestTopic(n, [OffsetDeleteRequestPartition(0)])
                                                    for n in ("t", "u")])
    node.acl("User:alice", Op.READ, R.GROUP, "g")
    node.acl("User:alice", Op.READ, R.TOPIC, "t")
    r = await node.call(ALICE, req, 0)
    assert (r.error_code, r.topics) == (E.GROUP_AUTHORIZATION_FAILED, [])
    node.acl("User:alice", Op.DELETE, R.GROUP, "g")
    r = await node.call(ALICE, req, 0)
    assert r.error_code == 0
    assert {t.name: t.partitions[0].error_code for t in r.topics} == {"t": 0, "u": E.TOPIC_AUTHORIZATION_FAILED}


@scenario()
async def test_describe_groups_needs_describe_and_reports_the_real_bitfield(node):
    node.topic("t")
    await node.call(ADMIN, commit_req("g", "t"), 8)
    req = DescribeGroupsRequest(groups=["g", "h"], include_authorized_operations=True)
    r = await node.call(ALICE, req, 5)
    assert [(g.group_id, g.error_code, g.authorized_operations) for g in r.groups] == [
        ("g", E.GROUP_AUTHORIZATION_FAILED, NOT_REQUESTED), ("h", E.GROUP_AUTHORIZATION_FAILED, NOT_REQUESTED)]
    node.acl("User:alice", Op.READ, R.GROUP, "g")
    r = await node.call(ALICE, req, 5)
    g = r.groups[0]
    assert (g.error_code, g.group_state, g.authorized_operations) == (0, "Empty", bits(Op.READ, Op.DESCRIBE))
    assert r.groups[1].error_code == E.GROUP_AUTHORIZATION_FAILED


@scenario()
async def test_list_groups_lists_all_with_cluster_describe_else_the_describable(node):
    node.topic("t")
    for group in ("app.a", "app.b", "other"):
        await node.call(ADMIN, commit_req(group, "t"), 8)
    assert (await node.call(ALICE, ListGroupsRequest(), 4)).groups == []
    node.acl("User:alice", Op.DESCRIBE, R.GROUP, "app.", pattern=PatternType.PREFIXED)
    r = await node.call(ALICE, ListGroupsRequest(), 4)
    assert (r.error_code, sorted(g.group_id for g in r.groups)) == (0, ["app.a", "app.b"])
    node.acl("User:bob", Op.DESCRIBE, R.CLUSTER, "kafka-cluster")
    r = await node.call(BOB, ListGroupsRequest(), 4)
    assert sorted(g.group_id for g in r.groups) == ["app.a", "app.b", "other"]


@scenario()
async def test_delete_groups_needs_delete(node):
    node.topic("t")
    await node.call(ADMIN, commit_req("g", "t"), 8)
    node.acl("User:alice", Op.READ, R.GROUP, "*")
    r = await node.call(ALICE, DeleteGroupsRequest(groups_names=["g", "missing", "g"]), 2)
    assert [(x.group_id, x.error_code) for x in r.results] == [
        ("g", E.GROUP_AUTHORIZATION_FAILED), ("missing", E.GROUP_AUTHORIZATION_FAILED)]
    node.acl("User:alice", Op.DELETE, R.GROUP, "*")
    r = await node.call(ALICE, DeleteGroupsRequest(groups_names=["g", "missing"]), 2)
    assert [(x.group_id, x.error_code) for x in r.results] == [("g", 0), ("missing", E.GROUP_ID_NOT_FOUND)]


# ---------------------------------------------------------------------------- hosts, deny, super users

@scenario()
async def test_acls_apply_per_host_and_deny_wins(node):
    node.topic("t")
    node.acl("User:alice", Op.READ, R.TOPIC, "t", host="10.0.0.1")
    far = session("alice", "10.0.0.2")
    near = session("alice", "10.0.0.1")
    assert fetch_codes(await node.call(far, fetch_req("t"), 12)) == [E.TOPIC_AUTHORIZATION_FAILED]
    assert fetch_codes(await node.call(near, fetch_req("t"), 12)) == [0]
    node.acl("User:*", Op.READ, R.TOPIC, "t", permission=Permission.DENY)
    assert fetch_codes(await node.call(near, fetch_req("t"), 12)) == [E.TOPIC_AUTHORIZATION_FAILED]
    assert fetch_codes(await node.call(ADMIN, fetch_req("t"), 12)) == [0]  # super users skip ACLs


@pytest.mark.parametrize("api", sorted(HANDLERS))
def test_every_handler_answers_an_unprivileged_caller(api, tmp_path):
    """A default request from a principal with no ACLs never raises (a refusal is an answer)."""
    handler = HANDLERS[api]

    async def main():
        broker = Broker(load_config(None, overrides={"log.dirs": str(tmp_path / "d"),
                                                     "listeners": "PLAINTEXT://127.0.0.1:9092"}, environ={}))
        await broker.start()
        try:
            for version in (handler.min_version, handler.max_version):
                req = handler.request_cls()
                ctx = RequestContext(broker, version, 1, "t", ALICE)
                decoded, _ = handler.request_cls.decode(_wire(req, version), 0, version)
                await asyncio.wait_for(handler.fn(ctx, decoded), 5)
        finally:
            await broker.stop()

    asyncio.run(main())
