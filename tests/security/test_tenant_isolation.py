"""Cross-tenant attacks: a member of `acme` against `globex`, un-namespaced resources and look-alike names.

Tenants: `acme` (User:alice, Group:acme-devs; tenant admin User:ann) and `globex` (User:gina).
`User:admin` is the only super user. Every probe asks about a resource that exists and one that does
not, with names of the same length, and the two answers must be byte-for-byte the same once the name
is swapped (nothing leaks, not even in messages), and carry Kafka's refusal.

Test-only path: the handlers run in-process over a started Broker in a temporary directory (every
request and response through the wire codecs at the version under test, as tests/unit/
test_authz_handlers.py does), and the tenants are created with `broker.tenants.put(...)` directly,
because the gRPC admin API that creates them over the wire is being written alongside.
The attacker has ACLs that try to reach outside: ALLOW ALL on literal `*`, on PREFIXED `acme` (which
spans `acme2.`) and on the probed names themselves; the rule denies everything outside `acme.` anyway.
"""

from __future__ import annotations

import asyncio

import pytest

from keystream.auth.acl import (
    ANY_FILTER,
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import Tenant
from keystream.broker.broker import Broker
from keystream.broker.errors import ErrorCode as E
from keystream.broker.protocol.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
from keystream.broker.protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
)
from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from keystream.broker.protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from keystream.broker.protocol.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from keystream.broker.protocol.messages.delete_groups_request import DeleteGroupsRequest
from keystream.broker.protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from keystream.broker.protocol.messages.describe_acls_request import DescribeAclsRequest
from keystream.broker.protocol.messages.describe_cluster_request import DescribeClusterRequest
from keystream.broker.protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
)
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
from tests.unit.test_authz_handlers import Node

Op, R, P = Operation, ResourceType, PatternType
TOPIC_RES, GROUP_RES, CLUSTER_RES, TXN_RES = 2, 3, 4, 5
LITERAL, PREFIXED, ALLOW, DENY_PERM = 3, 4, 3, 2
READ, ALL_OPS, ALTER = 3, 2, 7


def session(principal: str, *groups: str) -> Session:
    return Session(Principal.parse(principal), "127.0.0.1", groups=tuple(Principal.parse(g) for g in groups))


ADMIN, ALICE, ANN, GINA = session("User:admin"), session("User:alice"), session("User:ann"), session("User:gina")
DEV = session("User:dora", "Group:acme-devs")  # in acme through a group only

OWN_TOPIC, OWN_GROUP = "acme.orders", "acme.grp"
# (existing, missing) pairs of the same length: another tenant's, un-namespaced, and look-alike names
TOPIC_TARGETS = [("globex.orders", "globex.ordery"), ("plain.orders", "plain.ordery"),
                 ("ACME.orders", "ACME.ordery"), ("acme2.orders", "acme2.ordery"), ("acme", "acmf")]
GROUP_TARGETS = [("globex.grp", "globex.grq"), ("plain.grp", "plain.grq"), ("ACME.grp", "ACME.grq"),
                 ("acme2.grp", "acme2.grq"), ("acme", "acmf")]
ATTACKERS = {"alice": ALICE, "ann (tenant admin)": ANN, "dora (via Group:acme-devs)": DEV}


