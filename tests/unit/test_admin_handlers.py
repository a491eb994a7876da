"""Admin handlers in-process over real storage: topics, configs, cluster, offsets, producer ids.

Every call goes through the wire codecs at the version under test (request encoded and decoded, the
handler run, the response encoded and decoded), so a test sees what a client of that version sees.
"""

import asyncio
import os
import time

import pytest

from keystream.auth.principal import ANONYMOUS, Session
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode as E
from keystream.broker.handlers import HANDLERS, configs
from keystream.broker.log.config import OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT
from keystream.broker.protocol.codec import ZERO_UUID, Writer
from keystream.broker.protocol.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
from keystream.broker.protocol.messages.create_partitions_request import (
    CreatePartitionsAssignment,
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from keystream.broker.protocol.messages.create_topics_request import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
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
from keystream.broker.protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
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
from keystream.broker.records import build_batch
from keystream.config import Config, load_config

TOPIC, BROKER = 2, 4
T0 = int(time.time() * 1000) - 3_600_000


# ---------------------------------------------------------------------------- harness

@pytest.fixture
def make_broker(tmp_path):
    made = []

    def make(**overrides) -> Broker:
        props = {"log.dirs": str(tmp_path / f"data{len(made)}"), "listeners": "PLAINTEXT://127.0.0.1:9092",
                 "super.users": "User:ANONYMOUS", **overrides}  # authorization is always on
        broker = Broker(load_config(None, overrides=props, environ={}))
        broker.logs.load()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.logs.close()


@pytest.fixture
def broker(make_broker) -> Broker:
    return make_broker()


def _wire(msg, version: int) -> memoryview:
    w = Writer()
    msg.encode(w, version)
    return memoryview(b"".join(bytes(part) for part in w.getbuffers()))


def call(broker, req, version: int):
    """The registered handler at `version`, with request and response through the codecs."""
    handler = HANDLERS[type(req).API_KEY]
    assert handler.supports(version)
    decoded_req, _ = type(req).decode(_wire(req, version), 0, version)
    ctx = RequestContext(broker, version, 7, "test-client", Session(ANONYMOUS, "127.0.0.1"))
    resp = asyncio.run(handler.fn(ctx, decoded_req))
    raw = _wire(resp, version)
    decoded, end = handler.response_cls.decode(raw, 0, version)
    assert end == len(raw)
    return decoded


def create(broker, name, partitions=1, rf=-1, configs=None, version=7, assignments=(), validate_only=False):
    topic = CreatableTopic(name, partitions, rf, list(assignments),
                           [CreatableTopicConfig(k, v) for k, v in (configs or {}).items()])
    return call(broker, CreateTopicsRequest(topics=[topic], timeout_ms=1000, validate_only=validate_only),
                version).topics[0]


def produce(broker, topic, timestamps, partition=0):
    recs = [(b"k", b"v", [], ts) for ts in timestamps]
    batch = build_batch(recs)
    req = ProduceRequest(acks=1, timeout_ms=1000,
                         topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, batch)])])
    resp = call(broker, req, 9)
    assert resp.responses[0].partition_responses[0].error_code == 0


def test_every_handler_serves_every_version_of_its_spec():
    for cls in (CreateTopicsRequest, DeleteTopicsRequest, CreatePartitionsRequest, DescribeConfigsRequest,
                AlterConfigsRequest, IncrementalAlterConfigsRequest, DescribeClusterRequest, ListOffsetsRequest,
                DeleteRecordsRequest, OffsetForLeaderEpochRequest, InitProducerIdRequest):
        handler = HANDLERS[cls.API_KEY]
        assert (handler.min_version, handler.max_version) == cls.VALID_VERSIONS, cls.__name__


# ---------------------------------------------------------------------------- CreateTopics

def test_create_topics_v4_answers_without_configs(broker):
    r = create(broker, "orders", 3, 1, version=4)
    assert (r.name, r.error_code, r.error_message) == ("orders", 0, None)
    assert len(broker.logs.topics["orders"].partitions) == 3
    assert r.num_partitions == -1 and r.configs == []  # not in v4: decoded as defaults


def test_create_topics_v5_returns_partitions_replication_and_configs(make_broker):
    broker = make_broker(**{"num.partitions": 2})
    r = create(broker, "events", -1, -1, {"cleanup.policy": "compact"}, version=5)
    assert r.error_code == 0 and r.num_partitions == 2 and r.replication_factor == 1
    assert [c.name for c in r.configs] == sorted(c.name for c in r.configs)
    by_name = {c.name: c for c in r.configs}
    assert (by_name["cleanup.policy"].value, by_name["cleanup.policy"].config_source) == ("compact", 1)
    assert (by_name["retention.ms"].value, by_name["retention.ms"].config_source) == ("604800000", 5)
    assert r.topic_id == ZERO_UUID  # topic ids only from v7
    r7 = create(broker, "events2", 1, 1, version=7)
    assert r7.topic_id == broker.logs.topics["events2"].topic_id != ZERO_UUID


