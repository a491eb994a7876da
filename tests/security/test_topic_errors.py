"""Bad topic administration requests get Kafka's exact error codes (with an error message where
the version has one) and change nothing."""

from __future__ import annotations

import pytest

from keystream.broker.protocol.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
from keystream.broker.protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from keystream.broker.protocol.messages.create_topics_request import CreatableTopic
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from keystream.broker.protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    AlterableConfig as IncAlterableConfig,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    AlterConfigsResource as IncAlterConfigsResource,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    IncrementalAlterConfigsRequest,
)
from tests.fixtures.wire import WireClient, unique_name

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_CONFIG = 40
TOPIC_RESOURCE = 2


@pytest.fixture
def client(shared_broker):
    with WireClient(shared_broker.address) as c:
        yield c


def assert_absent(c: WireClient, name: str) -> None:
    if not name or len(name) > 32767:
        return
    (t,) = c.metadata([name]).topics
    assert t.error_code in (UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION), f"topic {name!r} exists"
    assert name not in {t.name for t in c.metadata(None).topics}


BAD_NAMES = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "too-long-250": "a" * 250,
    "slash": "bad/name",
    "space": "bad name",
    "colon": "bad:name",
    "non-ascii": "caf\u00e9",
    "nul": "bad\x00name",
    "path-traversal": "../../etc",
}


@pytest.mark.parametrize("version", [1, 4, 7])
@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_invalid_topic_name(client, case, version):
    name = BAD_NAMES[case]
    result = client.create_topic(name, 1, version=version, check=False)
    assert result.error_code == INVALID_TOPIC_EXCEPTION, (result.error_code, result.error_message)
    assert result.error_message, "CreateTopics v1+ carries an error message"
    assert_absent(client, name)


def test_longest_valid_topic_name_is_accepted(client):
    name = "L" * 249
    assert client.create_topic(name, 1).error_code == 0
    client.request(DeleteTopicsRequest(topic_names=[name], timeout_ms=10000), 3)


@pytest.mark.parametrize("version", [0, 5, 7])
def test_existing_topic(client, version):
    name = unique_name("exists")
    client.create_topic(name, 2)
    result = client.create_topic(name, 3, version=version, check=False)
    assert result.error_code == TOPIC_ALREADY_EXISTS
    if version >= 1:
        assert result.error_message
    (t,) = client.metadata([name]).topics
    assert len(t.partitions) == 2, "the existing topic is unchanged"


@pytest.mark.parametrize("partitions", [0, -2, -100])
def test_bad_partition_count(client, partitions):
    name = unique_name("badparts")
    result = client.create_topic(name, partitions, check=False)
    assert result.error_code == INVALID_PARTITIONS, (result.error_code, result.error_message)
    assert result.error_message
    assert_absent(client, name)


def test_bad_replication_factor(client):
    name = unique_name("badrf")
    result = client.create_topic(name, 1, replication_factor=3, check=False)
    assert result.error_code == INVALID_REPLICATION_FACTOR, (result.error_code, result.error_message)
    assert_absent(client, name)