class Harness:
    """One started Broker on its own event loop for the whole module; `call` runs a handler on it."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        config = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
                  "super.users": "User:admin", "group.initial.rebalance.delay.ms": 0,
                  "offsets.topic.num.partitions": 1}
        self.broker = Broker(load_config(None, overrides=config, environ={}))
        self.node = Node(self.broker)
        self.run(self.broker.start())

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def call(self, who: Session, req, version: int):
        return self.run(self.node.call(who, req, version))

    def raw(self, who: Session, req, version: int) -> bytes:
        return self.run(self.node.raw(who, req, version))

    def close(self) -> None:
        self.run(self.broker.stop())
        self.loop.close()


def commit(group: str, topic: str) -> OffsetCommitRequest:
    return OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="",
                               topics=[OffsetCommitRequestTopic(topic, [OffsetCommitRequestPartition(0, 1)])])


def binding(principal, op, rtype, name, pattern=P.LITERAL, permission=Permission.ALLOW) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", op, permission)


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("tenants"))
    broker = h.broker
    broker.tenants.put(Tenant("acme", frozenset({"User:alice", "Group:acme-devs"}), frozenset({"User:ann"})))
    broker.tenants.put(Tenant("globex", frozenset({"User:gina"})))
    batch = build_batch([(b"k", b"v", [], 1_700_000_000_000)])
    for name in dict.fromkeys([OWN_TOPIC, "globex.orders", *(present for present, _ in TOPIC_TARGETS)]):
        if broker.logs.topic(name) is None:
            broker.logs.create_topic(name, 1, {})
        produced = h.call(ADMIN, ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
            TopicProduceData(name, [PartitionProduceData(0, batch)])]), 9)
        assert produced.responses[0].partition_responses[0].error_code == 0
    for group, topic in [(OWN_GROUP, OWN_TOPIC), (OWN_GROUP, "globex.orders"),
                         *((present, "globex.orders") for present, _ in GROUP_TARGETS)]:
        assert h.call(ADMIN, commit(group, topic), 8).topics[0].partitions[0].error_code == 0
    # ACLs reaching outside the namespace, which the tenant rule must make worthless
    reach = [binding(p, Op.ALL, rtype, "*") for p in ("User:alice", "User:ann", "Group:acme-devs", "User:*")
             for rtype in (R.TOPIC, R.GROUP, R.TRANSACTIONAL_ID)]
    reach += [binding(p, Op.ALL, rtype, "acme", P.PREFIXED) for p in ("User:alice", "User:ann", "Group:acme-devs")
              for rtype in (R.TOPIC, R.GROUP, R.TRANSACTIONAL_ID)]
    reach += [binding("User:alice", Op.ALL, R.TOPIC, name) for pair in TOPIC_TARGETS for name in pair]
    reach += [binding("User:alice", Op.ALL, R.GROUP, name) for pair in GROUP_TARGETS for name in pair]
    # globex's own ACLs and a platform ACL on an acme topic for an outsider: a tenant admin must not see them
    theirs = [binding("User:gina", Op.ALTER, R.TOPIC, "globex.orders"),
              binding("User:bob", Op.READ, R.TOPIC, OWN_TOPIC)]
    assert broker.authorizer.create(reach + theirs) == [None] * len(reach + theirs)
    h.theirs = theirs
    yield h
    h.close()


def probe(h: Harness, who: Session, build, version: int, present: str, absent: str, expected: int) -> None:
    a, b = (_masked(h.raw(who, build(n), version)) for n in (present, absent))
    assert b.count(absent.encode()) == a.count(present.encode())
    assert a == b.replace(absent.encode(), present.encode()), "the answers tell an existing name from a missing one"
    found = codes(h.call(who, build(present), version))
    assert expected in found and found <= {0, expected}, found


def _masked(frame: bytes) -> bytes:
    """The tenant's own names blanked out, so that the probed `acme` is not found inside them."""
    return frame.replace(OWN_TOPIC.encode(), b"\0" * len(OWN_TOPIC)).replace(OWN_GROUP.encode(),
                                                                            b"\0" * len(OWN_GROUP))


def codes(obj) -> set[int]:
    """Every error code anywhere in a decoded response."""
    found: set[int] = set()
    if isinstance(obj, list):
        for x in obj:
            found |= codes(x)
    elif hasattr(obj, "__slots__") and not isinstance(obj, str | bytes | int | memoryview):
        for attr in obj.__slots__:
            value = getattr(obj, attr)
            if attr.endswith("error_code"):
                found.add(value)
            else:
                found |= codes(value)
    return found


def produce(name):
    batch = build_batch([(b"k", b"v", [], 1_700_000_000_000)])
    return ProduceRequest(acks=1, timeout_ms=1000, topic_data=[TopicProduceData(name, [PartitionProduceData(0, batch)])])


def fetch(name):
    return FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic=name, partitions=[
        FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 16)])])


def join(g):
    return JoinGroupRequest(group_id=g, session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id="",
                            protocol_type="consumer", protocols=[JoinGroupRequestProtocol("range", b"")])


