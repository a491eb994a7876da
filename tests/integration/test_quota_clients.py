"""Quotas as real clients see them, on a broker with an mTLS SSL listener and a SASL_SSL one.

Tenant quotas are set through the gRPC admin API (CreateTenant, UpdateTenant), user quotas with
AlterClientQuotas over the wire (neither confluent-kafka 2.16 nor kafka-python 3.0 has a client-quota
admin call). A client over its quota must see the throttle where users look for it: librdkafka's
statistics (`brokers.*.throttle`) and `throttle_cb`, kafka-python's `throttle-time-avg|max` metrics
(3.0's names; 2.x called them produce-/fetch-throttle-time-*). Nothing acknowledged may be lost, and
the throttled connection is muted: a request pipelined behind the throttled one is answered only
once the throttle time has passed (KIP-219), on SSL and SASL_SSL alike.

quota.window.num=2 and quota.window.size.seconds=1 make a burst throttled within a second or two
instead of Kafka's 11-second window.
"""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from google.protobuf.field_mask_pb2 import FieldMask
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.broker.protocol.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from keystream.broker.protocol.messages.metadata_request import MetadataRequest
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.clients import Delivery, consume_assigned, create_topic, flush, producer, wire
from tests.fixtures.records import build_batch
from tests.fixtures.sasl import confluent_sasl, kafka_python_sasl, sasl_wire, scram_login, scram_user
from tests.fixtures.waiting import Deadline

pytestmark = pytest.mark.keystream_only

RATE = 20_000  # bytes/s: 60 records of 1,000 B take ~3 s
COUNT, SIZE = 60, 1000
MECHANISM = "SCRAM-SHA-512"


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return admin_broker(module_broker_factory, sasl=MECHANISM,
                        config={"quota.window.num": 2, "quota.window.size.seconds": 1})


def create_tenant(broker, name: str, member: str, **quotas: float) -> None:
    with admin_channel(broker) as ch:
        rpc.TenantServiceStub(ch).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name=name, members=[member], quotas=quotas)), timeout=TIMEOUT_S)


def update_tenant_quota(broker, name: str, key: str, value: float) -> None:
    with admin_channel(broker) as ch:
        updated = rpc.TenantServiceStub(ch).UpdateTenant(pb.UpdateTenantRequest(
            tenant=pb.Tenant(name=name, quotas={key: value}), update_mask=FieldMask(paths=[f"quotas.{key}"])),
            timeout=TIMEOUT_S)
    assert updated.quotas[key] == value


def set_user_quota(broker, user: str, **values: float) -> None:
    entry = EntryData([EntityData("user", user)], [OpData(k, float(v), False) for k, v in values.items()])
    with wire(broker) as c:  # as the mTLS super user
        resp = c.request(AlterClientQuotasRequest([entry], False), 1)
    assert [(e.error_code, e.error_message) for e in resp.entries] == [(0, None)]


class Stats:
    """librdkafka's statistics: the largest `brokers.*.throttle` max and avg seen in any interval."""

    def __init__(self):
        self.max = self.avg = 0

    def __call__(self, text: str) -> None:
        for b in json.loads(text).get("brokers", {}).values():
            window = b.get("throttle") or {}
            self.max = max(self.max, window.get("max", 0))
            self.avg = max(self.avg, window.get("avg", 0))


def stats_conf(stats: Stats, throttles: list) -> dict:
    return {"statistics.interval.ms": 200, "stats_cb": stats, "throttle_cb": throttles.append}


def test_confluent_producer_over_tenant_quota(broker):
    name, alice = "qprod", broker.tls.client("qprod-alice")
    create_tenant(broker, name, "User:CN=qprod-alice", producer_byte_rate=RATE)
    topic = f"{name}.events"
    create_topic(broker, topic)
    stats, throttles, delivery = Stats(), [], Delivery()
    p = Producer({**broker.tls.confluent(broker.bootstrap, alice), "acks": "all", "linger.ms": 0,
                  "batch.size": 4096, "message.timeout.ms": 60000, **stats_conf(stats, throttles)})
    for i in range(COUNT):
        p.produce(topic, value=b"x" * SIZE, key=str(i).encode(), on_delivery=delivery)
        p.poll(0)
    flush(p, timeout=60)
    p.poll(0.5)  # serve the last statistics and throttle callbacks
    assert delivery.errors == []
    assert [int(m.key) for m in delivery.acked] == list(range(COUNT))
    assert throttles and max(t.throttle_time for t in throttles) > 0
    assert stats.max > 0 and stats.avg > 0, "no throttle in librdkafka's statistics"
    got = consume_assigned(broker, topic, 1, COUNT)  # as the admin (no tenant, no quota)
    assert [int(m.key) for m in got] == list(range(COUNT))
    print(f"\nconfluent producer: statistics throttle max {stats.max} ms, avg {stats.avg} ms; "
          f"throttle_cb max {max(t.throttle_time for t in throttles):.3f} s")


