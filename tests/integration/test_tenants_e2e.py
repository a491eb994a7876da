"""Two tenants side by side on a real broker and a real registry, each with its own client library.

The platform admin creates tenants `acme` (User:alice) and `globex` (User:gina) and their SCRAM users
through the gRPC admin API, and grants nothing else. At the same time alice works with confluent-kafka
(AdminClient, SchemaRegistryClient + AvroSerializer, Producer, Consumer in group `acme.g`) and gina with
kafka-python (KafkaAdminClient, KafkaProducer, KafkaConsumer in group `globex.g`, schemas over REST).
Then each lists topics, groups and subjects and sees only its own, and neither can read the other's
topic, join the other's group or fetch the other's schema by id.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.sasl import confluent_sasl, kafka_python_sasl
from tests.fixtures.waiting import Deadline, wait_for

pytestmark = pytest.mark.keystream_only

MECHANISM = "SCRAM-SHA-512"
RECORDS = 20
ORDER = json.dumps({"type": "record", "name": "Order", "namespace": "acme",
                    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]})
EVENT = json.dumps({"type": "record", "name": "Event", "namespace": "globex",
                    "fields": [{"name": "seq", "type": "int"}]})


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = admin_broker(module_broker_factory, sasl=MECHANISM)
    with admin_channel(b) as ch:
        tenants, users = rpc.TenantServiceStub(ch), rpc.UserServiceStub(ch)
        for tenant, user in (("acme", "alice"), ("globex", "gina")):
            tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name=tenant, members=[f"User:{user}"])),
                                 timeout=TIMEOUT_S)
            users.UpsertScramUser(pb.UpsertScramUserRequest(
                name=user, mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_512, password=f"{user}-secret"), timeout=TIMEOUT_S)
    return b


@pytest.fixture(scope="module")
def registry(broker, registry_factory):
    return registry_factory(broker)


def alice_conf(broker, **extra) -> dict:
    return confluent_sasl(broker, "alice", "alice-secret", MECHANISM, **extra)


def gina_conf(broker, **extra) -> dict:
    return kafka_python_sasl(broker, "gina", "gina-secret", MECHANISM, **extra)


def alice_works(broker, registry) -> dict:
    """confluent-kafka: create acme.orders, register its value schema through the serializer, produce,
    consume in group acme.g and decode."""
    admin = AdminClient(alice_conf(broker))
    admin.create_topics([NewTopic("acme.orders", 1, 1)], request_timeout=30)["acme.orders"].result(timeout=30)
    sr = SchemaRegistryClient(registry.client_conf(basic="alice:alice-secret"))
    serialize = AvroSerializer(sr, ORDER)
    ctx = SerializationContext("acme.orders", MessageField.VALUE)
    producer = Producer(alice_conf(broker))
    for i in range(RECORDS):
        producer.produce("acme.orders", value=serialize({"id": i, "item": f"item-{i}"}, ctx))
    assert producer.flush(30) == 0
    deserialize = AvroDeserializer(sr)
    consumer = Consumer(alice_conf(broker, **{"group.id": "acme.g", "auto.offset.reset": "earliest"}))
    try:
        consumer.subscribe(["acme.orders"])
        got, deadline = [], Deadline(60)
        while len(got) < RECORDS and not deadline.expired():
            msg = consumer.poll(0.5)
            if msg is not None:
                assert not msg.error(), msg.error()
                got.append(deserialize(msg.value(), ctx)["id"])
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return {"ids": got, "schema_id": sr.get_latest_version("acme.orders-value").schema_id}


def gina_works(broker, registry) -> dict:
    """kafka-python (KafkaAdminClient, KafkaProducer, KafkaConsumer): create globex.events, register its schema over REST, produce, consume in globex.g."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: PLC0415
    from kafka.admin import NewTopic as KNewTopic  # noqa: PLC0415

    admin = KafkaAdminClient(**gina_conf(broker))
    try:
        admin.create_topics([KNewTopic("globex.events", 1, 1)])
    finally:
        admin.close()
    reply = registry.http("POST", "/subjects/globex.events-value/versions", {"schema": EVENT},
                          basic="gina:gina-secret")
    assert reply.status == 200, reply.body
    producer = KafkaProducer(**gina_conf(broker))
    for i in range(RECORDS):
        producer.send("globex.events", f"event-{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer("globex.events", group_id="globex.g", auto_offset_reset="earliest",
                             consumer_timeout_ms=30000, **gina_conf(broker))
    try:
        got = []
        for msg in consumer:
            got.append(msg.value)
            if len(got) == RECORDS:
                break
        consumer.commit()
    finally:
        consumer.close()
    return {"values": got, "schema_id": reply.json()["id"]}


