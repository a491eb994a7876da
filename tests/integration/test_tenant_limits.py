"""Tenant limits as a real client sees them: a real broker (mTLS, admin.listener), a tenant made
through the gRPC admin API, and confluent-kafka's AdminClient and Producer as a tenant member.

- create_topics past max_partitions: POLICY_VIOLATION with the message naming the limit;
- produce once max_storage_bytes is reached: POLICY_VIOLATION in the delivery report (librdkafka does
  not pass Produce's error_message on, so the message is read with a wire client over the member's
  own TLS connection), and accepted again once retention (the broker's maintenance pass, every
  log.retention.check.interval.ms) frees space.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.broker.records import build_batch
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only

MAINTENANCE_MS = 200
LIMIT_BYTES = 16_000
RECORD = b"x" * 1000


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return admin_broker(module_broker_factory, **{"log.retention.check.interval.ms": MAINTENANCE_MS})


@pytest.fixture(scope="module")
def acme(broker):
    """A tenant (max 4 partitions, 16 kB): its name, its member's confluent-kafka settings and identity."""
    name = unique_name("lim").lower().replace("_", "-")[:40]
    member = broker.tls.client(f"{name}-alice", common_name=f"{name}-alice")
    with admin_channel(broker) as ch:
        rpc.TenantServiceStub(ch).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name=name, members=[f"User:CN={name}-alice"], max_partitions=4, max_storage_bytes=LIMIT_BYTES)),
            timeout=TIMEOUT_S)
    return name, broker.tls.confluent(broker.bootstrap, member), member


def _create(conf, *topics: NewTopic) -> dict[str, KafkaError | None]:
    out = {}
    admin = AdminClient(conf)  # kept alive until the futures are done
    for topic, future in admin.create_topics(list(topics), request_timeout=15).items():
        try:
            future.result(timeout=30)
            out[topic] = None
        except KafkaException as exc:
            out[topic] = exc.args[0]
    return out


def test_create_topics_past_the_partition_limit(acme):
    name, conf, _ = acme
    assert _create(conf, NewTopic(f"{name}.three", 3)) == {f"{name}.three": None}
    err = _create(conf, NewTopic(f"{name}.two", 2))[f"{name}.two"]
    print("create_topics past the limit:", err)
    assert err.code() == KafkaError.POLICY_VIOLATION
    assert f"tenant {name} may have at most 4 partitions (has 3, asked for 2)" in err.str()
    assert _create(conf, NewTopic(f"{name}.one", 1)) == {f"{name}.one": None}  # up to the limit


def _produce_one(conf, topic: str) -> KafkaError | None:
    """One record, acks=all, waited for; its delivery error (None when stored)."""
    reports = []
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 10_000, "enable.idempotence": False})
    p.produce(topic, RECORD, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(30) == 0
    return reports[0]


def test_produce_refused_at_the_storage_limit_then_admitted_after_retention(broker, acme):
    name, conf, member = acme
    topic = f"{name}.one"
    if topic not in AdminClient(conf).list_topics(timeout=15).topics:
        assert _create(conf, NewTopic(topic, 1)) == {topic: None}
    admin = AdminClient(broker.tls.confluent(broker.bootstrap))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.bytes", "4096", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)

    p = Producer({**conf, "acks": "all", "message.timeout.ms": 10_000, "linger.ms": 0})
    reports: list[KafkaError | None] = []
    for _ in range(LIMIT_BYTES // len(RECORD) + 5):
        p.produce(topic, RECORD, on_delivery=lambda err, msg: reports.append(err))
        assert p.flush(30) == 0
        if reports[-1] is not None:
            break
    err = reports[-1]
    print(f"refused after {len(reports) - 1} records of {len(RECORD)} B:", err)
    assert err is not None and err.code() == KafkaError.POLICY_VIOLATION
    assert not err.retriable()
    with broker.tls.wire(broker.address, member) as client:
        answer = client.produce(topic, 0, build_batch([(None, RECORD, [], int(time.time() * 1000))]))
    assert (answer.error_code, answer.error_message) == (
        KafkaError.POLICY_VIOLATION, f"tenant {name} has reached its storage limit of {LIMIT_BYTES} bytes")
    assert _produce_one(conf, topic) is not None  # still full

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    wait_for(lambda: _produce_one(conf, topic) is None, 30,
             message="a produce accepted once retention freed the tenant's storage")


def test_idempotent_producer_through_the_storage_limit_and_back(broker, acme):
    """An idempotent producer (enable.idempotence=true) refused at the limit keeps working once
    retention frees space: the refused batches leave no sequence gap it cannot get past."""
    name, conf, _ = acme
    topic = f"{name}.idem"
    admin = AdminClient(broker.tls.confluent(broker.bootstrap))
    for t in list(AdminClient(conf).list_topics(timeout=15).topics):  # room for one more partition
        if t.startswith(f"{name}.") and t != topic:
            admin.delete_topics([t])[t].result(timeout=30)
    wait_for(lambda: _create(conf, NewTopic(topic, 1)) in ({topic: None},) or topic in
             AdminClient(conf).list_topics(timeout=15).topics, 30, message=f"{topic} created")
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.bytes", "4096", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)

    p = Producer({**conf, "enable.idempotence": True, "acks": "all", "message.timeout.ms": 10_000,
                  "linger.ms": 0})
    reports: list[KafkaError | None] = []

    def send() -> KafkaError | None:
        p.produce(topic, RECORD, on_delivery=lambda err, msg: reports.append(err))
        assert p.flush(30) == 0
        return reports[-1]

    for _ in range(LIMIT_BYTES // len(RECORD) + 5):
        if send() is not None:
            break
    print(f"idempotent producer refused after {len(reports) - 1} records:", reports[-1])
    assert reports[-1] is not None and reports[-1].code() == KafkaError.POLICY_VIOLATION
    assert send() is not None  # still full, and the producer is not fatally failed
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    wait_for(lambda: send() is None, 30, message="the idempotent producer's record accepted after retention")
    errors = [e for e in reports if e is not None]
    print("errors seen:", sorted({e.name() for e in errors}))
    assert all(e.code() == KafkaError.POLICY_VIOLATION for e in errors)
    assert send() is None and send() is None  # and it goes on