def test_confluent_consumer_over_tenant_quota(broker):
    name, bob = "qfetch", broker.tls.client("qfetch-bob")
    create_tenant(broker, name, "User:CN=qfetch-bob")
    update_tenant_quota(broker, name, "consumer_byte_rate", RATE)
    topic = f"{name}.events"
    create_topic(broker, topic)
    delivery = Delivery()
    p = producer(broker)  # the admin: no quota
    for i in range(COUNT):
        p.produce(topic, value=b"z" * SIZE, key=str(i).encode(), on_delivery=delivery)
    flush(p)
    assert len(delivery.acked) == COUNT
    stats, throttles = Stats(), []
    c = Consumer({**broker.tls.confluent(broker.bootstrap, bob), "group.id": f"{name}.readers",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", **stats_conf(stats, throttles)})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        keys: list[int] = []
        deadline = Deadline(60)
        while (len(keys) < COUNT or not stats.max) and not deadline.expired():
            for m in c.consume(num_messages=100, timeout=0.3):
                assert m.error() is None, m.error()
                keys.append(int(m.key()))
    finally:
        c.close()
    assert keys == list(range(COUNT))
    assert throttles and max(t.throttle_time for t in throttles) > 0
    assert stats.max > 0 and stats.avg > 0, "no throttle in librdkafka's statistics"


def test_kafka_python_over_user_quota_on_sasl_ssl(broker):
    user, password = "qcarol", "qcarol-secret"
    scram_user(broker, user, password, MECHANISM)
    create_tenant(broker, "qcarol", f"User:{user}")  # its namespace; the quota is the user's own
    set_user_quota(broker, user, producer_byte_rate=RATE, consumer_byte_rate=RATE)
    topic = "qcarol.events"
    create_topic(broker, topic)
    conf = kafka_python_sasl(broker, user, password, MECHANISM)
    p = KafkaProducer(**conf, acks="all", linger_ms=0, batch_size=4096)
    try:
        futures = [p.send(topic, key=str(i).encode(), value=b"k" * SIZE, partition=0) for i in range(COUNT)]
        offsets = [f.get(timeout=60).offset for f in futures]
        produced = p.metrics()["producer-metrics"]
    finally:
        p.close(timeout=10)
    assert offsets == list(range(COUNT))
    assert produced["throttle-time-max"] > 0 and produced["throttle-time-avg"] > 0
    c = KafkaConsumer(**conf, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        c.assign([KTopicPartition(topic, 0)])
        keys: list[int] = []
        deadline = Deadline(60)
        while len(keys) < COUNT and not deadline.expired():
            for records in c.poll(timeout_ms=500).values():
                keys += [int(r.key) for r in records]
        fetched = c.metrics()["consumer-metrics"]
    finally:
        c.close()
    assert keys == list(range(COUNT))
    assert fetched["throttle-time-max"] > 0 and fetched["throttle-time-avg"] > 0
    print(f"\nkafka-python: produce throttle avg {produced['throttle-time-avg']:.0f} ms "
          f"max {produced['throttle-time-max']:.0f} ms; fetch throttle avg {fetched['throttle-time-avg']:.0f} ms "
          f"max {fetched['throttle-time-max']:.0f} ms")


def test_confluent_producer_on_sasl_ssl_sees_user_throttle(broker):
    user, password = "qdave", "qdave-secret"
    scram_user(broker, user, password, MECHANISM)
    create_tenant(broker, "qdave", f"User:{user}")
    set_user_quota(broker, user, producer_byte_rate=RATE)
    topic = "qdave.events"
    create_topic(broker, topic)
    stats, throttles, delivery = Stats(), [], Delivery()
    p = Producer(confluent_sasl(broker, user, password, MECHANISM, **{
        "acks": "all", "linger.ms": 0, "batch.size": 4096, "message.timeout.ms": 60000,
        **stats_conf(stats, throttles)}))
    for i in range(COUNT):
        p.produce(topic, value=b"d" * SIZE, key=str(i).encode(), on_delivery=delivery)
        p.poll(0)
    flush(p, timeout=60)
    p.poll(0.5)
    assert delivery.errors == [] and len(delivery.acked) == COUNT
    assert throttles and stats.max > 0
    assert [int(m.key) for m in consume_assigned(broker, topic, 1, COUNT)] == list(range(COUNT))


# -- the mute (KIP-219) on SSL and SASL_SSL connections -------------------------------------------------
def _ssl_member(broker, name: str):
    create_tenant(broker, name, f"User:CN={name}-app", producer_byte_rate=1000)
    return broker.tls.wire(broker.address, broker.tls.client(f"{name}-app"))


def _sasl_member(broker, name: str):
    scram_user(broker, name, f"{name}-secret", MECHANISM)
    create_tenant(broker, name, f"User:{name}", producer_byte_rate=1000)
    c = sasl_wire(broker)
    scram_login(c, name, f"{name}-secret", MECHANISM)
    return c


@pytest.mark.parametrize("listener", ["ssl", "sasl_ssl"])
def test_throttled_connection_is_muted(broker, listener):
    """A Metadata request pipelined behind a throttled produce is answered only after the throttle
    time (the broker answers the produce at once, then reads nothing from that connection); another
    connection is answered meanwhile."""
    name = f"qmute-{listener.replace('_', '-')}"
    topic = f"{name}.t"
    create_topic(broker, topic)
    c = (_ssl_member if listener == "ssl" else _sasl_member)(broker, name)
    produce = ProduceRequest(acks=1, timeout_ms=10000, topic_data=[TopicProduceData(
        name=topic, partition_data=[PartitionProduceData(index=0, records=build_batch([b"m" * 5000]))])])
    with c, wire(broker) as other:
        first = c.send(produce, 9)
        second = c.send(MetadataRequest(topics=None), 12)  # on the wire before the produce is answered
        resp = c.receive(first)
        answered = time.monotonic()
        throttle_ms = resp.throttle_time_ms
        assert resp.responses[0].partition_responses[0].error_code == 0  # appended, not dropped
        assert 0 < throttle_ms <= 2000
        assert other.metadata().brokers  # the admin's connection is not muted
        other_answered = time.monotonic()
        c.receive(second, timeout=throttle_ms / 1000 + 10)
        waited = time.monotonic() - answered
    assert other_answered < answered + waited
    # The mute holds the pipelined request for the throttle time (half of it as the bound, for clock slack).
    assert waited >= throttle_ms / 2000, f"answered {waited * 1000:.0f} ms after a {throttle_ms} ms throttle"
    print(f"\n{listener}: throttle {throttle_ms} ms, pipelined request answered {waited * 1000:.0f} ms later")


@pytest.mark.parametrize("key, value", [
    ("producer_byte_rate", 1000),
    ("request_percentage", 0.0001),
])
def test_acks0_produce_over_quota_mutes_without_a_response(broker, key, value):
    """acks=0 has no response to carry throttle_time_ms; the connection is muted all the same (Kafka
    records both quotas for it), so a request sent after it waits out the throttle (>= 1 s here)."""
    client_id = f"acks0-{key}"
    entry = EntryData([EntityData("client-id", client_id)], [OpData(key, float(value), False)])
    with wire(broker) as c:
        assert [e.error_code for e in c.request(AlterClientQuotasRequest([entry], False), 1).entries] == [0]
    topic = f"acks0-{key.replace('_', '-')}"
    create_topic(broker, topic)
    with wire(broker) as c:
        c.client_id = client_id
        c.produce(topic, 0, build_batch([b"n" * 5000]), acks=0)
        sent = time.monotonic()
        c.metadata()
        waited = time.monotonic() - sent
    assert waited >= 0.5, f"the request after a throttled acks=0 produce was answered after {waited * 1000:.0f} ms"