@pytest.fixture(scope="module")
def worked(broker, registry):
    with ThreadPoolExecutor(2) as pool:
        alice = pool.submit(alice_works, broker, registry)
        gina = pool.submit(gina_works, broker, registry)
        return alice.result(timeout=180), gina.result(timeout=180)


def test_both_tenants_produce_and_consume_at_the_same_time(worked):
    alice, gina = worked
    assert alice["ids"] == list(range(RECORDS))
    assert gina["values"] == [f"event-{i}".encode() for i in range(RECORDS)]
    print(f"\nalice's schema id {alice['schema_id']}, gina's {gina['schema_id']}")


def test_each_lists_only_its_own_topics_groups_and_subjects(broker, registry, worked):
    from kafka import KafkaAdminClient  # noqa: PLC0415

    admin = AdminClient(alice_conf(broker))
    assert set(admin.list_topics(timeout=15).topics) == {"acme.orders"}
    groups = admin.list_consumer_groups(request_timeout=15).result(timeout=30)
    assert {g.group_id for g in groups.valid} == {"acme.g"} and not groups.errors
    assert registry.http("GET", "/subjects", basic="alice:alice-secret").json() == ["acme.orders-value"]

    kadmin = KafkaAdminClient(**gina_conf(broker))
    try:
        assert set(kadmin.list_topics()) == {"globex.events"}
        assert {g["group_id"] for g in kadmin.list_groups()} == {"globex.g"}
    finally:
        kadmin.close()
    assert registry.http("GET", "/subjects", basic="gina:gina-secret").json() == ["globex.events-value"]

    everything = AdminClient(broker.tls.confluent(broker.bootstrap))  # the super user sees both
    assert {"acme.orders", "globex.events"} <= set(everything.list_topics(timeout=15).topics)


def _first_error(consumer, deadline_s: float = 20) -> tuple[KafkaError | None, list]:
    """The first error a confluent-kafka consumer reports, and any records it got meanwhile."""
    records, deadline = [], Deadline(deadline_s)
    while not deadline.expired():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            return msg.error(), records
        records.append(msg.value())
    return None, records


def test_alice_cannot_read_globex_topic_or_join_its_group(broker, worked):
    reader = Consumer(alice_conf(broker, **{"group.id": "acme.spy", "auto.offset.reset": "earliest"}))
    try:
        reader.subscribe(["globex.events"])
        error, records = _first_error(reader)
        assert records == []
        assert error is not None and error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                      KafkaError.UNKNOWN_TOPIC_OR_PART), error
    finally:
        reader.close()
    joiner = Consumer(alice_conf(broker, **{"group.id": "globex.g", "auto.offset.reset": "earliest"}))
    try:
        joiner.subscribe(["acme.orders"])
        error, records = _first_error(joiner)
        assert records == [] and error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error
    finally:
        joiner.close()


def test_gina_cannot_read_acme_topic_or_join_its_group(broker, worked, caplog):
    """kafka-python 3.0 reports an unauthorized subscribed topic only in its log (metadata error), a
    refused group join by raising from poll."""
    from kafka import KafkaConsumer  # noqa: PLC0415
    from kafka.errors import GroupAuthorizationFailedError  # noqa: PLC0415

    refused = "Topic acme.orders is not authorized for this client"
    reader = KafkaConsumer("acme.orders", group_id="globex.spy", auto_offset_reset="earliest", **gina_conf(broker))
    try:
        deadline, records = Deadline(20), []
        while not deadline.expired() and not any(refused in r.getMessage() for r in caplog.records):
            records += [m for batch in reader.poll(timeout_ms=500).values() for m in batch]
        assert records == [] and any(refused in r.getMessage() for r in caplog.records)
    finally:
        reader.close()
    joiner = KafkaConsumer("globex.events", group_id="acme.g", **gina_conf(broker))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            deadline = Deadline(20)
            while not deadline.expired():
                assert not any(joiner.poll(timeout_ms=500).values())
    finally:
        joiner.close()


def test_neither_fetches_the_others_schema_by_id(registry, worked):
    alice, gina = worked
    assert alice["schema_id"] != gina["schema_id"]
    sr = SchemaRegistryClient(registry.client_conf(basic="alice:alice-secret"))
    with pytest.raises(SchemaRegistryError) as info:
        sr.get_schema(gina["schema_id"])
    assert info.value.error_code == 40403
    assert sr.get_schema(alice["schema_id"]).schema_str
    reply = registry.http("GET", f"/schemas/ids/{alice['schema_id']}", basic="gina:gina-secret")
    assert reply.status == 404 and reply.json()["error_code"] == 40403
    wait_for(lambda: registry.http("GET", f"/schemas/ids/{gina['schema_id']}", basic="gina:gina-secret").status
             == 200, 5, message="gina reads her own schema")
