"""Cross-tenant attacks over the wire: a member of `acme` against a real broker process.

A broker with a SASL_SSL SCRAM listener and `admin.listener`; tenants `acme` (User:alice, tenant admin
User:ann) and `globex` (User:gina) are created through the gRPC admin API, SCRAM users with the Admin
API. globex has a topic with records, a group with committed offsets, quotas and ACLs; un-namespaced
and look-alike resources exist too. alice and ann hold ACLs that try to reach outside the namespace
(ALLOW ALL on literal `*`, on PREFIXED `acme`, and on every probed name), and probe every API the
broker serves: each answer for an existing name must be byte-for-byte the answer for a never-created
name of the same length once the name is swapped, carry Kafka's refusal, and name nothing else
outside the tenant. APIs the broker does not serve close the connection whatever they name.
Real clients (confluent-kafka, kafka-python) then take the main paths and see only acme's things.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclBinding as CkAclBinding
from confluent_kafka.admin import AclBindingFilter as CkAclBindingFilter
from confluent_kafka.admin import (
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.broker.errors import ErrorCode as E
from keystream.broker.protocol.messages import RESPONSES
from keystream.broker.protocol.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from keystream.broker.protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
)
from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from keystream.broker.protocol.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from keystream.broker.protocol.messages.describe_acls_request import DescribeAclsRequest
from keystream.broker.protocol.messages.describe_client_quotas_request import (
    ComponentData,
    DescribeClientQuotasRequest,
)
from keystream.broker.protocol.messages.describe_cluster_request import DescribeClusterRequest
from keystream.broker.protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from keystream.broker.protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
    UserName,
)
from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from keystream.broker.protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from keystream.broker.protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from keystream.broker.protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
)
from keystream.broker.protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from keystream.broker.protocol.messages.response_header import ResponseHeader
from keystream.broker.records import build_batch
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.clients import wire
from tests.fixtures.sasl import confluent_sasl, kafka_python_sasl, sasl_wire, scram_login, scram_user
from tests.fixtures.waiting import Deadline
from tests.fixtures.wire import ConnectionClosed, WireClient, response_header_version
from tests.security.test_tenant_isolation import (
    GROUP_PROBES,
    LITERAL,
    PREFIXED,
    READ,
    TOPIC_PROBES,
    TOPIC_RES,
    C,
    G,
    T,
    X,
    codes,
    commit,
)

pytestmark = pytest.mark.keystream_only

MECHANISM = "SCRAM-SHA-256"
USERS = ("alice", "ann", "gina")
OWN_TOPIC, OWN_GROUP = "acme.orders", "acme.grp"  # the names the shared probe tables use
SECRET = b"globex-secret-record"
# (existing, never created) pairs of the same length: another tenant's, un-namespaced and look-alike names
TOPIC_TARGETS = [("globex.orders", "globex.ordery"), ("orders", "ordery"), ("ACME.orders", "ACME.ordery"),
                 ("acme2.orders", "acme2.ordery"), ("acmeorders", "acmeordery"), ("acme", "acmf")]
GROUP_TARGETS = [("globex.g", "globex.h"), ("group-g", "group-h"), ("ACME.grp", "ACME.grq"),
                 ("acme2.grp", "acme2.grq"), ("acmegrp", "acmegrq"), ("acme", "acmf")]
USER_TARGETS = [("gina", "gino"), ("admin", "admio")]  # SCRAM users outside acme
TENANT_TARGETS = [("globex", "globey")]
# Every byte string that belongs to something outside acme and may never appear in an answer to alice/ann
FOREIGN = [b"globex", b"gina", SECRET, b"ACME", b"acme2", b"acmeorders", b"acmegrp", b"group-g"]
ATTACKERS = ("alice", "ann")



def _pw(user: str) -> str:
    return f"{user}-secret"


def _acl(principal: str, rtype: int, name: str, pattern: int = LITERAL, op: int = 2) -> AclCreation:
    return AclCreation(rtype, name, pattern, principal, "*", op, 3)  # op 2 = ALL, permission 3 = ALLOW


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = admin_broker(module_broker_factory, sasl=MECHANISM, **{"auto.create.topics.enable": True,
                                                              "offsets.topic.num.partitions": 1})
    with admin_channel(b) as ch:
        tenants = rpc.TenantServiceStub(ch)
        tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="acme", members=["User:alice"], admins=["User:ann"])), timeout=TIMEOUT_S)
        tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="globex", members=["User:gina"], quotas={"producer_byte_rate": 1e9})), timeout=TIMEOUT_S)
    for user in USERS:
        scram_user(b, user, _pw(user), MECHANISM)
    with wire(b) as admin:  # the mTLS super user
        for name in [OWN_TOPIC, *(present for present, _ in TOPIC_TARGETS)]:
            admin.create_topic(name)
            value = SECRET if name.startswith("globex") else b"v"
            assert admin.produce(name, 0, build_batch([(b"k", value, [], 1_700_000_000_000)])).error_code == 0
        for group, topic in [(OWN_GROUP, OWN_TOPIC), (OWN_GROUP, "globex.orders"),
                             *((present, "globex.orders") for present, _ in GROUP_TARGETS)]:
            assert admin.request(commit(group, topic), 8).topics[0].partitions[0].error_code == 0
        reach = [_acl(p, rtype, "*") for p in ("User:alice", "User:ann") for rtype in (2, 3, 5)]
        reach += [_acl(p, rtype, "acme", PREFIXED) for p in ("User:alice", "User:ann") for rtype in (2, 3, 5)]
        reach += [_acl(p, 2, name) for p in ("User:alice", "User:ann") for pair in TOPIC_TARGETS for name in pair]
        reach += [_acl(p, rtype, name) for p in ("User:alice", "User:ann") for pair in GROUP_TARGETS
                  for name in pair for rtype in (3, 5)]
        theirs = [_acl("User:gina", 2, "globex.orders", op=3), _acl("User:gina", 3, "globex.", PREFIXED, op=3),
                  _acl("User:gina", 2, OWN_TOPIC, op=3)]  # a platform grant to an outsider, hidden from ann
        mine = [_acl("User:alice", 2, OWN_TOPIC, op=7), _acl("User:alice", 3, "acme.", PREFIXED, op=3)]
        created = admin.request(CreateAclsRequest(creations=reach + theirs + mine), 3)
        assert [r.error_code for r in created.results] == [0] * len(reach + theirs + mine)
        b.topic_ids = {t.name: bytes(t.topic_id) for t in admin.metadata().topics}
    return b


@pytest.fixture(scope="module")
def conns(broker):
    opened = {}
    for user in ATTACKERS:
        c = sasl_wire(broker)
        scram_login(c, user, _pw(user), MECHANISM)
        opened[user] = c
    yield opened
    for c in opened.values():
        c.close()


def exchange(c: WireClient, request, version: int):
    """(the response bytes after the header, the decoded response)."""
    cid = c.send(request, version)
    c._pending.pop(cid)  # noqa: SLF001 - read by hand to keep the raw bytes
    payload = bytes(c.read_frame())
    header, pos = ResponseHeader.decode(payload, 0, response_header_version(request.API_KEY, version))
    assert header.correlation_id == cid
    response, end = RESPONSES[request.API_KEY].decode(payload, pos, version)
    assert end == len(payload)
    return payload[pos:], response


def _masked(frame: bytes) -> bytes:
    """acme's own names blanked out, so that a probed `acme` is not found inside them."""
    for own in (OWN_TOPIC, OWN_GROUP, "User:alice", "User:ann"):
        frame = frame.replace(own.encode(), b"\0" * len(own))
    return frame