T, G, X, C = E.TOPIC_AUTHORIZATION_FAILED, E.GROUP_AUTHORIZATION_FAILED, E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, \
    E.CLUSTER_AUTHORIZATION_FAILED
TOPIC_PROBES = [
    ("metadata v1", lambda n: MetadataRequest(topics=[MetadataRequestTopic(name=n)]), 1, T),
    ("metadata v12", lambda n: MetadataRequest(topics=[MetadataRequestTopic(name=n)],
                                               include_topic_authorized_operations=True), 12, T),
    ("list offsets v0", lambda n: ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsTopic(n, [ListOffsetsPartition(0, timestamp=-1, max_num_offsets=1)])]), 0, T),
    ("list offsets v7", lambda n: ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsTopic(n, [ListOffsetsPartition(0, timestamp=-1)])]), 7, T),
    ("offset fetch v7", lambda n: OffsetFetchRequest(group_id=OWN_GROUP, topics=[OffsetFetchRequestTopic(n, [0])]),
     7, T),
    ("offset fetch v8", lambda n: OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
        group_id=OWN_GROUP, topics=[OffsetFetchRequestTopics(n, [0])])]), 8, T),
    ("describe configs", lambda n: DescribeConfigsRequest(resources=[DescribeConfigsResource(2, n, None)]), 4, T),
    ("alter configs", lambda n: AlterConfigsRequest(resources=[
        AlterConfigsResource(2, n, [AlterableConfig("retention.ms", "1000")])]), 2, T),
    ("incremental alter configs", lambda n: IncrementalAlterConfigsRequest(resources=[
        IncrementalResource(2, n, [IncrementalConfig("retention.ms", 0, "1000")])]), 1, T),
    ("delete topics v5", lambda n: DeleteTopicsRequest(topic_names=[n], timeout_ms=1000), 5, T),
    ("delete topics v6", lambda n: DeleteTopicsRequest(topics=[DeleteTopicState(name=n)], timeout_ms=1000), 6, T),
    ("create partitions", lambda n: CreatePartitionsRequest(topics=[CreatePartitionsTopic(n, 3, None)],
                                                            timeout_ms=1000), 3, T),
    ("create topics", lambda n: CreateTopicsRequest(topics=[CreatableTopic(n, 1, -1, [], [])], timeout_ms=1000), 7,
     T),
    ("produce", produce, 9, T),
    ("fetch by name", fetch, 12, T),
    ("delete records", lambda n: DeleteRecordsRequest(topics=[DeleteRecordsTopic(n, [DeleteRecordsPartition(0, 1)])],
                                                      timeout_ms=1000), 2, T),
    ("offset for leader epoch", lambda n: OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderTopic(n, [OffsetForLeaderPartition(0, current_leader_epoch=-1, leader_epoch=0)])]), 4, T),
    ("offset commit", lambda n: commit(OWN_GROUP, n), 8, T),
    ("offset delete", lambda n: OffsetDeleteRequest(group_id=OWN_GROUP, topics=[
        OffsetDeleteRequestTopic(n, [OffsetDeleteRequestPartition(0)])]), 0, T),
    ("create acls (tenant admin)", lambda n: CreateAclsRequest(creations=[AclCreation(
        TOPIC_RES, n, LITERAL, "User:alice", "*", READ, ALLOW)]), 3, C),
]
GROUP_PROBES = [
    ("describe groups", lambda g: DescribeGroupsRequest(groups=[g], include_authorized_operations=True), 5, G),
    ("offset fetch v1", lambda g: OffsetFetchRequest(group_id=g, topics=[OffsetFetchRequestTopic(OWN_TOPIC, [0])]),
     1, G),
    ("offset fetch v7", lambda g: OffsetFetchRequest(group_id=g, topics=None), 7, G),
    ("offset fetch v8", lambda g: OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=g, topics=None)]), 8,
     G),
    ("delete groups", lambda g: DeleteGroupsRequest(groups_names=[g]), 2, G),
    ("find coordinator v3", lambda g: FindCoordinatorRequest(key=g, key_type=0), 3, G),
    ("find coordinator v4", lambda g: FindCoordinatorRequest(key_type=0, coordinator_keys=[g]), 4, G),
    ("join group", join, 7, G),
    ("sync group", lambda g: SyncGroupRequest(group_id=g, generation_id=1, member_id="m", assignments=[]), 5, G),
    ("heartbeat", lambda g: HeartbeatRequest(group_id=g, generation_id=1, member_id="m"), 4, G),
    ("leave group", lambda g: LeaveGroupRequest(group_id=g, members=[MemberIdentity(member_id="m")]), 4, G),
    ("offset commit", lambda g: commit(g, OWN_TOPIC), 8, G),
    ("offset delete", lambda g: OffsetDeleteRequest(group_id=g, topics=[
        OffsetDeleteRequestTopic(OWN_TOPIC, [OffsetDeleteRequestPartition(0)])]), 0, G),
    ("create acls (tenant admin)", lambda g: CreateAclsRequest(creations=[AclCreation(
        GROUP_RES, g, LITERAL, "User:alice", "*", READ, ALLOW)]), 3, C),
    ("transactional id: find coordinator", lambda t: FindCoordinatorRequest(key_type=1, coordinator_keys=[t]), 4, X),
    ("transactional id: init producer id", lambda t: InitProducerIdRequest(transactional_id=t,
                                                                            transaction_timeout_ms=60000), 4, X),
]


