"""SASL/GSSAPI end to end against a real MIT KDC: kafka-python's GSSAPI client, Debian's kcat and
Debian's python3-confluent-kafka (librdkafka 2.0 with Cyrus SASL) produce and consume on a SASL_SSL listener as User:alice with ACLs
deciding (bob authenticates but may not write), and over the wire a principal the rules do not map gets SASL_AUTHENTICATION_FAILED with no ticket bytes
in the broker's log."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka.admin import (
    AclOperation,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import TopicAuthorizationFailedError

from keystream.broker.protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from keystream.broker.protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from tests.fixtures.clients import create_topic, kcat
from tests.fixtures.kerberos_client import (
    KafkaGssapiClient,
    kafka_python_gssapi,
    kerberos_login,
    librdkafka_gssapi,
)
from tests.fixtures.sasl import sasl_wire
from tests.fixtures.sasl_acls import allow_topic_and_group
from tests.fixtures.waiting import Deadline
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only
SASL_AUTHENTICATION_FAILED = 58


@pytest.fixture(scope="module")
def broker(module_broker_factory, kdc):
    return module_broker_factory(tls=True, sasl="GSSAPI", **kdc.properties())


def test_kafka_python_as_user_alice_with_acls(broker, kdc, monkeypatch, tmp_path):
    topic, group = unique_name("krb"), unique_name("g")
    create_topic(broker, topic)
    allow_topic_and_group(broker, "User:alice", topic, group, AclOperation.WRITE, AclOperation.READ)
    kerberos_login(monkeypatch, kdc, "alice", tmp_path)
    producer = KafkaProducer(**kafka_python_gssapi(broker))
    try:
        for i in range(5):
            producer.send(topic, f"v{i}".encode()).get(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", **kafka_python_gssapi(broker))
    try:
        values, deadline = [], Deadline(30)
        while len(values) < 5 and not deadline.expired():
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
    finally:
        consumer.close()
    assert values == [f"v{i}".encode() for i in range(5)]


def test_bob_authenticates_but_no_acl_lets_him_write(broker, kdc, monkeypatch, tmp_path):
    topic = unique_name("krb")
    create_topic(broker, topic)
    kerberos_login(monkeypatch, kdc, "bob", tmp_path)
    producer = KafkaProducer(**kafka_python_gssapi(broker, max_block_ms=10000))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, b"x").get(timeout=30)
    finally:
        producer.close(timeout=10)


def test_unmapped_principal_is_refused_on_the_wire(broker_factory, kdc):
    b = broker_factory(tls=True, sasl="GSSAPI",
                       **kdc.properties(sasl_kerberos_principal_to_local_rules="RULE:[1:$1](bob)"))
    client = KafkaGssapiClient(kdc, "alice")
    with sasl_wire(b) as conn:
        assert conn.request(SaslHandshakeRequest(mechanism="GSSAPI"), 1).error_code == 0
        answer = conn.request(SaslAuthenticateRequest(auth_bytes=client.ap_req()), 2)
        assert answer.error_code == SASL_AUTHENTICATION_FAILED
        assert "alice" not in answer.error_message  # the message says nothing about the user
    log = b.log_path.read_text()
    assert "No rules apply to alice@KEYSTREAM.TEST" in log
    for token in client.sent:
        assert token[:16].hex() not in log and token[-16:].hex() not in log


@pytest.fixture(scope="module")
def localhost_broker(module_broker_factory, kdc):
    """librdkafka names the service after the host it connects to, so this broker advertises its
    SASL listener as localhost (kafka/localhost; the KDC knows no kafka/127.0.0.1)."""
    b = module_broker_factory(tls=True, sasl="GSSAPI", start=False, **kdc.properties())
    b.overrides["advertised.listeners"] = f"SSL://127.0.0.1:{b.port},SASL_SSL://localhost:{b.sasl_port}"
    b.start()
    return b


def test_kcat_with_cyrus_sasl(localhost_broker, kdc, monkeypatch, tmp_path):
    b = localhost_broker
    topic, group = unique_name("krb"), unique_name("g")
    create_topic(b, topic)
    allow_topic_and_group(b, "User:alice", topic, group, AclOperation.WRITE, AclOperation.READ)
    kerberos_login(monkeypatch, kdc, "alice", tmp_path)
    kdc.kinit("alice", tmp_path / "alice.cc")
    args = [arg for k, v in librdkafka_gssapi(b).items() for arg in ("-X", f"{k}={v}")]
    kcat(*args, "-P", "-t", topic, input=b"one\ntwo\n")
    out = kcat(*args, "-C", "-G", group, "-o", "beginning", "-c", "2", "-e", topic, timeout=60)
    assert sorted(out.stdout.split()) == [b"one", b"two"]
    assert "SASL/GSSAPI: alice@KEYSTREAM.TEST" in b.log_path.read_text()


# Runs under Debian's /usr/bin/python3: the PyPI wheel's librdkafka has no GSSAPI.
DEBIAN_CLIENT = """
import json, sys
from confluent_kafka import Consumer, Producer
conf, topic, group = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
p = Producer(conf)
for v in (b"one", b"two"):
    p.produce(topic, v)
assert p.flush(30) == 0, "undelivered"
c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest"})
c.subscribe([topic])
got = []
for _ in range(120):
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
    if len(got) == 2:
        break
c.close()
print(json.dumps(got))
"""


def test_debian_confluent_kafka_with_cyrus_sasl(localhost_broker, kdc, monkeypatch, tmp_path):
    b = localhost_broker
    topic, group = unique_name("krb"), unique_name("g")
    create_topic(b, topic)
    allow_topic_and_group(b, "User:bob", topic, group, AclOperation.WRITE, AclOperation.READ)
    kerberos_login(monkeypatch, kdc, "bob", tmp_path)
    kdc.kinit("bob", tmp_path / "bob.cc")
    done = subprocess.run(["/usr/bin/python3", "-c", DEBIAN_CLIENT, json.dumps(librdkafka_gssapi(b)), topic, group],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["one", "two"]
    assert "SASL/GSSAPI: bob@KEYSTREAM.TEST" in b.log_path.read_text()