def probe(c: WireClient, build, version: int, present: str, absent: str, expected: int) -> None:
    (a, seen), (b, _) = (exchange(c, build(n), version) for n in (present, absent))
    a, b = _masked(a), _masked(b)
    assert b.count(absent.encode()) == a.count(present.encode())
    assert a == b.replace(absent.encode(), present.encode()), "an existing name is answered unlike a missing one"
    rest = a.replace(present.encode(), b"\0" * len(present))
    leaked = [m for m in FOREIGN if m in rest and m not in present.encode()]
    assert not leaked, f"the answer names {leaked}"
    found = codes(seen)
    assert expected in found and found <= {0, expected}, found


def _follower_fetch(n):
    return FetchRequest(replica_id=1, max_wait_ms=0, topics=[FetchTopic(topic=n, partitions=[
        FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 16)])])


ADMIN_ONLY = {"ann": 0, "alice": C}  # the tenant admin gets an empty answer, a member the API's refusal
WIRE_TOPIC_PROBES = TOPIC_PROBES + [
    ("fetch as a follower", _follower_fetch, 12, T),
    ("offset for leader epoch as a follower", lambda n: OffsetForLeaderEpochRequest(replica_id=1, topics=[
        OffsetForLeaderTopic(n, [OffsetForLeaderPartition(0, current_leader_epoch=-1, leader_epoch=0)])]), 4, T),
    ("metadata auto-create", lambda n: MetadataRequest(topics=[MetadataRequestTopic(name=n)],
                                                       allow_auto_topic_creation=True), 12, T),
    ("create acls prefixed (tenant admin)", lambda n: CreateAclsRequest(creations=[AclCreation(
        TOPIC_RES, n, PREFIXED, "User:alice", "*", READ, 3)]), 3, C),
    ("describe acls by name (tenant admin)", lambda n: DescribeAclsRequest(
        resource_type_filter=1, resource_name_filter=n, pattern_type_filter=2, principal_filter=None,
        host_filter=None, operation=1, permission_type=1), 3, ADMIN_ONLY),
    ("delete acls by name (tenant admin)", lambda n: DeleteAclsRequest(filters=[DeleteAclsFilter(
        1, n, 2, None, None, 1, 1)]), 3, ADMIN_ONLY),
]
WIRE_GROUP_PROBES = GROUP_PROBES + [
    ("offset fetch v8, several groups", lambda g: OffsetFetchRequest(groups=[
        OffsetFetchRequestGroup(group_id=OWN_GROUP, topics=None), OffsetFetchRequestGroup(group_id=g, topics=None)]),
     8, G),
    ("transactional id: find coordinator v3", lambda t: FindCoordinatorRequest(key=t, key_type=1), 3, X),
]
USER_PROBES = [
    ("describe scram credentials", lambda u: DescribeUserScramCredentialsRequest(users=[UserName(u)]), 0, C),
    ("alter scram credentials", lambda u: AlterUserScramCredentialsRequest(
        deletions=[ScramCredentialDeletion(u, 1)], upsertions=[]), 0, C),
    ("describe client quotas of a user", lambda u: DescribeClientQuotasRequest(components=[
        ComponentData("user", 0, u)], strict=False), 1, C),
    ("alter client quotas of a user", lambda u: AlterClientQuotasRequest(entries=[EntryData(
        [EntityData("user", u)], [OpData("producer_byte_rate", 1e12, False)])], validate_only=False), 1, C),
]
TENANT_PROBES = [
    ("describe client quotas of a tenant", lambda t: DescribeClientQuotasRequest(components=[
        ComponentData("tenant", 0, t)], strict=False), 1, C),
    ("alter client quotas of a tenant", lambda t: AlterClientQuotasRequest(entries=[EntryData(
        [EntityData("tenant", t)], [OpData("producer_byte_rate", 1e12, False)])], validate_only=False), 1, C),
]