@pytest.mark.parametrize("who", list(ATTACKERS.values()), ids=list(ATTACKERS))
@pytest.mark.parametrize("build, version, expected", [p[1:] for p in TOPIC_PROBES], ids=[p[0] for p in TOPIC_PROBES])
def test_topics_outside_the_tenant_are_refused_as_if_missing(h, who, build, version, expected):
    for present, absent in TOPIC_TARGETS:
        probe(h, who, build, version, present, absent, expected)


@pytest.mark.parametrize("who", list(ATTACKERS.values()), ids=list(ATTACKERS))
@pytest.mark.parametrize("build, version, expected", [p[1:] for p in GROUP_PROBES], ids=[p[0] for p in GROUP_PROBES])
def test_groups_and_transactional_ids_outside_the_tenant_are_refused_as_if_missing(h, who, build, version, expected):
    for present, absent in GROUP_TARGETS:
        probe(h, who, build, version, present, absent, expected)


def test_the_probed_resources_are_untouched(h):
    logs = h.broker.logs
    for present, _ in TOPIC_TARGETS:
        assert logs.topic(present) is not None and len(logs.topic(present).partitions) == 1
        assert logs.topic(present).partitions[0].log_end_offset == 1
    listed = {g.group_id for g in h.call(ADMIN, ListGroupsRequest(), 4).groups}
    assert {present for present, _ in GROUP_TARGETS} <= listed


# ---------------------------------------------------------------------------- listings

def test_listings_show_only_the_tenants_own_resources(h):
    for who in ATTACKERS.values():
        assert [t.name for t in h.call(who, MetadataRequest(topics=None), 12).topics] == [OWN_TOPIC]
        assert [g.group_id for g in h.call(who, ListGroupsRequest(), 4).groups] == [OWN_GROUP]
        offsets = h.call(who, OffsetFetchRequest(group_id=OWN_GROUP, topics=None), 7)
        assert [t.name for t in offsets.topics] == [OWN_TOPIC]  # the offset on globex.orders is left out
    gina = h.call(GINA, MetadataRequest(topics=None), 12)
    assert [t.name for t in gina.topics] == ["globex.orders"]
    assert [g.group_id for g in h.call(GINA, ListGroupsRequest(), 4).groups] == ["globex.grp"]
    everything = {t.name for t in h.call(ADMIN, MetadataRequest(topics=None), 12).topics}
    assert {OWN_TOPIC, *(p for p, _ in TOPIC_TARGETS)} <= everything


def test_list_groups_stays_in_the_tenant_even_with_cluster_describe(h):
    acl = binding("User:alice", Op.DESCRIBE, R.CLUSTER, "kafka-cluster")
    assert h.broker.authorizer.create([acl]) == [None]
    try:
        assert [g.group_id for g in h.call(ALICE, ListGroupsRequest(), 4).groups] == [OWN_GROUP]
    finally:
        h.broker.authorizer.delete([acl_filter(acl)])