BAD_CONFIGS = {
    "unknown-name": {"no.such.config": "1"},
    "not-a-number": {"retention.ms": "soon"},
    "bad-policy": {"cleanup.policy": "shred"},
    "segment-too-small": {"segment.bytes": "1"},
    "negative-max-message": {"max.message.bytes": "-5"},
    "bad-timestamp-type": {"message.timestamp.type": "WallClock"},
    "ratio-above-one": {"min.cleanable.dirty.ratio": "1.5"},
    "int-overflow": {"segment.bytes": "99999999999999"},
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_topic_config(client, case):
    name = unique_name("badcfg")
    result = client.create_topic(name, 1, BAD_CONFIGS[case], check=False)
    assert result.error_code == INVALID_CONFIG, (result.error_code, result.error_message)
    assert result.error_message
    assert_absent(client, name)


def test_validate_only_creates_nothing(client):
    name = unique_name("validate")
    resp = client.create_topics([CreatableTopic(name=name, num_partitions=1, replication_factor=1)], validate_only=True)
    assert resp.topics[0].error_code == 0
    assert_absent(client, name)


def test_one_bad_topic_does_not_fail_the_others(client):
    good, bad = unique_name("good"), "bad name"
    resp = client.create_topics(
        [
            CreatableTopic(name=good, num_partitions=1, replication_factor=1),
            CreatableTopic(name=bad, num_partitions=1, replication_factor=1),
        ]
    )
    codes = {t.name: t.error_code for t in resp.topics}
    assert codes == {good: 0, bad: INVALID_TOPIC_EXCEPTION}


def test_create_partitions_errors(client):
    name = unique_name("parts")
    client.create_topic(name, 3)

    def create_partitions(topic: str, count: int):
        resp = client.request(
            CreatePartitionsRequest(topics=[CreatePartitionsTopic(name=topic, count=count, assignments=None)], timeout_ms=10000),
            3,
        )
        (r,) = resp.results
        return r

    for count in (3, 2, 0, -1):
        r = create_partitions(name, count)
        assert r.error_code == INVALID_PARTITIONS, (count, r.error_code, r.error_message)
        assert r.error_message
    r = create_partitions(unique_name("missing"), 5)
    assert r.error_code == UNKNOWN_TOPIC_OR_PARTITION
    (t,) = client.metadata([name]).topics
    assert len(t.partitions) == 3
    assert create_partitions(name, 5).error_code == 0
    (t,) = client.metadata([name]).topics
    assert len(t.partitions) == 5


def test_alter_configs_errors(client):
    name = unique_name("alter")
    client.create_topic(name, 1, {"retention.ms": 3_600_000})

    def alter(topic: str, configs: dict[str, str]):
        resp = client.request(
            AlterConfigsRequest(
                resources=[
                    AlterConfigsResource(
                        resource_type=TOPIC_RESOURCE,
                        resource_name=topic,
                        configs=[AlterableConfig(name=k, value=v) for k, v in configs.items()],
                    )
                ]
            ),
            1,
        )
        (r,) = resp.responses
        return r

    def incremental(topic: str, key: str, value: str):
        resp = client.request(
            IncrementalAlterConfigsRequest(
                resources=[
                    IncAlterConfigsResource(
                        resource_type=TOPIC_RESOURCE,
                        resource_name=topic,
                        configs=[IncAlterableConfig(name=key, config_operation=0, value=value)],
                    )
                ]
            ),
            1,
        )
        (r,) = resp.responses
        return r

    for configs in ({"retention.ms": "never"}, {"no.such.config": "1"}, {"cleanup.policy": "shred"}):
        r = alter(name, configs)
        assert r.error_code == INVALID_CONFIG, (configs, r.error_code, r.error_message)
        assert r.error_message
    r = incremental(name, "segment.bytes", "tiny")
    assert r.error_code == INVALID_CONFIG and r.error_message
    assert alter(unique_name("missing"), {"retention.ms": "1000"}).error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert incremental(unique_name("missing"), "retention.ms", "1000").error_code == UNKNOWN_TOPIC_OR_PARTITION

    resp = client.request(
        DescribeConfigsRequest(
            resources=[DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=["retention.ms"])]
        ),
        4,
    )
    (res,) = resp.results
    assert res.error_code == 0
    assert {c.name: c.value for c in res.configs} == {"retention.ms": "3600000"}, "failed alters changed nothing"


def test_delete_unknown_topic(client):
    name = unique_name("nothere")
    resp = client.request(DeleteTopicsRequest(topic_names=[name], timeout_ms=10000), 3)
    (r,) = resp.responses
    assert r.error_code == UNKNOWN_TOPIC_OR_PARTITION
    resp = client.request(DeleteTopicsRequest(topics=[DeleteTopicState(name=name)], timeout_ms=10000), 6)
    (r,) = resp.responses
    assert r.error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert r.error_message


def test_describe_configs_unknown_topic(client):
    resp = client.request(
        DescribeConfigsRequest(resources=[DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=unique_name("nope"))]),
        4,
    )
    (res,) = resp.results
    assert res.error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert res.error_message