def _cases(probes, targets):
    return [pytest.param(name, build, version, expected, targets, id=name)
            for name, build, version, expected in probes]


CASES = (_cases(WIRE_TOPIC_PROBES, TOPIC_TARGETS) + _cases(WIRE_GROUP_PROBES, GROUP_TARGETS)
         + _cases(USER_PROBES, USER_TARGETS) + _cases(TENANT_PROBES, TENANT_TARGETS))


@pytest.mark.parametrize("who", ATTACKERS)
@pytest.mark.parametrize("name, build, version, expected, targets", CASES)
def test_outside_resources_are_refused_as_if_missing(conns, who, name, build, version, expected, targets):
    expected = expected[who] if isinstance(expected, dict) else expected
    for present, absent in targets:
        probe(conns[who], build, version, present, absent, expected)


# ---------------------------------------------------------------------------- topic ids

def _metadata_by_id(topic_id):
    return MetadataRequest(topics=[MetadataRequestTopic(topic_id=topic_id, name=None)])


def _fetch_by_id(topic_id):
    return FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic_id=topic_id, partitions=[
        FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 16)])])


def _delete_by_id(topic_id):
    return DeleteTopicsRequest(topics=[DeleteTopicState(name=None, topic_id=topic_id)], timeout_ms=1000)


@pytest.mark.parametrize("build, version", [(_metadata_by_id, 12), (_fetch_by_id, 13), (_fetch_by_id, 16),
                                            (_delete_by_id, 6)], ids=["metadata", "fetch v13", "fetch v16",
                                                                      "delete topics"])
def test_a_foreign_topic_id_is_answered_as_an_unknown_one(broker, conns, build, version):
    for present in ("globex.orders", "orders", "acme2.orders"):
        known, random_id = broker.topic_ids[present], uuid.uuid4().bytes
        (a, seen), (b, _) = (exchange(conns["alice"], build(i), version) for i in (known, random_id))
        assert a == b.replace(random_id, known)
        assert codes(seen) <= {0, E.UNKNOWN_TOPIC_ID} and E.UNKNOWN_TOPIC_ID in codes(seen)
        assert not [m for m in FOREIGN if m in a]