def acl_filter(b: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(b.resource_type, b.name, b.pattern_type, b.principal, b.host, b.operation, b.permission)


def test_members_work_inside_without_any_acl_of_their_own(h):
    created = h.call(DEV, CreateTopicsRequest(topics=[CreatableTopic("acme.new", 2, -1, [], [])], timeout_ms=1000), 7)
    assert created.topics[0].error_code == 0
    assert h.call(ALICE, produce("acme.new"), 9).responses[0].partition_responses[0].error_code == 0
    assert codes(h.call(ALICE, fetch("acme.new"), 12)) == {0}
    meta = h.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name="acme.new")],
                                         include_topic_authorized_operations=True), 12)
    assert meta.topics[0].error_code == 0 and meta.topics[0].topic_authorized_operations != 0
    assert h.call(ALICE, commit(OWN_GROUP, "acme.new"), 8).topics[0].partitions[0].error_code == 0
    pid = h.call(ALICE, InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
    assert pid.error_code == 0  # idempotent producers: Write on some topic, the tenant's own
    txn = h.call(ALICE, InitProducerIdRequest(transactional_id="acme.tx", transaction_timeout_ms=60000), 4)
    assert txn.error_code == E.COORDINATOR_NOT_AVAILABLE  # authorized; transactions are not served yet
    deleted = h.call(ALICE, DeleteTopicsRequest(topic_names=["acme.new"], timeout_ms=1000), 5)
    assert deleted.responses[0].error_code == 0


def test_cluster_operations_stay_closed_to_tenants(h):
    for who in ATTACKERS.values():
        r = h.call(who, DescribeClusterRequest(include_cluster_authorized_operations=True), 1)
        assert (r.error_code, r.cluster_authorized_operations) == (0, 0)
        assert codes(h.call(who, DescribeUserScramCredentialsRequest(users=None), 0)) == {0, C}
        alter = h.call(who, AlterUserScramCredentialsRequest(deletions=[ScramCredentialDeletion("admin", 1)]), 0)
        assert codes(alter) == {C}
        broker_cfg = h.call(who, DescribeConfigsRequest(resources=[DescribeConfigsResource(4, "", None)]), 4)
        assert codes(broker_cfg) == {C}


# ---------------------------------------------------------------------------- ACL management by tenant admins

def creation(rtype, name, principal, *, pattern=LITERAL, op=READ, permission=ALLOW) -> AclCreation:
    return AclCreation(rtype, name, pattern, principal, "*", op, permission)


def test_members_that_are_not_tenant_admins_cannot_manage_acls(h):
    for who in (ALICE, DEV, GINA):
        r = h.call(who, CreateAclsRequest(creations=[creation(TOPIC_RES, "acme.x", "User:alice")]), 3)
        assert [c.error_code for c in r.results] == [C]
        assert h.call(who, DescribeAclsRequest(resource_type_filter=1, pattern_type_filter=1, operation=1,
                                               permission_type=1, resource_name_filter=None, principal_filter=None,
                                               host_filter=None), 3).error_code == C
        d = h.call(who, DeleteAclsRequest(filters=[DeleteAclsFilter(1, None, 1, None, None, 1, 1)]), 3)
        assert [f.error_code for f in d.filter_results] == [C]


def test_a_tenant_admin_creates_acls_inside_its_tenant_only(h):
    inside = [creation(TOPIC_RES, "acme.orders", "User:alice", op=ALTER),
              creation(GROUP_RES, "acme.", "Group:acme-devs", pattern=PREFIXED),
              creation(TXN_RES, "acme.tx", "User:ann", op=ALL_OPS, permission=DENY_PERM)]
    outside = [creation(TOPIC_RES, "acme", "User:alice", pattern=PREFIXED),  # spans acme2.
               creation(TOPIC_RES, "*", "User:alice"),
               creation(TOPIC_RES, "a", "User:alice", pattern=PREFIXED),
               creation(TOPIC_RES, "globex.orders", "User:alice"),
               creation(TOPIC_RES, "ACME.orders", "User:alice"),
               creation(TOPIC_RES, "acme.orders", "User:gina"),
               creation(TOPIC_RES, "acme.orders", "User:*"),
               creation(TOPIC_RES, "acme.orders", "User:bob"),
               creation(CLUSTER_RES, "kafka-cluster", "User:ann", op=ALL_OPS),  # escalation to super user powers
               creation(CLUSTER_RES, "kafka-cluster", "User:ann", op=ALTER),
               creation(7, "acme.ann", "User:ann", op=13)]  # USER CreateTokens
    malformed = [creation(TOPIC_RES, "acme.x", "alice"), creation(TOPIC_RES, "acme.x", "User:alice", pattern=2)]
    r = h.call(ANN, CreateAclsRequest(creations=inside + outside + malformed), 3)
    got = [(c.error_code, c.error_message) for c in r.results]
    assert got[:3] == [(0, None)] * 3
    assert got[3:3 + len(outside)] == [(C, "Cluster authorization failed.")] * len(outside)
    assert [code for code, _ in got[-2:]] == [E.INVALID_REQUEST] * 2
    assert h.broker.authorizer.authorize(ALICE, Op.ALTER, R.TOPIC, "acme.orders")
    # nothing outside was created, and ann gained nothing
    assert not h.broker.authorizer.authorize(ANN, Op.ALTER, R.CLUSTER, "kafka-cluster")
    assert codes(h.call(ANN, DescribeUserScramCredentialsRequest(users=None), 0)) == {0, C}
    assert h.call(ANN, MetadataRequest(topics=[MetadataRequestTopic(name="globex.orders")]), 12).topics[0].error_code == T


def test_a_tenant_admin_sees_and_deletes_only_its_tenants_acls(h):
    mine = creation(TOPIC_RES, "acme.del", "User:alice", op=ALTER)
    assert [c.error_code for c in h.call(ANN, CreateAclsRequest(creations=[mine]), 3).results] == [0]
    everything = DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                                     principal_filter=None, host_filter=None, operation=1, permission_type=1)
    seen = h.call(ANN, everything, 3)
    assert seen.error_code == 0
    names = {(r.resource_type, r.resource_name, r.pattern_type) for r in seen.resources}
    assert (TOPIC_RES, "acme.del", LITERAL) in names
    assert all(name.startswith("acme.") for _, name, _ in names), names
    principals = {a.principal for r in seen.resources for a in r.acls}
    assert principals <= {"User:alice", "User:ann", "Group:acme-devs"}, principals
    assert all(rt in (TOPIC_RES, GROUP_RES, TXN_RES) for rt, _, _ in names)
    # the same filter as a super user shows the rest, which stays after the admin deletes "everything"
    before = h.broker.authorizer.describe(ANY_FILTER)
    deleted = h.call(ANN, DeleteAclsRequest(filters=[DeleteAclsFilter(1, None, 1, None, None, 1, 1)]), 3)
    gone = [(m.resource_name, m.principal) for m in deleted.filter_results[0].matching_acls]
    assert ("acme.del", "User:alice") in gone
    assert all(name.startswith("acme.") and p in {"User:alice", "User:ann", "Group:acme-devs"} for name, p in gone)
    after = set(h.broker.authorizer.describe(ANY_FILTER))
    assert after == {b for b in before if (b.name, b.principal) not in set(gone)}
    assert set(h.theirs) <= after
    assert h.call(ANN, everything, 3).resources == []


