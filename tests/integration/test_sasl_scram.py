"""SCRAM-SHA-256/512 end to end: users made with the Admin API by the mTLS super user, then
confluent-kafka and kafka-python producing and consuming on a SASL_SSL listener as those users,
with ACLs on User:<name> (and on a static Group:<name>) deciding what each may do."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AclOperation,
)

from tests.fixtures.clients import create_topic
from tests.fixtures.sasl import confluent_sasl, kafka_python_sasl, scram_user
from tests.fixtures.sasl_acls import allow_topic_and_group, consume_group, kafka_python_values
from tests.fixtures.waiting import Deadline
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only

MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = module_broker_factory(tls=True, sasl=",".join(MECHANISMS), **{"principal.groups": "readers=User:carol|User:CN=dave"})
    for user in ("alice", "bob", "carol"):
        for mechanism in MECHANISMS:
            scram_user(b, user, f"{user}-secret", mechanism)
    return b


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_with_acls(broker, mechanism):
    topic, group = unique_name("scram"), unique_name("g")
    create_topic(broker, topic)
    allow_topic_and_group(broker, "User:alice", topic, group, AclOperation.WRITE, AclOperation.READ)
    producer = Producer(confluent_sasl(broker, "alice", "alice-secret", mechanism, **{"linger.ms": 5}))
    for i in range(10):
        producer.produce(topic, f"v{i}".encode())
    assert producer.flush(30) == 0
    alice = confluent_sasl(broker, "alice", "alice-secret", mechanism)
    assert consume_group(alice, topic, group, 10) == [f"v{i}".encode() for i in range(10)]
    # bob authenticates fine, but no ACL lets him write
    errors = []
    bob = Producer(confluent_sasl(broker, "bob", "bob-secret", mechanism, **{"message.timeout.ms": 10000}))
    bob.produce(topic, b"x", on_delivery=lambda err, msg: errors.append(err))
    bob.flush(30)
    assert errors and errors[0] is not None and errors[0].name() == "TOPIC_AUTHORIZATION_FAILED"


def test_confluent_kafka_wrong_password_is_an_authentication_error(broker):
    conf = confluent_sasl(broker, "alice", "wrong", "SCRAM-SHA-512")
    errors = []
    producer = Producer({**conf, "error_cb": errors.append, "message.timeout.ms": 5000})
    producer.produce("anything", b"x")
    producer.flush(10)
    assert any(e.code() == -169 or "Authentication failed" in e.str() for e in errors), errors  # _AUTHENTICATION


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_with_acls(broker, mechanism):
    from kafka import KafkaProducer  # noqa: PLC0415

    topic, group = unique_name("scram-kp"), unique_name("g")
    create_topic(broker, topic)
    allow_topic_and_group(broker, "User:bob", topic, group, AclOperation.WRITE, AclOperation.READ)
    conf = kafka_python_sasl(broker, "bob", "bob-secret", mechanism)
    producer = KafkaProducer(**conf)
    for i in range(5):
        producer.send(topic, f"kp{i}".encode()).get(timeout=30)
    producer.close()
    assert kafka_python_values(topic, group, conf, 5) == [f"kp{i}".encode() for i in range(5)]


def test_static_group_acl_applies_to_a_scram_user(broker):
    topic, group = unique_name("grp"), unique_name("g")
    create_topic(broker, topic)
    allow_topic_and_group(broker, "User:alice", topic, group, AclOperation.WRITE)
    allow_topic_and_group(broker, "Group:readers", topic, group, AclOperation.READ)
    producer = Producer(confluent_sasl(broker, "alice", "alice-secret", "SCRAM-SHA-512"))
    producer.produce(topic, b"for-readers")
    assert producer.flush(30) == 0
    carol = confluent_sasl(broker, "carol", "carol-secret", "SCRAM-SHA-512")
    assert consume_group(carol, topic, group, 1) == [b"for-readers"]


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_clients_reauthenticate_before_the_session_ends(broker_factory, client):
    """KIP-368 with real clients: with 2 s sessions, a producer working for 6 s re-authenticates on
    its connections instead of being disconnected, and nothing it sent is lost."""
    b = broker_factory(tls=True, sasl="SCRAM-SHA-512",
                       **{"connections.max.reauth.ms": 2000, "super.users": "User:CN=admin;User:alice"})
    scram_user(b, "alice", "alice-secret", "SCRAM-SHA-512")
    topic = unique_name("reauth")
    create_topic(b, topic)
    deadline, sent = Deadline(6), 0
    if client == "kafka-python":
        from kafka import KafkaProducer  # noqa: PLC0415

        producer = KafkaProducer(**kafka_python_sasl(b, "alice", "alice-secret", "SCRAM-SHA-512"))
        while not deadline.expired():
            producer.send(topic, f"r{sent}".encode()).get(timeout=30)
            sent += 1
        producer.close()
    else:
        producer = Producer(confluent_sasl(b, "alice", "alice-secret", "SCRAM-SHA-512"))
        while not deadline.expired():
            producer.produce(topic, f"r{sent}".encode())
            assert producer.flush(30) == 0
            sent += 1
    log = b.tail_log(5000)
    assert "SASL SCRAM-SHA-512 re-authenticated User:alice" in log
    assert "expired; the client did not re-authenticate" not in log
    alice = confluent_sasl(b, "alice", "alice-secret", "SCRAM-SHA-512")
    assert consume_group(alice, topic, unique_name("g"), sent) == [f"r{i}".encode() for i in range(sent)]


def test_static_group_acl_applies_to_an_mtls_principal(broker):
    topic, group = unique_name("grp-tls"), unique_name("g")
    create_topic(broker, topic)
    allow_topic_and_group(broker, "Group:readers", topic, group, AclOperation.READ)
    producer = Producer(confluent_sasl(broker, "alice", "alice-secret", "SCRAM-SHA-512"))
    allow_topic_and_group(broker, "User:alice", topic, group, AclOperation.WRITE)
    producer.produce(topic, b"for-dave")
    assert producer.flush(30) == 0
    dave = broker.tls.client("dave", common_name="dave")
    eve = broker.tls.client("eve", common_name="eve")
    assert consume_group(broker.tls.confluent(broker.bootstrap, dave), topic, group, 1) == [b"for-dave"]
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED|GROUP_AUTHORIZATION_FAILED"):
        consume_group(broker.tls.confluent(broker.bootstrap, eve), topic, group, 1, timeout=10)