# ---------------------------------------------------------------------------- APIs the broker does not serve

UNSERVED = {24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
            35: "DescribeLogDirs", 43: "ElectLeaders", 46: "ListPartitionReassignments", 61: "DescribeProducers",
            65: "DescribeTransactions", 66: "ListTransactions"}


@pytest.mark.parametrize("api_key", list(UNSERVED), ids=list(UNSERVED.values()))
def test_apis_not_served_close_the_connection_whatever_they_name(broker, api_key):
    advertised = conns_api_versions(broker)
    assert api_key not in advertised
    for name in ("globex.orders", "globex.ordery"):
        c = sasl_wire(broker)
        try:
            scram_login(c, "alice", _pw("alice"), MECHANISM)
            body = struct.pack(">hhih", api_key, 0, 7, 5) + b"alice" + struct.pack(">h", len(name)) + name.encode()
            try:
                c.send_frame(body)
            except ConnectionClosed:
                continue
            assert c.closed_within(10) and c.unexpected == b""
        finally:
            c.close()


def conns_api_versions(broker) -> dict:
    c = sasl_wire(broker)
    try:
        return c.api_versions()
    finally:
        c.close()


# ---------------------------------------------------------------------------- what the tenant sees

def test_listings_show_only_acmes_things(conns):
    for who in ATTACKERS:
        c = conns[who]
        names = [t.name for t in exchange(c, MetadataRequest(topics=None), 12)[1].topics]
        assert OWN_TOPIC in names and all(n.startswith("acme.") for n in names), names
        groups = [g.group_id for g in exchange(c, ListGroupsRequest(), 5)[1].groups]
        assert OWN_GROUP in groups and all(g.startswith("acme.") for g in groups), groups
        raw, offsets = exchange(c, OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=OWN_GROUP, topics=None)]), 8)
        assert [t.name for t in offsets.groups[0].topics] == [OWN_TOPIC]  # the offset on globex.orders is left out
        raw += exchange(c, ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(OWN_TOPIC, [
            ListOffsetsPartition(0, timestamp=-1)])]), 7)[0]
        raw += exchange(c, DescribeConfigsRequest(resources=[DescribeConfigsResource(2, OWN_TOPIC, None)],
                                                  include_synonyms=True, include_documentation=True), 4)[0]
        cluster_raw, cluster = exchange(c, DescribeClusterRequest(include_cluster_authorized_operations=True), 1)
        assert (cluster.error_code, cluster.cluster_authorized_operations) == (0, 0)
        assert not [m for m in FOREIGN if m in raw + cluster_raw]


def test_a_tenant_admin_sees_only_its_tenants_acls(conns):
    everything = DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                                     principal_filter=None, host_filter=None, operation=1, permission_type=1)
    raw, seen = exchange(conns["ann"], everything, 3)
    assert seen.error_code == 0 and seen.resources
    assert all(r.resource_name.startswith("acme.") and r.resource_type in (2, 3, 5) for r in seen.resources)
    assert {a.principal for r in seen.resources for a in r.acls} <= {"User:alice", "User:ann"}
    assert not [m for m in FOREIGN if m in raw]
    assert exchange(conns["alice"], everything, 3)[1].error_code == C  # members are not tenant admins


def test_a_tenant_admin_creates_no_acl_spanning_tenants(conns):
    outside = [("*", LITERAL), ("acme", PREFIXED), ("acme2.", PREFIXED), ("a", PREFIXED),
               ("acme2.orders", LITERAL), ("globex.", PREFIXED)]
    creations = [AclCreation(rtype, name, pattern, "User:alice", "*", 2, 3)
                 for name, pattern in outside for rtype in (2, 3, 5)]
    creations += [AclCreation(2, "acme.x", LITERAL, principal, "*", 2, 3)
                  for principal in ("User:gina", "User:*", "User:admin")]
    creations += [AclCreation(4, "kafka-cluster", LITERAL, "User:ann", "*", 2, 3)]  # super user powers
    got = [(r.error_code, r.error_message) for r in exchange(conns["ann"], CreateAclsRequest(creations=creations),
                                                             3)[1].results]
    assert got == [(C, "Cluster authorization failed.")] * len(creations)
    inside = exchange(conns["ann"], CreateAclsRequest(creations=[
        AclCreation(2, "acme.", PREFIXED, "User:alice", "*", 7, 3)]), 3)[1]  # ALTER inside: allowed
    assert [r.error_code for r in inside.results] == [0]