# ---------------------------------------------------------------------------- lifecycle

def test_a_new_tenant_applies_at_once_and_a_removed_one_lets_go(h):
    carl = session("User:carl")
    assert h.call(carl, MetadataRequest(topics=None), 12).topics != []  # the User:* ALLOW ALL on `*` (no tenant)
    h.broker.tenants.put(Tenant("initech", frozenset({"User:carl"})))
    try:
        assert h.call(carl, MetadataRequest(topics=None), 12).topics == []
        r = h.call(carl, CreateTopicsRequest(topics=[CreatableTopic("initech.a", 1, -1, [], [])], timeout_ms=1000), 7)
        assert r.topics[0].error_code == 0
        assert [t.name for t in h.call(carl, MetadataRequest(topics=None), 12).topics] == ["initech.a"]
        assert "initech.a" not in {t.name for t in h.call(ALICE, MetadataRequest(topics=None), 12).topics}
    finally:
        h.broker.tenants.remove("initech")
        if h.broker.logs.topic("initech.a") is not None:
            h.broker.logs.delete_topic("initech.a")
    assert len(h.call(carl, MetadataRequest(topics=None), 12).topics) > 1


def test_rights_on_the_cluster_stay_inside_the_tenant(h):
    """ALL on the cluster, granted by the platform, opens no user, quota or topic of another tenant."""
    from keystream.auth.sasl.scram import credential_from_salted_password  # noqa: PLC0415
    from keystream.broker.protocol.messages.alter_client_quotas_request import (  # noqa: PLC0415
        AlterClientQuotasRequest,
        EntityData,
        EntryData,
        OpData,
    )
    from keystream.broker.protocol.messages.describe_client_quotas_request import (  # noqa: PLC0415
        DescribeClientQuotasRequest,
    )
    from keystream.broker.protocol.messages.describe_user_scram_credentials_request import UserName  # noqa: PLC0415

    grant = binding("User:alice", Op.ALL, R.CLUSTER, "kafka-cluster")
    assert h.broker.authorizer.create([grant]) == [None]
    h.broker.scram.alter([(user, credential_from_salted_password("SCRAM-SHA-256", b"salt", 4096, b"x" * 32))
                          for user in ("alice", "gina")])
    try:
        listed = h.call(ALICE, DescribeUserScramCredentialsRequest(users=None), 0)
        assert [r.user for r in listed.results] == ["alice"]
        named = h.call(ALICE, DescribeUserScramCredentialsRequest(users=[UserName("gina")]), 0)
        assert [(r.error_code, r.error_message) for r in named.results] == [
            (E.RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist: gina")]
        takeover = h.call(ALICE, AlterUserScramCredentialsRequest(deletions=[ScramCredentialDeletion("gina", 1)]), 0)
        assert codes(takeover) == {C} and h.broker.scram.lookup("gina", "SCRAM-SHA-256") is not None
        # a super user listed as a member by mistake is still never the tenant's to change
        acme = h.broker.tenants.get("acme")
        h.broker.tenants.put(Tenant("acme", acme.members | {"User:admin"}, acme.admins))
        try:
            takeover = h.call(ALICE, AlterUserScramCredentialsRequest(deletions=[ScramCredentialDeletion("admin", 1)]), 0)
            assert codes(takeover) == {C}
        finally:
            h.broker.tenants.put(acme)
        h.broker.tenants.put(Tenant("globex", frozenset({"User:gina"}), quotas={"producer_byte_rate": 1e9}))
        assert h.call(ALICE, DescribeClientQuotasRequest(components=[], strict=False), 1).entries == []
        alter = h.call(ALICE, AlterClientQuotasRequest(entries=[EntryData(
            [EntityData("tenant", t)], [OpData("producer_byte_rate", 1e12, False)]) for t in ("globex", "acme")]), 1)
        assert [e.error_code for e in alter.entries] == [C, C]
        assert h.broker.tenants.get("globex").quotas == {"producer_byte_rate": 1e9}
        epoch = h.call(ALICE, OffsetForLeaderEpochRequest(replica_id=1, topics=[OffsetForLeaderTopic(
            "globex.orders", [OffsetForLeaderPartition(0, current_leader_epoch=-1, leader_epoch=0)])]), 4)
        assert codes(epoch) == {T}
    finally:
        h.broker.authorizer.delete([acl_filter(grant)])
        h.broker.tenants.put(Tenant("globex", frozenset({"User:gina"})))
        h.broker.scram.alter([], [(user, "SCRAM-SHA-256") for user in ("alice", "gina")])


def test_a_name_colliding_with_an_older_outside_topic_names_nothing_outside(h):
    """An `acme_` topic made before tenant acme existed collides with `acme.hidden`; the refusal a
    member gets must not name it."""
    h.broker.logs.create_topic("acme_hidden", 1, {})  # as it was before the tenant (now reserved)
    try:
        created = h.call(ALICE, CreateTopicsRequest(topics=[CreatableTopic("acme.hidden", 1, -1, [], [])],
                                                    timeout_ms=1000), 7)
        assert created.topics[0].error_code == E.INVALID_TOPIC_EXCEPTION
        assert "acme_hidden" not in (created.topics[0].error_message or "")
    finally:
        h.broker.logs.delete_topic("acme_hidden")