def test_create_topics_validate_only_creates_nothing(broker):
    r = create(broker, "dry", 4, 1, {"retention.ms": "1000"}, version=5, validate_only=True)
    assert r.error_code == 0 and r.num_partitions == 4
    assert "dry" not in broker.logs.topics


@pytest.mark.parametrize("kwargs, code, text", [
    ({"name": "bad name"}, E.INVALID_TOPIC_EXCEPTION, "ASCII alphanumerics"),
    ({"name": "x" * 250}, E.INVALID_TOPIC_EXCEPTION, "249"),
    ({"partitions": 0}, E.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value."),
    ({"partitions": -2}, E.INVALID_PARTITIONS, "non-positive"),
    ({"rf": 3}, E.INVALID_REPLICATION_FACTOR, "Unable to replicate the partition 3 time(s): The target "
     "replication factor of 3 cannot be reached because only 1 broker(s) are registered."),
    ({"rf": 0}, E.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1"),
    ({"configs": {"no.such.config": "1"}}, E.INVALID_CONFIG, "Unknown topic config name: no.such.config"),
    ({"configs": {"retention.ms": "soon"}}, E.INVALID_CONFIG, "retention.ms"),
    ({"configs": {"retention.ms": None}}, E.INVALID_CONFIG, "Null value not supported for topic configs: retention.ms"),
    ({"configs": {"retention.ms": "x"}, "rf": 3}, E.INVALID_CONFIG, "retention.ms"),  # configs are checked first
    ({"partitions": 2, "assignments": [CreatableReplicaAssignment(0, [1])]}, E.INVALID_REQUEST,
     "numPartitions was not set to -1"),
    ({"partitions": -1, "rf": 1, "assignments": [CreatableReplicaAssignment(0, [1])]}, E.INVALID_REQUEST,
     "replication factor was not set to -1"),
    ({"partitions": -1, "assignments": [CreatableReplicaAssignment(0, [2])]}, E.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes broker 2, but no such broker is registered."),
    ({"partitions": -1, "assignments": [CreatableReplicaAssignment(0, [1, 1])]}, E.INVALID_REPLICA_ASSIGNMENT,
     "includes the broker 1 more than once"),
    ({"partitions": -1, "assignments": [CreatableReplicaAssignment(0, [])]}, E.INVALID_REPLICA_ASSIGNMENT,
     "empty replica list"),
    ({"partitions": -1, "assignments": [CreatableReplicaAssignment(1, [1])]}, E.INVALID_REPLICA_ASSIGNMENT,
     "partitions should be a consecutive 0-based integer sequence"),
    ({"partitions": -1, "assignments": [CreatableReplicaAssignment(0, [1]), CreatableReplicaAssignment(0, [1])]},
     E.INVALID_REPLICA_ASSIGNMENT, "Found multiple manual partition assignments for partition 0"),
    ({"name": "__cluster_metadata"}, E.INVALID_REQUEST, "Creation of internal topic __cluster_metadata is prohibited."),
])
def test_create_topics_errors(broker, kwargs, code, text):
    kwargs = {"name": "t", **kwargs}
    r = create(broker, **kwargs)
    assert r.error_code == code
    assert text in r.error_message
    assert r.topic_id == ZERO_UUID and r.num_partitions == -1
    assert kwargs["name"] not in broker.logs.topics


def test_create_topics_existing_colliding_and_duplicate_names(broker):
    assert create(broker, "a.b").error_code == 0
    again = create(broker, "a.b")
    assert (again.error_code, again.error_message) == (E.TOPIC_ALREADY_EXISTS, "Topic 'a.b' already exists.")
    clash = create(broker, "a_b")
    assert clash.error_code == E.INVALID_TOPIC_EXCEPTION and "collides with existing topic: a.b" in clash.error_message
    req = CreateTopicsRequest(topics=[CreatableTopic("dup", 1, 1), CreatableTopic("dup", 2, 1),
                                      CreatableTopic("solo", 1, 1)])
    results = {t.name: t for t in call(broker, req, 7).topics}
    assert len(call(broker, req, 7).topics) == 2
    assert (results["dup"].error_code, results["dup"].error_message) == (E.INVALID_REQUEST, "Duplicate topic name.")
    assert "dup" not in broker.logs.topics and "solo" in broker.logs.topics


def test_create_topics_manual_assignment_and_default_partitions(make_broker):
    broker = make_broker(**{"num.partitions": 3})
    r = create(broker, "manual", -1, assignments=[CreatableReplicaAssignment(i, [1]) for i in range(2)])
    assert r.error_code == 0 and len(broker.logs.topics["manual"].partitions) == 2
    assert create(broker, "defaulted", -1, -1, version=4).error_code == 0
    assert len(broker.logs.topics["defaulted"].partitions) == 3


def test_create_topics_v0_has_no_message_but_same_codes(broker):
    r = create(broker, "bad name", version=0)
    assert r.error_code == E.INVALID_TOPIC_EXCEPTION and r.error_message == ""  # absent in v0


# ---------------------------------------------------------------------------- DeleteTopics

def test_delete_topics_by_name_v0_to_v5(broker):
    for version in (0, 3, 5):
        create(broker, f"gone{version}", 2)
        plog_dir = broker.logs.topics[f"gone{version}"].partitions[0].dir
        r = call(broker, DeleteTopicsRequest(topic_names=[f"gone{version}", "never"], timeout_ms=1000), version)
        results = {x.name: x for x in r.responses}
        assert results[f"gone{version}"].error_code == 0
        assert results["never"].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
        assert f"gone{version}" not in broker.logs.topics
        assert not os.path.exists(plog_dir)
    assert results["never"].error_message == "This server does not host this topic-partition."


def test_delete_topics_v6_by_id_and_invalid_combinations(broker):
    create(broker, "by-id")
    create(broker, "by-name")
    tid = broker.logs.topics["by-id"].topic_id
    unknown = bytes(range(1, 17))
    req = DeleteTopicsRequest(topics=[
        DeleteTopicState(None, tid), DeleteTopicState("by-name", ZERO_UUID), DeleteTopicState(None, unknown),
        DeleteTopicState("x", unknown), DeleteTopicState(None, ZERO_UUID)], timeout_ms=1000)
    r = call(broker, req, 6)
    got = sorted((x.name or "", x.topic_id, x.error_code, x.error_message or "") for x in r.responses)
    assert got == sorted([
        ("by-id", tid, 0, ""),
        ("by-name", got[[g[0] for g in got].index("by-name")][1], 0, ""),
        ("", unknown, E.UNKNOWN_TOPIC_ID, "This server does not host this topic ID."),
        ("x", unknown, E.INVALID_REQUEST, "You may not specify both topic name and topic id."),
        ("", ZERO_UUID, E.INVALID_REQUEST, "Neither topic name nor id were specified."),
    ])
    assert not broker.logs.topics


def test_delete_topics_duplicates(broker):
    create(broker, "d")
    tid = broker.logs.topics["d"].topic_id
    r = call(broker, DeleteTopicsRequest(topics=[DeleteTopicState("d"), DeleteTopicState("d")]), 6)
    assert [(x.name, x.error_code, x.error_message) for x in r.responses] == [
        ("d", E.INVALID_REQUEST, "Duplicate topic name.")]
    r = call(broker, DeleteTopicsRequest(topics=[DeleteTopicState(None, tid), DeleteTopicState("d")]), 6)
    assert [(x.name, x.error_code) for x in r.responses] == [("d", E.INVALID_REQUEST)]
    assert "d" in broker.logs.topics


def test_delete_topics_refuses_internal_topics(broker):
    broker.logs.create_topic("__consumer_offsets", 1, internal=True)
    r = call(broker, DeleteTopicsRequest(topic_names=["__consumer_offsets"]), 5)
    assert r.responses[0].error_code == E.INVALID_TOPIC_EXCEPTION
    assert "internal topic" in r.responses[0].error_message
    assert "__consumer_offsets" in broker.logs.topics


@pytest.mark.parametrize("version, code", [(2, E.INVALID_REQUEST), (3, E.TOPIC_DELETION_DISABLED),
                                           (6, E.TOPIC_DELETION_DISABLED)])
def test_delete_topics_disabled(make_broker, version, code):
    broker = make_broker(**{"delete.topic.enable": False})
    create(broker, "kept")
    req = (DeleteTopicsRequest(topics=[DeleteTopicState("kept")]) if version >= 6
           else DeleteTopicsRequest(topic_names=["kept"]))
    r = call(broker, req, version)
    assert [(x.name, x.error_code) for x in r.responses] == [("kept", code)]
    assert "kept" in broker.logs.topics


# ---------------------------------------------------------------------------- CreatePartitions

def grow(broker, name, count, assignments=None, validate_only=False, version=3):
    req = CreatePartitionsRequest(topics=[CreatePartitionsTopic(name, count, assignments)], timeout_ms=1000,
                                  validate_only=validate_only)
    return call(broker, req, version).results[0]


def test_create_partitions(broker):
    create(broker, "p", 1)
    assert grow(broker, "p", 3, validate_only=True).error_code == 0
    assert len(broker.logs.topics["p"].partitions) == 1
    r = grow(broker, "p", 3, version=0)
    assert (r.error_code, r.error_message) == (0, None)
    assert len(broker.logs.topics["p"].partitions) == 3
    r = grow(broker, "p", 5, [CreatePartitionsAssignment([1]), CreatePartitionsAssignment([1])])
    assert r.error_code == 0 and len(broker.logs.topics["p"].partitions) == 5


@pytest.mark.parametrize("count, assignments, code, text", [
    (1, None, E.INVALID_PARTITIONS, "Topic already has 1 partition(s)."),
    (0, None, E.INVALID_PARTITIONS, "The topic p currently has 1 partition(s); 0 would not be an increase."),
    (3, [CreatePartitionsAssignment([1])], E.INVALID_REPLICA_ASSIGNMENT,
     "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
    (2, [CreatePartitionsAssignment([5])], E.INVALID_REPLICA_ASSIGNMENT, "includes broker 5, but no such broker"),
    (2, [CreatePartitionsAssignment([1, 1])], E.INVALID_REPLICA_ASSIGNMENT, "more than once"),
])
def test_create_partitions_errors(broker, count, assignments, code, text):
    create(broker, "p", 1)
    r = grow(broker, "p", count, assignments)
    assert r.error_code == code and text in r.error_message
    assert len(broker.logs.topics["p"].partitions) == 1


def test_create_partitions_unknown_duplicate_and_internal(broker):
    broker.logs.create_topic("__consumer_offsets", 1, internal=True)
    req = CreatePartitionsRequest(topics=[CreatePartitionsTopic("missing", 2), CreatePartitionsTopic("d", 2),
                                          CreatePartitionsTopic("d", 3), CreatePartitionsTopic("__consumer_offsets", 2)])
    results = {r.name: r for r in call(broker, req, 2).results}
    assert results["missing"].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert (results["d"].error_code, results["d"].error_message) == (E.INVALID_REQUEST, "Duplicate topic name.")
    assert results["__consumer_offsets"].error_code == E.INVALID_TOPIC_EXCEPTION
    assert len(broker.logs.topics["__consumer_offsets"].partitions) == 1


# ---------------------------------------------------------------------------- DescribeConfigs

def describe(broker, rtype, name, keys=None, version=4, synonyms=True, docs=True):
    req = DescribeConfigsRequest(resources=[DescribeConfigsResource(rtype, name, keys)], include_synonyms=synonyms,
                                 include_documentation=docs)
    return call(broker, req, version).results[0]


def test_describe_topic_configs_by_version(broker):
    create(broker, "c", configs={"retention.ms": "1000"})
    v0 = {c.name: c for c in describe(broker, TOPIC, "c", version=0).configs}
    assert v0["retention.ms"].value == "1000" and v0["retention.ms"].is_default is False
    assert v0["segment.bytes"].is_default is True
    v1 = {c.name: c for c in describe(broker, TOPIC, "c", version=1).configs}
    assert v1["retention.ms"].config_source == 1
    assert [(s.name, s.source) for s in v1["retention.ms"].synonyms][0] == ("retention.ms", 1)
    assert (v1["retention.ms"].config_type, v1["retention.ms"].documentation) == (0, "")  # absent before v3
    v3 = describe(broker, TOPIC, "c", ["retention.ms", "cleanup.policy", "no.such"], version=3)
    by_name = {c.name: c for c in v3.configs}
    assert set(by_name) == {"retention.ms", "cleanup.policy"}
    assert by_name["retention.ms"].config_type == 5 and by_name["cleanup.policy"].config_type == 7
    assert by_name["retention.ms"].documentation
    plain = describe(broker, TOPIC, "c", ["retention.ms"], synonyms=False, docs=False)
    assert plain.configs[0].synonyms == [] and plain.configs[0].documentation is None


def test_describe_topic_errors(broker):
    r = describe(broker, TOPIC, "missing")
    assert (r.error_code, r.configs) == (E.UNKNOWN_TOPIC_OR_PARTITION, [])
    assert describe(broker, TOPIC, "bad/name").error_code == E.INVALID_TOPIC_EXCEPTION
    assert describe(broker, 32, "group").error_code == E.INVALID_REQUEST


def test_describe_unknown_resource_type_fails_every_resource(broker):
    create(broker, "ok")
    req = DescribeConfigsRequest(resources=[DescribeConfigsResource(TOPIC, "ok", None),
                                            DescribeConfigsResource(99, "x", None)])
    r = call(broker, req, 4)
    assert [x.error_code for x in r.results] == [E.INVALID_REQUEST, E.INVALID_REQUEST]


def test_describe_broker_configs(make_broker):
    broker = make_broker(**{"log.retention.ms": 1000, "num.partitions": 4})
    r = describe(broker, BROKER, "1")
    assert r.error_code == 0
    by_name = {c.name: c for c in r.configs}
    assert set(by_name) == set(broker.config)
    assert all(c.read_only for c in r.configs)
    parts = by_name["num.partitions"]
    assert (parts.value, parts.config_source, parts.config_type) == ("4", 4, 3)
    assert [(s.name, s.value, s.source) for s in parts.synonyms] == [("num.partitions", "4", 4),
                                                                     ("num.partitions", "1", 5)]
    assert parts.documentation
    ms = by_name["log.retention.ms"]
    assert (ms.value, ms.config_source) == ("1000", 4)
    assert [(s.name, s.source) for s in ms.synonyms] == [("log.retention.ms", 4), ("log.retention.hours", 5)]
    hours = by_name["log.retention.hours"]
    assert [(s.name, s.source) for s in hours.synonyms] == [("log.retention.hours", 5)]
    assert by_name["auto.create.topics.enable"].value == "false"
    only = describe(broker, BROKER, "1", ["num.partitions"], version=0)
    assert [(c.name, c.is_default) for c in only.configs] == [("num.partitions", False)]


def test_describe_broker_resource_names(broker):
    assert (describe(broker, BROKER, "").error_code, describe(broker, BROKER, "").configs) == (0, [])
    other = describe(broker, BROKER, "2")
    assert other.error_code == E.INVALID_REQUEST
    assert other.error_message == "Unexpected broker id, expected 1 or empty string, but received 2"
    assert describe(broker, BROKER, "one").error_message == "Broker id must be an integer, but it is: one"


def test_broker_passwords_are_sensitive(tmp_path):
    config = Config({"ssl.key.password": "hunter2", "log.dirs": str(tmp_path)})
    entry = next(e for e in configs._broker_entries(config, None, True, False) if e.name == "ssl.key.password")
    assert (entry.value, entry.is_sensitive, entry.config_type) == (None, True, 9)
    assert all(s.value is None for s in entry.synonyms)


# ---------------------------------------------------------------------------- AlterConfigs

def alter(broker, rtype, name, values, validate_only=False, version=2):
    res = AlterConfigsResource(rtype, name, [AlterableConfig(k, v) for k, v in values.items()])
    return call(broker, AlterConfigsRequest(resources=[res], validate_only=validate_only), version).responses[0]


def test_alter_configs_replaces_all_overrides(broker):
    create(broker, "a", configs={"retention.ms": "1000", "cleanup.policy": "compact"})
    assert alter(broker, TOPIC, "a", {"segment.bytes": "1048576"}, validate_only=True).error_code == 0
    assert broker.logs.topics["a"].overrides == {"retention.ms": "1000", "cleanup.policy": "compact"}
    r = alter(broker, TOPIC, "a", {"segment.bytes": "1048576"}, version=0)
    assert (r.error_code, r.error_message) == (0, None)
    assert broker.logs.topics["a"].overrides == {"segment.bytes": "1048576"}
    assert broker.logs.topics["a"].config.segment_bytes == 1048576


@pytest.mark.parametrize("rtype, name, values, code, text", [
    (TOPIC, "missing", {"retention.ms": "1"}, E.UNKNOWN_TOPIC_OR_PARTITION, "The topic 'missing' does not exist."),
    (TOPIC, "missing", {"retention.ms": "x"}, E.INVALID_CONFIG, "retention.ms"),  # validated before existence
    (TOPIC, "a", {"no.such": "1"}, E.INVALID_CONFIG, "Unknown topic config name: no.such"),
    (TOPIC, "a", {"retention.ms": None}, E.INVALID_REQUEST, "Null value not supported for : retention.ms"),
    (TOPIC, "", {"retention.ms": "1"}, E.INVALID_REQUEST, "Default topic resources are not allowed."),
    (BROKER, "1", {"num.partitions": "3", "log.retention.ms": "1"}, E.INVALID_REQUEST,
     "Cannot update these configs dynamically: Set(num.partitions, log.retention.ms)"),
    (BROKER, "", {"num.partitions": "3"}, E.INVALID_REQUEST, "Cannot update these configs dynamically"),
    (BROKER, "7", {"num.partitions": "3"}, E.INVALID_REQUEST, "Unexpected broker id, expected 1, but received 7"),
    (8, "1", {"x": "y"}, E.INVALID_REQUEST, "Unknown resource type 8"),
])
def test_alter_configs_errors(broker, rtype, name, values, code, text):
    create(broker, "a", configs={"retention.ms": "1000"})
    r = alter(broker, rtype, name, values)
    assert r.error_code == code and text in r.error_message
    assert broker.logs.topics["a"].overrides == {"retention.ms": "1000"}


def test_alter_configs_duplicates_and_empty_broker_change(broker):
    create(broker, "a")
    res = AlterConfigsResource(TOPIC, "a", [AlterableConfig("retention.ms", "1")])
    r = call(broker, AlterConfigsRequest(resources=[res, res]), 1)
    assert [(x.error_code, x.error_message) for x in r.responses] == [
        (E.INVALID_REQUEST, "Each resource must appear at most once.")] * 2
    keys = AlterConfigsResource(TOPIC, "a", [AlterableConfig("retention.ms", "1"), AlterableConfig("retention.ms", "2")])
    assert call(broker, AlterConfigsRequest(resources=[keys]), 1).responses[0].error_message == (
        "Error due to duplicate config keys")
    assert alter(broker, BROKER, "1", {}).error_code == 0


# ---------------------------------------------------------------------------- IncrementalAlterConfigs

def incremental(broker, rtype, name, ops, validate_only=False, version=1):
    res = IncrementalResource(rtype, name, [IncrementalConfig(n, op, v) for n, op, v in ops])
    req = IncrementalAlterConfigsRequest(resources=[res], validate_only=validate_only)
    return call(broker, req, version).responses[0]


def test_incremental_alter_set_delete_append_subtract(broker):
    create(broker, "i", configs={"retention.ms": "1000"})

    def overrides():
        return broker.logs.topics["i"].overrides

    assert incremental(broker, TOPIC, "i", [("segment.bytes", OP_SET, "1048576")], validate_only=True).error_code == 0
    assert overrides() == {"retention.ms": "1000"}
    r = incremental(broker, TOPIC, "i", [("segment.bytes", OP_SET, "1048576"), ("retention.ms", OP_DELETE, None)],
                    version=0)
    assert (r.error_code, r.error_message) == (0, None)
    assert overrides() == {"segment.bytes": "1048576"}
    assert incremental(broker, TOPIC, "i", [("cleanup.policy", OP_APPEND, "compact")]).error_code == 0
    assert overrides()["cleanup.policy"] == "delete,compact"
    assert incremental(broker, TOPIC, "i", [("cleanup.policy", OP_SUBTRACT, "delete")]).error_code == 0
    assert overrides()["cleanup.policy"] == "compact"
    assert broker.logs.topics["i"].config.compact and not broker.logs.topics["i"].config.delete
    assert incremental(broker, TOPIC, "i", [("no.such.config", OP_DELETE, None)]).error_code == 0


@pytest.mark.parametrize("rtype, name, ops, code, text", [
    (TOPIC, "i", [("retention.ms", OP_APPEND, "5")], E.INVALID_CONFIG, "retention.ms"),
    (TOPIC, "i", [("retention.ms", OP_SET, "x")], E.INVALID_CONFIG, "retention.ms"),
    (TOPIC, "i", [("no.such", OP_SET, "1")], E.INVALID_CONFIG, "Unknown topic config name: no.such"),
    (TOPIC, "i", [("retention.ms", OP_SET, None)], E.INVALID_REQUEST, "Null value not supported for : retention.ms"),
    (TOPIC, "i", [("retention.ms", 9, "1")], E.INVALID_REQUEST, "Unknown operations type 9"),
    (TOPIC, "missing", [("retention.ms", OP_SET, "1")], E.UNKNOWN_TOPIC_OR_PARTITION, "does not exist"),
    (BROKER, "1", [("num.partitions", OP_SET, "2")], E.INVALID_REQUEST,
     "Cannot update these configs dynamically: Set(num.partitions)"),
    (BROKER, "1", [("num.partitions", OP_APPEND, "2")], E.INVALID_CONFIG,
     "Config value append is not allowed for config key: num.partitions"),
    (8, "1", [("root", OP_SET, "DEBUG")], E.INVALID_REQUEST, "Unsupported resource type: BROKER_LOGGER"),
    (77, "x", [("a", OP_SET, "b")], E.INVALID_REQUEST, "Unknown resource type 77"),
])
def test_incremental_alter_errors(broker, rtype, name, ops, code, text):
    create(broker, "i", configs={"retention.ms": "1000"})
    r = incremental(broker, rtype, name, ops)
    assert r.error_code == code and text in r.error_message
    assert broker.logs.topics["i"].overrides == {"retention.ms": "1000"}


def test_incremental_delete_of_static_broker_config_is_a_no_op(broker):
    assert incremental(broker, BROKER, "1", [("num.partitions", OP_DELETE, None)]).error_code == 0


# ---------------------------------------------------------------------------- DescribeCluster

def test_describe_cluster(broker):
    for version in (0, 1):
        r = call(broker, DescribeClusterRequest(include_cluster_authorized_operations=True), version)
        assert (r.error_code, r.cluster_id, r.controller_id) == (0, broker.cluster_id, 1)
        assert [(b.broker_id, b.host, b.port, b.rack) for b in r.brokers] == [(1, "127.0.0.1", 9092, None)]
        assert r.cluster_authorized_operations > 0
    plain = call(broker, DescribeClusterRequest(), 1)
    assert plain.cluster_authorized_operations == -2147483648 and plain.endpoint_type == 1


def test_describe_cluster_endpoint_types(broker):
    r = call(broker, DescribeClusterRequest(endpoint_type=2), 1)
    assert r.error_code == E.MISMATCHED_ENDPOINT_TYPE
    assert r.error_message == ("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of "
                               "type CONTROLLER")
    r = call(broker, DescribeClusterRequest(endpoint_type=5), 1)
    assert (r.error_code, r.error_message) == (E.UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type 5")


# ---------------------------------------------------------------------------- ListOffsets

def list_offsets(broker, topic, *parts, version=9, replica_id=-1, isolation=0):
    """`parts`: (partition, timestamp) or (partition, timestamp, current_leader_epoch)."""
    partitions = [ListOffsetsPartition(p[0], p[2] if len(p) > 2 else -1, p[1], 10) for p in parts]
    req = ListOffsetsRequest(replica_id=replica_id, isolation_level=isolation,
                             topics=[ListOffsetsTopic(topic, partitions)])
    return call(broker, req, version).topics[0].partitions


@pytest.fixture
def loaded(broker):
    """Topic `lo` with 4 records at offsets 0-3: timestamps T0, T0+10, T0+20 then T0+5."""
    create(broker, "lo", 2)
    produce(broker, "lo", [T0, T0 + 10, T0 + 20])
    produce(broker, "lo", [T0 + 5])
    return broker


def answer(p):
    return p.error_code, p.timestamp, p.offset, p.leader_epoch


def test_list_offsets_latest_earliest_and_by_timestamp(loaded):
    assert answer(list_offsets(loaded, "lo", (0, -1))[0]) == (0, -1, 4, 0)
    assert answer(list_offsets(loaded, "lo", (0, -2))[0]) == (0, -1, 0, 0)
    assert answer(list_offsets(loaded, "lo", (0, T0 + 6))[0]) == (0, T0 + 10, 1, 0)
    assert answer(list_offsets(loaded, "lo", (0, T0 + 21))[0]) == (0, -1, -1, -1)
    assert answer(list_offsets(loaded, "lo", (1, -1))[0]) == (0, -1, 0, 0)
    assert answer(list_offsets(loaded, "lo", (0, -1), version=1)[0]) == (0, -1, 4, -1)  # no epoch before v4
    assert answer(list_offsets(loaded, "lo", (0, -1), version=2, isolation=1)[0]) == (0, -1, 4, -1)


def test_list_offsets_latest_includes_each_acknowledged_record(broker):
    create(broker, "acked")
    for n in range(1, 4):
        produce(broker, "acked", [T0 + n])
        assert list_offsets(broker, "acked", (0, -1))[0].offset == n


@pytest.mark.parametrize("timestamp, version, expected", [
    (-3, 7, (0, T0 + 20, 2, 0)),
    (-3, 6, (E.UNSUPPORTED_VERSION, -1, -1, -1)),
    (-4, 8, (0, -1, 0, 0)),
    (-4, 7, (E.UNSUPPORTED_VERSION, -1, -1, -1)),
    (-5, 9, (0, -1, -1, -1)),
    (-5, 8, (E.UNSUPPORTED_VERSION, -1, -1, -1)),
    (-6, 10, (E.UNSUPPORTED_VERSION, -1, -1, -1)),
])
def test_list_offsets_special_timestamps_by_version(loaded, timestamp, version, expected):
    assert answer(list_offsets(loaded, "lo", (0, timestamp), version=version)[0]) == expected


def test_list_offsets_errors(loaded):
    assert list_offsets(loaded, "lo", (0, -1, 1))[0].error_code == E.UNKNOWN_LEADER_EPOCH
    assert list_offsets(loaded, "lo", (0, -1, 0))[0].error_code == 0
    loaded.logs.topics["lo"].partitions[0].leader_epoch = 3
    assert list_offsets(loaded, "lo", (0, -1, 2))[0].error_code == E.FENCED_LEADER_EPOCH
    assert list_offsets(loaded, "missing", (0, -1))[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert list_offsets(loaded, "lo", (9, -1))[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    dup = list_offsets(loaded, "lo", (1, -1), (1, -2), (0, -1))
    assert [(p.partition_index, p.error_code) for p in dup] == [(1, E.INVALID_REQUEST), (0, 0)]


def test_list_offsets_v0_old_style_offsets(loaded):
    def v0(timestamp, max_num=10, partition=0):
        req = ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsTopic("lo", [ListOffsetsPartition(partition, timestamp=timestamp, max_num_offsets=max_num)])])
        p = call(loaded, req, 0).topics[0].partitions[0]
        return p.error_code, p.old_style_offsets

    assert v0(-1) == (0, [4, 0])  # the log end, then the start of the (only) segment
    assert v0(-1, max_num=1) == (0, [4])
    assert v0(-2) == (0, [0])
    assert v0(0) == (0, [])  # nothing was written before 1970
    assert v0(-1, partition=1) == (0, [0])  # an empty log: just its start
    assert v0(-3)[0] == E.UNSUPPORTED_VERSION
    req = ListOffsetsRequest(topics=[ListOffsetsTopic("missing", [ListOffsetsPartition(0, timestamp=-1)])])
    assert call(loaded, req, 0).topics[0].partitions[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION


# ---------------------------------------------------------------------------- DeleteRecords

def delete_records(broker, topic, *parts, version=2):
    req = DeleteRecordsRequest(topics=[DeleteRecordsTopic(topic, [DeleteRecordsPartition(p, o) for p, o in parts])],
                               timeout_ms=1000)
    return [(r.partition_index, r.low_watermark, r.error_code) for r in call(broker, req, version).topics[0].partitions]


def test_delete_records_moves_the_log_start(loaded):
    assert delete_records(loaded, "lo", (0, 2), version=0) == [(0, 2, 0)]
    assert list_offsets(loaded, "lo", (0, -2))[0].offset == 2
    assert delete_records(loaded, "lo", (0, 1)) == [(0, 2, 0)]  # never moves back
    assert delete_records(loaded, "lo", (0, 5)) == [(0, -1, E.OFFSET_OUT_OF_RANGE)]
    assert delete_records(loaded, "lo", (0, -7)) == [(0, -1, E.OFFSET_OUT_OF_RANGE)]
    assert delete_records(loaded, "lo", (0, -1)) == [(0, 4, 0)]  # -1: up to the high watermark
    assert delete_records(loaded, "lo", (7, 1)) == [(7, -1, E.UNKNOWN_TOPIC_OR_PARTITION)]
    assert delete_records(loaded, "missing", (0, 1)) == [(0, -1, E.UNKNOWN_TOPIC_OR_PARTITION)]


def test_delete_records_refused_for_internal_and_compacted_topics(broker):
    broker.logs.create_topic("__consumer_offsets", 1, internal=True)
    assert delete_records(broker, "__consumer_offsets", (0, 0)) == [(0, -1, E.INVALID_TOPIC_EXCEPTION)]
    create(broker, "compacted", configs={"cleanup.policy": "compact"})
    assert delete_records(broker, "compacted", (0, 0)) == [(0, -1, E.POLICY_VIOLATION)]


# ---------------------------------------------------------------------------- OffsetForLeaderEpoch

def epoch_end(broker, topic, partition, epoch, current=-1, version=4):
    req = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderTopic(topic, [OffsetForLeaderPartition(partition, current, epoch)])])
    p = call(broker, req, version).topics[0].partitions[0]
    return p.error_code, p.leader_epoch, p.end_offset


def test_offset_for_leader_epoch(loaded):
    assert epoch_end(loaded, "lo", 0, 0) == (0, 0, 4)
    assert epoch_end(loaded, "lo", 0, 0, version=0) == (0, -1, 4)  # no leader epoch field in v0
    assert epoch_end(loaded, "lo", 0, 5) == (0, -1, -1)  # an epoch this log never had
    assert epoch_end(loaded, "lo", 0, 0, current=1, version=2)[0] == E.UNKNOWN_LEADER_EPOCH
    assert epoch_end(loaded, "lo", 0, 0, current=0, version=3) == (0, 0, 4)
    assert epoch_end(loaded, "lo", 3, 0) == (E.UNKNOWN_TOPIC_OR_PARTITION, -1, -1)
    loaded.logs.topics["lo"].partitions[0].leader_epoch = 2
    assert epoch_end(loaded, "lo", 0, 0, current=1)[0] == E.FENCED_LEADER_EPOCH


# ---------------------------------------------------------------------------- InitProducerId

def init_pid(broker, version=4, txn=None, pid=-1, epoch=-1):
    r = call(broker, InitProducerIdRequest(transactional_id=txn, transaction_timeout_ms=60000, producer_id=pid,
                                           producer_epoch=epoch), version)
    return r.error_code, r.producer_id, r.producer_epoch


def test_init_producer_id_idempotent(broker):
    code, first, epoch = init_pid(broker, version=0)
    assert (code, epoch) == (0, 0)
    code, second, epoch = init_pid(broker, version=2)
    assert (code, epoch) == (0, 0) and second != first


def test_init_producer_id_with_current_id_gets_a_fresh_id_like_kafka(broker):
    _, pid, _ = init_pid(broker)
    code, new_pid, epoch = init_pid(broker, version=3, pid=pid, epoch=0)
    assert (code, epoch) == (0, 0) and new_pid > pid


def test_producer_ids_are_not_reused_after_restart(broker):
    from keystream.broker.producer_ids import ProducerIdManager

    _, pid, _ = init_pid(broker)
    assert ProducerIdManager(broker.producer_ids.path.parent).allocate() > pid


@pytest.mark.parametrize("kwargs, code", [
    ({"txn": "my-txn"}, E.COORDINATOR_NOT_AVAILABLE),
    ({"txn": ""}, E.INVALID_REQUEST),
    ({"pid": 5, "epoch": -1}, E.INVALID_REQUEST),
    ({"pid": -1, "epoch": 2}, E.INVALID_REQUEST),
])
def test_init_producer_id_errors(broker, kwargs, code):
    assert init_pid(broker, **kwargs) == (code, -1, -1)