def test_names_that_could_collide_with_a_namespace_are_reserved(broker):
    """`acme.x` and `acme_x` collide (Kafka's metric names): while acme exists nobody, not even a super
    user, creates an `acme_` topic, so a member's create never meets one (one made before the tenant
    existed is covered in test_tenant_isolation.py)."""
    with wire(broker) as admin:
        created = admin.request(CreateTopicsRequest(topics=[CreatableTopic("acme_hidden", 1, -1, [], [])],
                                                    timeout_ms=1000), 7)
    assert created.topics[0].error_code == E.POLICY_VIOLATION
    assert "reserved" in created.topics[0].error_message


def test_the_probed_resources_are_untouched(broker):
    with wire(broker) as admin:
        topics = {t.name: t for t in admin.metadata().topics}
        for present, absent in TOPIC_TARGETS:
            assert present in topics and absent not in topics  # nothing deleted, nothing auto-created
            assert len(topics[present].partitions) == 1
            assert admin.list_offset(present, 0).offset == 1
            assert admin.fetch(present, 0, 0).records
        groups = {g.group_id for g in admin.request(ListGroupsRequest(), 5).groups}
        assert {present for present, _ in GROUP_TARGETS} <= groups
        offsets = admin.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id="globex.g", topics=None)]), 8)
        assert [p.committed_offset for t in offsets.groups[0].topics for p in t.partitions] == [1]
    with admin_channel(broker) as ch:
        globex = rpc.TenantServiceStub(ch).GetTenant(pb.GetTenantRequest(name="globex"), timeout=TIMEOUT_S)
        assert dict(globex.quotas) == {"producer_byte_rate": 1e9}
        users = rpc.UserServiceStub(ch).ListScramUsers(pb.ListScramUsersRequest(), timeout=TIMEOUT_S)
        assert {"gina", "alice", "ann"} <= {u.name for u in users.users}


# ---------------------------------------------------------------------------- real clients

def _conf(broker, user: str, **extra) -> dict:
    return confluent_sasl(broker, user, _pw(user), MECHANISM, **extra)


def _error_name(future) -> str:
    with pytest.raises(KafkaException) as info:
        future.result(timeout=30)
    return info.value.args[0].name()


def test_confluent_admin_client_sees_and_touches_only_acme(broker):
    alice = AdminClient(_conf(broker, "alice"))
    topics = set(alice.list_topics(timeout=20).topics)
    assert OWN_TOPIC in topics and all(t.startswith("acme.") for t in topics), topics
    groups = {g.group_id for g in alice.list_consumer_groups(request_timeout=20).result(timeout=30).valid}
    assert OWN_GROUP in groups and all(g.startswith("acme.") for g in groups), groups
    for name in ("globex.orders", "globex.nothing"):
        (future,) = alice.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
        assert _error_name(future) == "TOPIC_AUTHORIZATION_FAILED"
        assert _error_name(alice.delete_topics([name], operation_timeout=10)[name]) == "TOPIC_AUTHORIZATION_FAILED"
    created = alice.create_topics([NewTopic("globex.new", 1, 1), NewTopic("acme.made-by-client", 1, 1)])
    assert _error_name(created["globex.new"]) == "TOPIC_AUTHORIZATION_FAILED"
    assert created["acme.made-by-client"].result(timeout=30) is None
    for group in ("globex.g", "globex.none"):
        assert _error_name(alice.delete_consumer_groups([group])[group]) == "GROUP_AUTHORIZATION_FAILED"
    ann = AdminClient(_conf(broker, "ann"))
    acls = ann.describe_acls(CkAclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                                AclOperation.ANY, AclPermissionType.ANY)).result(timeout=30)
    assert acls and all(a.name.startswith("acme.") for a in acls), acls
    spanning = CkAclBinding(ResourceType.TOPIC, "acme", ResourcePatternType.PREFIXED, "User:alice", "*", AclOperation.ALL,
                            AclPermissionType.ALLOW)
    (future,) = ann.create_acls([spanning]).values()
    assert _error_name(future) == "CLUSTER_AUTHORIZATION_FAILED"


