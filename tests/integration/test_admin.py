"""Topic administration through the real admin clients: confluent-kafka's AdminClient and
kafka-python's KafkaAdminClient (create, describe, partitions, configs, delete), plus cluster
description, DeleteRecords and ListOffsets through the admin API. Each test runs over PLAINTEXT and
over mTLS."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import TopicAlreadyExistsError

from tests.fixtures.clients import Delivery, admin, flush, kafka_python_conf, producer
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name


def topic_names(a) -> set[str]:
    return set(a.list_topics(timeout=10).topics)


def describe_config(a, topic: str) -> dict[str, str]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = a.describe_configs([res])[res].result(timeout=15)
    return {k: v.value for k, v in entries.items()}


def test_confluent_admin_topic_lifecycle(shared_listener_broker):
    a = admin(shared_listener_broker)
    name = unique_name("adm-ck")
    fs = a.create_topics([NewTopic(name, 2, 1, config={"retention.ms": "7200000", "cleanup.policy": "compact,delete"})], operation_timeout=10)
    fs[name].result(timeout=20)
    wait_for(lambda: name in topic_names(a), 10, message="topic listed")

    # Creating it again: TOPIC_ALREADY_EXISTS.
    with pytest.raises(KafkaException) as exc:
        a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=20)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    # describe_topics (Metadata with topic ids).
    desc = a.describe_topics(TopicCollection([name]))[name].result(timeout=15)
    assert desc.name == name and len(desc.partitions) == 2
    assert desc.topic_id is not None and str(desc.topic_id) != "AAAAAAAAAAAAAAAAAAAAAA"

    cfg = describe_config(a, name)
    assert cfg["retention.ms"] == "7200000"
    assert cfg["cleanup.policy"] == "compact,delete"
    assert cfg["segment.bytes"] == "1073741824", "defaults are described too"

    # Incremental alter: set one, delete another back to its default.
    res = ConfigResource(
        ResourceType.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    a.incremental_alter_configs([res])[res].result(timeout=15)
    cfg = describe_config(a, name)
    assert cfg["retention.ms"] == "3600000"
    assert cfg["cleanup.policy"] == "delete"

    # Legacy AlterConfigs replaces the whole set.
    res = ConfigResource(ResourceType.TOPIC, name, set_config={"max.message.bytes": "500000"})
    with pytest.warns(DeprecationWarning):  # still sent by older tools, so it must work
        fut = a.alter_configs([res])[res]
    fut.result(timeout=15)
    cfg = describe_config(a, name)
    assert cfg["max.message.bytes"] == "500000"
    assert cfg["retention.ms"] == "604800000", "AlterConfigs resets what it does not name"

    # More partitions.
    a.create_partitions([NewPartitions(name, 5)])[name].result(timeout=15)
    wait_for(lambda: len(a.list_topics(name, timeout=5).topics[name].partitions) == 5, 10, message="5 partitions")
    with pytest.raises(KafkaException) as exc:
        a.create_partitions([NewPartitions(name, 3)])[name].result(timeout=15)
    assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS

    # Delete.
    a.delete_topics([name], operation_timeout=10)[name].result(timeout=20)
    wait_for(lambda: name not in topic_names(a), 10, message="topic gone")
    with pytest.raises(KafkaException) as exc:
        a.delete_topics([name])[name].result(timeout=20)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_deleted_topic_can_be_recreated_empty(shared_listener_broker):
    b = shared_listener_broker
    a = admin(b)
    name = unique_name("adm-recreate")
    a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=20)
    d = Delivery()
    p = producer(b)
    for i in range(10):
        p.produce(name, value=f"old{i}".encode(), partition=0, on_delivery=d)
    flush(p)
    a.delete_topics([name])[name].result(timeout=20)
    wait_for(lambda: name not in topic_names(a), 10, message="topic gone")
    a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=20)
    wait_for(lambda: name in topic_names(a), 10, message="topic back")
    offsets = a.list_offsets({TopicPartition(name, 0): OffsetSpec.latest()})
    (fut,) = offsets.values()
    assert fut.result(timeout=15).offset == 0, "a recreated topic starts empty"


def test_confluent_admin_cluster_records_and_offsets(shared_listener_broker):
    b = shared_listener_broker
    a = admin(b)
    cluster = a.describe_cluster().result(timeout=15)
    assert [n.id for n in cluster.nodes] == [1]
    assert cluster.controller is not None and cluster.controller.id == 1
    assert cluster.cluster_id

    name = unique_name("adm-records")
    # 2023 timestamps are past the default retention: keep them from the maintenance pass (every 15 s).
    a.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "-1"})])[name].result(timeout=20)
    d = Delivery()
    p = producer(b)
    for i in range(20):
        p.produce(name, value=f"r{i}".encode(), partition=0, timestamp=1_700_000_000_000 + i * 1000, on_delivery=d)
    flush(p)
    tp = TopicPartition(name, 0)

    def offset(spec) -> int:
        (fut,) = a.list_offsets({tp: spec}).values()
        return fut.result(timeout=15).offset

    assert offset(OffsetSpec.earliest()) == 0
    assert offset(OffsetSpec.latest()) == 20
    assert offset(OffsetSpec.for_timestamp(1_700_000_005_500)) == 6
    assert offset(OffsetSpec.max_timestamp()) == 19

    (fut,) = a.delete_records([TopicPartition(name, 0, 12)]).values()
    assert fut.result(timeout=15).low_watermark == 12
    assert offset(OffsetSpec.earliest()) == 12


def test_kafka_python_admin(shared_listener_broker):
    a = KafkaAdminClient(**kafka_python_conf(shared_listener_broker), request_timeout_ms=15000)
    try:
        name = unique_name("adm-kp")
        a.create_topics([KpNewTopic(name, 2, 1, topic_configs={"retention.ms": "86400000"})])
        wait_for(lambda: name in a.list_topics(), 10, message="topic listed by kafka-python")
        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics([KpNewTopic(name, 2, 1)], raise_errors=True)

        (desc,) = a.describe_topics([name])
        assert desc["name"] == name and len(desc["partitions"]) == 2
        assert desc["error_code"] == 0

        a.create_partitions({name: KpNewPartitions(total_count=4)})
        wait_for(lambda: len(a.describe_topics([name])[0]["partitions"]) == 4, 10, message="4 partitions")

        assert _kp_configs(a, name)["retention.ms"] == "86400000"
        a.alter_configs([KpConfigResource(KpConfigResourceType.TOPIC, name, configs={"retention.ms": "1000000"})])
        assert _kp_configs(a, name)["retention.ms"] == "1000000"

        a.delete_topics([name])
        wait_for(lambda: name not in a.list_topics(), 10, message="topic deleted by kafka-python")
    finally:
        a.close()


def _kp_configs(a: KafkaAdminClient, topic: str) -> dict[str, str]:
    """kafka-python 3's describe_configs: {"topic": {name: {key: {"value": ...}}}}."""
    res = a.describe_configs([KpConfigResource(KpConfigResourceType.TOPIC, topic)], config_filter="all")
    return {k: v["value"] for k, v in res["topic"][topic].items()}
