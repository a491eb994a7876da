"""Every real client over the SSL listener with mutual TLS: confluent-kafka, kafka-python, aiokafka
and kcat produce and consume keys, values, headers and timestamps in every compression, commit
group offsets, and get exactly what ACLs grant to their certificate's principal; a client without
a certificate is refused. This is the TLS twin of test_roundtrip.py (same records, same checks),
so the earlier round trips are proven over TLS too without running that module twice.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTP
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTP
from kafka.errors import KafkaError as KpError
from kafka.errors import TopicAuthorizationFailedError

from tests.fixtures.clients import (
    COMPRESSIONS,
    Delivery,
    Msg,
    consume_assigned,
    flush,
    kcat,
    kcat_consume,
    producer,
)
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import ConnectionClosed, unique_name
from tests.integration.test_roundtrip import PARTITIONS, check, expected_records

pytestmark = pytest.mark.keystream_only  # the peer broker has no TLS listener
TIMEOUT = 30


@pytest.fixture(scope="module")
def tls_broker(module_broker_factory):
    """One mTLS broker for the module: SSL listener, client certificates required, admin is super."""
    return module_broker_factory(tls=True)


@pytest.fixture(scope="module")
def alice(tls_broker):
    """An application identity with no ACLs: principal User:CN=alice,O=acme."""
    return tls_broker.tls.client("alice", common_name="alice", organization="acme")


def conf(broker, identity=None) -> dict[str, str]:
    return broker.tls.confluent(broker.bootstrap, identity)


def create_topic(broker, name: str, partitions: int = PARTITIONS) -> None:
    """CreateTopics as the admin over mTLS, then wait until metadata shows every partition."""
    a = AdminClient({**conf(broker), "socket.timeout.ms": 10000})
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                    operation_timeout=10, request_timeout=15)[name].result(timeout=20)
    wait_for(lambda: len(a.list_topics(name, timeout=5).topics[name].partitions) == partitions, 15,
             message=f"topic {name} in metadata")


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_confluent_kafka_round_trip_over_mtls(tls_broker, compression):
    topic = unique_name(f"tls-ck-{compression}")
    create_topic(tls_broker, topic)
    sent = expected_records(null_header_values=True)
    d = Delivery()
    p = producer(tls_broker.bootstrap, **conf(tls_broker), **{"compression.type": compression, "linger.ms": 20})
    for m in sent:
        p.produce(topic, value=m.value, key=m.key, partition=m.partition, headers=m.headers, timestamp=m.timestamp,
                  on_delivery=d)
    flush(p)
    assert not d.errors and len(d.acked) == len(sent), d.errors
    got = consume_assigned(tls_broker.bootstrap, topic, PARTITIONS, len(sent), extra_wait=0.3, **conf(tls_broker))
    check(sent, got)


def kafka_python_produce(broker, topic: str, sent: list[Msg], compression: str, identity=None) -> None:
    p = KafkaProducer(**broker.tls.kafka_python(broker.bootstrap, identity), acks="all", linger_ms=20,
                      compression_type=None if compression == "none" else compression, request_timeout_ms=20000)
    try:
        futures = [p.send(topic, value=m.value, key=m.key, partition=m.partition, headers=list(m.headers),
                          timestamp_ms=m.timestamp) for m in sent]
        p.flush(TIMEOUT)
        for f in futures:
            f.get(timeout=TIMEOUT)
    finally:
        p.close(timeout=10)


def kafka_python_consume(broker, topic: str, expected: int, identity=None) -> list[Msg]:
    c = KafkaConsumer(**broker.tls.kafka_python(broker.bootstrap, identity), enable_auto_commit=False,
                      auto_offset_reset="earliest", group_id=None)
    try:
        tps = [KpTP(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[Msg] = []
        deadline = Deadline(TIMEOUT)
        while len(out) < expected and not deadline.expired():
            for recs in c.poll(timeout_ms=500).values():
                out += [Msg(r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp) for r in recs]
        return out
    finally:
        c.close()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_kafka_python_round_trip_over_mtls(tls_broker, compression):
    topic = unique_name(f"tls-kp-{compression}")
    create_topic(tls_broker, topic)
    sent = expected_records()
    kafka_python_produce(tls_broker, topic, sent, compression)
    check(sent, kafka_python_consume(tls_broker, topic, len(sent)))


async def aiokafka_round_trip(broker, topic: str, sent: list[Msg], compression: str) -> list[Msg]:
    p = AIOKafkaProducer(**broker.tls.aiokafka(broker.bootstrap), acks="all", linger_ms=20,
                         compression_type=None if compression == "none" else compression, request_timeout_ms=20000)
    await p.start()
    try:
        futures = [await p.send(topic, value=m.value, key=m.key, partition=m.partition, timestamp_ms=m.timestamp,
                                headers=list(m.headers)) for m in sent]
        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await p.stop()
    c = AIOKafkaConsumer(**broker.tls.aiokafka(broker.bootstrap), enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await c.start()
    try:
        tps = [AioTP(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Msg] = []
        deadline = Deadline(TIMEOUT)
        while len(out) < len(sent) and not deadline.expired():
            for recs in (await c.getmany(timeout_ms=500)).values():
                out += [Msg(r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp) for r in recs]
        return out
    finally:
        await c.stop()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_aiokafka_round_trip_over_mtls(tls_broker, compression):
    topic = unique_name(f"tls-aio-{compression}")
    create_topic(tls_broker, topic)
    sent = expected_records()
    check(sent, asyncio.run(aiokafka_round_trip(tls_broker, topic, sent, compression)))


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_kcat_round_trip_over_mtls(tls_broker, compression):
    topic = unique_name(f"tls-kcat-{compression}")
    create_topic(tls_broker, topic)
    tls_args = tls_broker.tls.kcat_args(tls_broker.bootstrap)
    sent: list[Msg] = []
    for p in range(PARTITIONS):
        lines = [f"k{p}-{i}\tkcat value {p}/{i} " + "z" * (i * 7) for i in range(10)]
        sent += [Msg(p, -1, f"k{p}-{i}".encode(), line.split("\t", 1)[1].encode(), [("src", b"kcat")], None)
                 for i, line in enumerate(lines)]
        kcat(*tls_args, "-P", "-t", topic, "-p", str(p), "-z", compression, "-K", "\t", "-H", "src=kcat",
             "-X", "acks=all", input=("\n".join(lines) + "\n").encode())
    got = kcat_consume(tls_broker.bootstrap, topic, extra=tuple(tls_args[2:]))
    check(sent, got, timestamps=False)


def test_every_client_reads_what_every_client_wrote_over_mtls(tls_broker):
    topic = unique_name("tls-mixed")
    create_topic(tls_broker, topic)
    a = expected_records(24, binary=False)
    kafka_python_produce(tls_broker, topic, a, "lz4")
    b = expected_records(24, binary=False)
    asyncio.run(aiokafka_round_trip(tls_broker, topic, b, "snappy"))
    total = len(a) + len(b)

    def key_of(m: Msg):
        return (m.partition, m.offset, m.key, m.value, tuple(m.headers))

    reference = sorted(map(key_of, consume_assigned(tls_broker.bootstrap, topic, PARTITIONS, total,
                                                    **conf(tls_broker))))
    assert len(reference) == total
    assert sorted(map(key_of, kafka_python_consume(tls_broker, topic, total))) == reference
    tls_args = tuple(tls_broker.tls.kcat_args(tls_broker.bootstrap)[2:])
    assert sorted(map(key_of, kcat_consume(tls_broker.bootstrap, topic, extra=tls_args))) == reference


# ------------------------------------------------------------------------------ consumer groups
def _fill(broker, topic: str, n: int) -> None:
    p = producer(broker.bootstrap, **conf(broker))
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("i", str(i).encode())],
                  partition=i % PARTITIONS)
    flush(p)


def _committed(broker, group: str, topic: str) -> int:
    c = Consumer({**conf(broker), "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=15)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        c.close()


def _confluent_group(broker, topic: str, group: str, n: int) -> None:
    c = Consumer({**conf(broker), "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        seen, deadline = 0, Deadline(TIMEOUT)
        while seen < n and not deadline.expired():
            for m in c.consume(num_messages=100, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                seen += 1
        assert seen == n
        c.commit(asynchronous=False)
    finally:
        c.close()


def _kafka_python_group(broker, topic: str, group: str, n: int) -> None:
    c = KafkaConsumer(topic, **broker.tls.kafka_python(broker.bootstrap), group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        seen, deadline = 0, Deadline(TIMEOUT)
        while seen < n and not deadline.expired():
            seen += sum(len(recs) for recs in c.poll(timeout_ms=500).values())
        assert seen == n
        c.commit()
    finally:
        c.close()


def _aiokafka_group(broker, topic: str, group: str, n: int) -> None:
    async def run():
        c = AIOKafkaConsumer(topic, **broker.tls.aiokafka(broker.bootstrap), group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            seen, deadline = 0, Deadline(TIMEOUT)
            while seen < n and not deadline.expired():
                seen += sum(len(recs) for recs in (await c.getmany(timeout_ms=500)).values())
            assert seen == n
            await c.commit()
        finally:
            await c.stop()

    asyncio.run(run())


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", "aiokafka"])
def test_consumer_group_commits_over_mtls(tls_broker, client):
    topic, group = unique_name("tls-group"), unique_name("tls-group")
    create_topic(tls_broker, topic)
    _fill(tls_broker, topic, 30)
    {"confluent-kafka": _confluent_group, "kafka-python": _kafka_python_group,
     "aiokafka": _aiokafka_group}[client](tls_broker, topic, group, 30)
    assert _committed(tls_broker, group, topic) == 30


# ------------------------------------------------------------------------------ identities
def test_client_without_a_certificate_is_refused(tls_broker):
    # Python's ssl: the handshake fails (TLS 1.3 reports it on the first read) and nothing is served.
    ctx = tls_broker.tls.ssl_context(certificate=False)
    with pytest.raises((ssl.SSLError, OSError, ConnectionClosed)), \
            tls_broker.tls.wire(tls_broker.address, context=ctx) as client:
        client.api_versions()
    # confluent-kafka / librdkafka: no metadata.
    no_cert = {k: v for k, v in conf(tls_broker).items() if k not in ("ssl.certificate.location", "ssl.key.location")}
    with pytest.raises(KafkaException):
        AdminClient({**no_cert, "log_level": 0}).list_topics(timeout=3)
    # kafka-python: never gets a broker.
    kp = {k: v for k, v in tls_broker.tls.kafka_python(tls_broker.bootstrap).items()
          if k not in ("ssl_certfile", "ssl_keyfile")}
    with pytest.raises(KpError):
        KafkaProducer(**kp, bootstrap_timeout_ms=3000).close()
    # kcat: fails to get metadata.
    args = ["-b", tls_broker.bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tls_broker.tls.ca_cert}"]
    assert kcat(*args, "-L", "-m", "2", check=False).returncode != 0


def test_acl_lifecycle_decides_what_a_certificate_may_do(tls_broker, alice):
    """The admin grants, lists and removes ACLs through the Admin API over mTLS; alice's certificate
    (principal User:CN=alice,O=acme) is refused, then allowed, then refused again."""
    topic = unique_name("tls-acl")
    create_topic(tls_broker, topic, 1)
    principal = "User:CN=alice,O=acme"
    admin = AdminClient(conf(tls_broker))

    def alice_writes() -> bool:
        try:
            kafka_python_produce(tls_broker, topic, [Msg(0, -1, b"k", b"v", [("h", b"1")], None)], "none", alice)
            return True
        except TopicAuthorizationFailedError:
            return False

    assert not alice_writes()
    grants = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*", op,
                         AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
    for f in admin.create_acls(grants, request_timeout=TIMEOUT).values():
        assert f.result() is None
    assert alice_writes()
    assert [m.value for m in kafka_python_consume_one(tls_broker, topic, alice)] == [b"v"]
    described = admin.describe_acls(AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.ANY, principal,
                                                     None, AclOperation.ANY, AclPermissionType.ANY),
                                    request_timeout=TIMEOUT).result()
    assert {b.operation for b in described} == {AclOperation.WRITE, AclOperation.READ}
    deleted = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal,
                                                  None, AclOperation.ANY, AclPermissionType.ANY)],
                                request_timeout=TIMEOUT)
    assert len(next(iter(deleted.values())).result()) == 2
    assert not alice_writes()
    # librdkafka names the same refusal with Kafka's error code.
    d = Delivery()
    p = producer(tls_broker.bootstrap, **conf(tls_broker, alice), **{"message.timeout.ms": 10000})
    p.produce(topic, value=b"no", on_delivery=d)
    p.flush(15)
    assert d.errors and "authorization" in d.errors[0].lower(), d.errors


def kafka_python_consume_one(broker, topic: str, identity) -> list[Msg]:
    c = KafkaConsumer(**broker.tls.kafka_python(broker.bootstrap, identity), enable_auto_commit=False,
                      auto_offset_reset="earliest", group_id=None)
    try:
        c.assign([KpTP(topic, 0)])
        c.seek_to_beginning()
        out: list[Msg] = []
        deadline = Deadline(TIMEOUT)
        while not out and not deadline.expired():
            for recs in c.poll(timeout_ms=500).values():
                out += [Msg(r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp) for r in recs]
        return out
    finally:
        c.close()