def test_confluent_producer_and_consumer_stay_inside(broker):
    errors = []
    p = Producer(_conf(broker, "alice", **{"message.timeout.ms": 15000, "linger.ms": 0}))
    p.produce("globex.orders", b"x", on_delivery=lambda err, msg: errors.append(err))
    p.produce(OWN_TOPIC, b"mine", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert sorted(str(e and e.name()) for e in errors) == ["None", "TOPIC_AUTHORIZATION_FAILED"]
    for group, topic, expected in [("globex.g", OWN_TOPIC, KafkaError.GROUP_AUTHORIZATION_FAILED),
                                   (OWN_GROUP, "globex.orders", KafkaError.TOPIC_AUTHORIZATION_FAILED)]:
        consumer = Consumer(_conf(broker, "alice", **{"group.id": group, "auto.offset.reset": "earliest"}))
        try:
            consumer.subscribe([topic])
            deadline, seen = Deadline(20), []
            while not deadline.expired() and expected not in seen:
                msg = consumer.poll(0.5)
                if msg is not None:
                    assert msg.error() is not None, "a record came through"
                    seen.append(msg.error().code())
            assert expected in seen, seen
        finally:
            consumer.close()


def test_kafka_python_sees_and_touches_only_acme(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: PLC0415
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError  # noqa: PLC0415

    conf = kafka_python_sasl(broker, "alice", _pw("alice"), MECHANISM)
    consumer = KafkaConsumer(**conf)
    try:
        topics = consumer.topics()
        assert OWN_TOPIC in topics and all(t.startswith("acme.") for t in topics), topics
    finally:
        consumer.close()
    admin = KafkaAdminClient(**conf)
    try:
        groups = [g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()]
        assert OWN_GROUP in groups and all(g.startswith("acme.") for g in groups), groups
        offsets = admin.list_group_offsets({OWN_GROUP: None})
        assert {tp.topic for tp in offsets[OWN_GROUP]} == {OWN_TOPIC}, offsets
        for group in ("globex.g", "globex.none"):
            with pytest.raises(GroupAuthorizationFailedError):
                admin.delete_groups([group])
    finally:
        admin.close()
    producer = KafkaProducer(**conf, max_block_ms=15000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("globex.orders", b"x").get(timeout=20)
        assert producer.send(OWN_TOPIC, b"mine").get(timeout=20).topic == OWN_TOPIC
    finally:
        producer.close()



# ---------------------------------------------------------------------------- with rights on the cluster

# What the platform may grant a tenant's members on the cluster (here ALL) never opens other tenants:
# cluster-wide rights that stand in for per-topic ones (follower Fetch and OffsetForLeaderEpoch with
# ClusterAction, DeleteTopics with Cluster Delete, CreateTopics with Cluster Create) do not apply to a
# tenant's session, and SCRAM users and client quotas are listed and changed inside the tenant only.
UNDER_CLUSTER_RIGHTS = {"describe acls by name (tenant admin)": 0, "delete acls by name (tenant admin)": 0,
                        "describe scram credentials": E.RESOURCE_NOT_FOUND, "describe client quotas of a user": 0,
                        "describe client quotas of a tenant": 0}


@pytest.fixture(scope="module")
def cluster_rights(broker, conns):
    grant = [_acl(f"User:{who}", 4, "kafka-cluster") for who in ATTACKERS]
    with wire(broker) as admin:
        assert [r.error_code for r in admin.request(CreateAclsRequest(creations=grant), 3).results] == [0, 0]
        yield
        drop = [DeleteAclsFilter(4, "kafka-cluster", 3, f"User:{who}", "*", 2, 3) for who in ATTACKERS]
        assert [r.error_code for r in admin.request(DeleteAclsRequest(filters=drop), 3).filter_results] == [0, 0]


@pytest.mark.parametrize("who", ATTACKERS)
@pytest.mark.parametrize("name, build, version, expected, targets", CASES)
def test_rights_on_the_cluster_open_nothing_outside(cluster_rights, conns, who, name, build, version, expected,
                                                    targets):
    expected = UNDER_CLUSTER_RIGHTS.get(name, expected)
    expected = expected[who] if isinstance(expected, dict) else expected
    for present, absent in targets:
        probe(conns[who], build, version, present, absent, expected)


def test_rights_on_the_cluster_list_only_the_tenants_users_and_quotas(cluster_rights, conns):
    raw, users = exchange(conns["alice"], DescribeUserScramCredentialsRequest(users=None), 0)
    assert users.error_code == 0
    assert sorted(r.user for r in users.results) == ["alice", "ann"]
    raw += exchange(conns["alice"], DescribeClientQuotasRequest(components=[], strict=False), 1)[0]
    assert not [m for m in FOREIGN if m in raw]
