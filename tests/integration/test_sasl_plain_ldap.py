"""SASL/PLAIN checked against a real OpenLDAP end to end: a broker whose SASL_SSL listener offers
PLAIN with its ldap.* properties pointing at the slapd fixture (StartTLS, its CA), the mTLS super
user setting ACLs, and confluent-kafka and kafka-python producing and consuming as directory users
with their directory passwords. ACLs on `Group:<cn>` apply through the users' LDAP groups:
producers (groupOfNames: alice, bob) and consumers (posixGroup memberUid: bob, carol)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AclOperation,
    ResourceType,
)

from tests.fixtures.clients import create_topic
from tests.fixtures.sasl import confluent_sasl, kafka_python_sasl
from tests.fixtures.sasl_acls import allow, consume_group, kafka_python_values
from tests.fixtures.slapd import PASSWORDS, SERVICE_PASSWORD
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only


@pytest.fixture(scope="module")
def broker(module_broker_factory, slapd):
    assert slapd.url.startswith("ldap://")  # StartTLS, verified against the slapd fixture's CA
    return module_broker_factory(tls=True, sasl="PLAIN", **slapd.properties())


def _produce(broker, user: str, topic: str, values: list[bytes]) -> list:
    """Produce as `user` with confluent-kafka; returns each message's delivery error (None = ok)."""
    errors: list = []
    producer = Producer(confluent_sasl(broker, user, PASSWORDS[user], "PLAIN",
                                       **{"linger.ms": 5, "message.timeout.ms": 10000}))
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    return errors


def test_ldap_group_acl_lets_producers_write_and_refuses_others(broker):
    topic = unique_name("ldap-w")
    create_topic(broker, topic)
    allow(broker, "Group:producers", ResourceType.TOPIC, topic, AclOperation.WRITE)
    assert _produce(broker, "alice", topic, [b"from-alice"]) == [None]
    assert _produce(broker, "bob", topic, [b"from-bob"]) == [None]
    # carol logs in (her groups are admins and consumers) but is not in producers
    (error,) = _produce(broker, "carol", topic, [b"from-carol"])
    assert error is not None and error.name() == "TOPIC_AUTHORIZATION_FAILED", error
    log = broker.tail_log(5000)
    assert "SASL PLAIN authenticated User:alice from 127.0.0.1 on listener SASL_SSL with groups producers" in log
    assert "SASL PLAIN authenticated User:carol from 127.0.0.1 on listener SASL_SSL with groups admins,consumers" in log


def test_ldap_group_acl_on_a_consumer_group(broker):
    """Group:consumers (a posixGroup, matched by memberUid) may read the topic and use the listed
    consumer groups: bob and carol consume what alice wrote; alice, not a member, is refused, and
    carol is refused a consumer group no ACL lists."""
    topic, groups = unique_name("ldap-r"), {"bob": unique_name("g"), "carol": unique_name("g")}
    create_topic(broker, topic)
    allow(broker, "Group:producers", ResourceType.TOPIC, topic, AclOperation.WRITE)
    allow(broker, "Group:consumers", ResourceType.TOPIC, topic, AclOperation.READ)
    for group in groups.values():
        allow(broker, "Group:consumers", ResourceType.GROUP, group, AclOperation.READ)
    values = [f"v{i}".encode() for i in range(5)]
    assert _produce(broker, "alice", topic, values) == [None] * 5
    for user, group in groups.items():
        assert consume_group(confluent_sasl(broker, user, PASSWORDS[user], "PLAIN"), topic, group, 5) == values
    carol = confluent_sasl(broker, "carol", PASSWORDS["carol"], "PLAIN")
    with pytest.raises(KafkaException, match="GROUP_AUTHORIZATION_FAILED"):
        consume_group(carol, topic, unique_name("unlisted"), 1, timeout=10)
    alice = confluent_sasl(broker, "alice", PASSWORDS["alice"], "PLAIN")
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED|GROUP_AUTHORIZATION_FAILED"):
        consume_group(alice, topic, groups["bob"], 1, timeout=10)


def test_kafka_python_produces_and_consumes_as_ldap_users(broker):
    from kafka import KafkaProducer  # noqa: PLC0415
    from kafka.errors import TopicAuthorizationFailedError  # noqa: PLC0415

    topic, group = unique_name("ldap-kp"), unique_name("g")
    create_topic(broker, topic)
    allow(broker, "Group:producers", ResourceType.TOPIC, topic, AclOperation.WRITE)
    allow(broker, "Group:consumers", ResourceType.TOPIC, topic, AclOperation.READ)
    allow(broker, "Group:consumers", ResourceType.GROUP, group, AclOperation.READ)
    producer = KafkaProducer(**kafka_python_sasl(broker, "alice", PASSWORDS["alice"], "PLAIN"))
    try:
        for i in range(5):
            producer.send(topic, f"kp{i}".encode()).get(timeout=30)
    finally:
        producer.close()
    # Not idempotent: an idempotent producer with no WRITE anywhere is refused earlier, at
    # InitProducerId, with CLUSTER_AUTHORIZATION_FAILED (KIP-679), as Kafka does.
    carol = KafkaProducer(**kafka_python_sasl(broker, "carol", PASSWORDS["carol"], "PLAIN"), max_block_ms=10000,
                          enable_idempotence=False)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            carol.send(topic, b"x").get(timeout=30)
    finally:
        carol.close()
    assert kafka_python_values(topic, group, kafka_python_sasl(broker, "bob", PASSWORDS["bob"], "PLAIN"), 5) == [f"kp{i}".encode() for i in range(5)]


def test_confluent_kafka_wrong_password_is_an_authentication_error(broker):
    errors = []
    conf = confluent_sasl(broker, "alice", "not-" + PASSWORDS["alice"], "PLAIN",
                          error_cb=errors.append, **{"message.timeout.ms": 2000})
    producer = Producer(conf)
    producer.produce("anything", b"x")
    producer.flush(10)
    # _AUTHENTICATION, carrying the broker's SASL_AUTHENTICATION_FAILED message
    assert any(e.code() == -169 and "Authentication failed: invalid credentials" in e.str() for e in errors), errors


def test_kafka_python_wrong_password_is_an_authentication_error(broker, caplog):
    """kafka-python keeps retrying the bootstrap and ends in a timeout; what it got from the broker
    on each attempt is SaslAuthenticationFailedError (error 58) with the broker's message."""
    from kafka import KafkaProducer  # noqa: PLC0415
    from kafka.errors import KafkaTimeoutError  # noqa: PLC0415

    conf = kafka_python_sasl(broker, "bob", "not-" + PASSWORDS["bob"], "PLAIN")
    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
        KafkaProducer(**conf, bootstrap_timeout_ms=3000)
    assert "[Error 58] SaslAuthenticationFailedError" in caplog.text
    assert "Authentication failed: invalid credentials" in caplog.text


def test_no_password_in_the_broker_log(broker):
    """Runs last in the module: every password used above, and the service bind password the broker
    read from ldap.bind.password.file, are absent from the broker's log."""
    text = broker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "SASL PLAIN authenticated" in text
    for secret in (*PASSWORDS.values(), SERVICE_PASSWORD):
        assert secret not in text
