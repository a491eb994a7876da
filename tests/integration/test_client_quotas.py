"""Client quotas against a real broker: AlterClientQuotas/DescribeClientQuotas over the wire (neither
confluent-kafka 2.16 nor kafka-python 3.0 has a client-quota admin call), then real clients held to a
produce and a fetch byte rate: the broker answers with throttle_time_ms (confluent-kafka's
`throttle_cb` reports it), mutes the connection, and every record still arrives.

The broker runs with quota.window.num=2 and quota.window.size.seconds=1 so a burst is throttled
within a second or two instead of Kafka's 11-second window.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from keystream.broker.protocol.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from keystream.broker.protocol.messages.describe_client_quotas_request import (
    ComponentData,
    DescribeClientQuotasRequest,
)
from keystream.broker.protocol.messages.metadata_request import MetadataRequest
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.fixtures.clients import Delivery, client_conf, create_topic, flush, producer, watermarks, wire
from tests.fixtures.records import build_batch
from tests.fixtures.waiting import Deadline

QUOTA_WINDOWS = {"quota.window.num": 2, "quota.window.size.seconds": 1}
USER = "ANONYMOUS"  # PLAINTEXT clients of the test broker


def set_quota(broker, entity: list[tuple[str, str | None]], **values) -> None:
    entry = EntryData([EntityData(t, n) for t, n in entity],
                      [OpData(k, 0.0 if v is None else float(v), v is None) for k, v in values.items()])
    with wire(broker) as c:
        resp = c.request(AlterClientQuotasRequest([entry], False), 1)
    assert [(e.error_code, e.error_message) for e in resp.entries] == [(0, None)]


def describe(broker, *components, strict=False) -> dict:
    with wire(broker) as c:
        resp = c.request(DescribeClientQuotasRequest([ComponentData(*x) for x in components], strict), 1)
    assert resp.error_code == 0, resp.error_message
    return {tuple((d.entity_type, d.entity_name) for d in e.entity): {v.key: v.value for v in e.values}
            for e in resp.entries}


def test_alter_describe_and_survive_a_restart(broker_factory):
    broker = broker_factory(config=QUOTA_WINDOWS)
    set_quota(broker, [("user", "alice")], producer_byte_rate=1048576, consumer_byte_rate=2097152)
    set_quota(broker, [("user", "alice"), ("client-id", None)], request_percentage=25)
    set_quota(broker, [("client-id", "batch-job")], producer_byte_rate=1024)
    expected = {
        (("user", "alice"),): {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0},
        (("client-id", None), ("user", "alice")): {"request_percentage": 25.0},
        (("client-id", "batch-job"),): {"producer_byte_rate": 1024.0},
    }
    assert describe(broker) == expected
    assert describe(broker, ("user", 0, "alice"), strict=True) == {(("user", "alice"),): expected[(("user", "alice"),)]}
    broker.stop()
    broker.start()
    assert describe(broker) == expected
    set_quota(broker, [("client-id", "batch-job")], producer_byte_rate=None)
    assert (("client-id", "batch-job"),) not in describe(broker)


def test_producer_over_its_quota_is_throttled_and_loses_nothing(broker_factory):
    broker = broker_factory(config=QUOTA_WINDOWS)
    create_topic(broker, "quota-produce")
    set_quota(broker, [("user", USER)], producer_byte_rate=20000)
    throttles = []
    delivery = Delivery()
    p = producer(broker, **{"batch.size": 4096, "linger.ms": 0, "throttle_cb": throttles.append,
                            "message.timeout.ms": 60000})
    count, value = 60, b"x" * 1000
    for i in range(count):
        p.produce("quota-produce", value=value, key=str(i).encode(), on_delivery=delivery)
        p.poll(0)
    flush(p, timeout=60)
    assert delivery.errors == []
    assert len(delivery.acked) == count
    assert [int(m.key) for m in delivery.acked] == list(range(count))  # in order, none dropped
    assert throttles and max(t.throttle_time for t in throttles) > 0  # ms, as the broker answered
    assert watermarks(broker, "quota-produce", 0) == (0, count)


def test_wire_produce_over_quota_answers_throttle_time_and_appends(broker_factory):
    broker = broker_factory(config=QUOTA_WINDOWS)
    create_topic(broker, "quota-wire")
    set_quota(broker, [("client-id", "keystream-tests")], producer_byte_rate=1000)
    batch = build_batch([b"y" * 5000])
    req = ProduceRequest(acks=1, timeout_ms=10000, topic_data=[
        TopicProduceData(name="quota-wire", partition_data=[PartitionProduceData(index=0, records=batch)])])
    with wire(broker) as c:
        resp = c.request(req, 9)
        assert resp.responses[0].partition_responses[0].error_code == 0
        assert 0 < resp.throttle_time_ms <= 2000  # bounded by quota.window.num * size
        resp = c.request(req, 9)  # answered after the mute; appended too
        assert resp.responses[0].partition_responses[0].error_code == 0
    assert watermarks(broker, "quota-wire", 0) == (0, 2)


def test_consumer_over_its_quota_is_throttled_and_reads_everything(broker_factory):
    broker = broker_factory(config=QUOTA_WINDOWS)
    create_topic(broker, "quota-fetch")
    delivery = Delivery()
    p = producer(broker)
    count = 60
    for i in range(count):
        p.produce("quota-fetch", value=b"z" * 1000, key=str(i).encode(), on_delivery=delivery)
    flush(p)
    assert len(delivery.acked) == count
    set_quota(broker, [("user", USER)], consumer_byte_rate=20000)
    throttles = []
    c = Consumer({**client_conf(broker), "group.id": "quota-fetch", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "throttle_cb": throttles.append,
                  "fetch.max.bytes": 1048576})
    try:
        c.assign([TopicPartition("quota-fetch", 0, 0)])
        keys = []
        deadline = Deadline(60)
        while len(keys) < count and not deadline.expired():
            for m in c.consume(num_messages=100, timeout=0.5):
                assert m.error() is None, m.error()
                keys.append(int(m.key()))
        assert keys == list(range(count))
        assert throttles and max(t.throttle_time for t in throttles) > 0
    finally:
        c.close()


def test_request_percentage_throttles_any_request(broker_factory):
    broker = broker_factory(config=QUOTA_WINDOWS)
    set_quota(broker, [("client-id", "greedy")], request_percentage=0.0001)
    with wire(broker, client_id="greedy") as c:
        throttles = [c.request(MetadataRequest(topics=None), 12).throttle_time_ms for _ in range(3)]
        assert 0 < max(throttles) <= 1000  # request quotas are bounded by one window, as Kafka's
    with wire(broker) as c:  # another client id: no quota
        assert c.request(MetadataRequest(topics=None), 12).throttle_time_ms == 0
