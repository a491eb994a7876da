"""The real clients over mTLS with the fixture's settings: confluent-kafka, kafka-python, aiokafka
and kcat each produce and consume on an SSL listener as the admin certificate."""

from __future__ import annotations

import asyncio
import json

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.fixtures.clients import KCAT, kcat
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only


@pytest.fixture(scope="module")
def tls_broker(module_broker_factory):
    return module_broker_factory(tls=True)


def _topic(b) -> str:
    name = unique_name("tls")
    a = AdminClient(b.tls.confluent(b.bootstrap))
    a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=20)
    wait_for(lambda: name in a.list_topics(timeout=5).topics, 15, message=f"topic {name}")
    return name


def test_confluent_kafka(tls_broker):
    b = tls_broker
    topic = _topic(b)
    p = Producer({**b.tls.confluent(b.bootstrap), "acks": "all"})
    for i in range(10):
        p.produce(topic, f"v{i}".encode(), key=b"k")
    assert p.flush(20) == 0
    c = Consumer({**b.tls.confluent(b.bootstrap), "group.id": unique_name("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    try:
        wait_for(lambda: got.extend(m.value() for m in c.consume(10, 1) if not m.error()) or len(got) >= 10, 30,
                 message="10 records")
    finally:
        c.close()
    assert got == [f"v{i}".encode() for i in range(10)]


def test_kafka_python(tls_broker):
    from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415

    b = tls_broker
    topic = _topic(b)
    p = KafkaProducer(**b.tls.kafka_python(b.bootstrap))
    for i in range(5):
        p.send(topic, f"kp{i}".encode()).get(timeout=20)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **b.tls.kafka_python(b.bootstrap))
    got = [m.value for m in c]
    c.close()
    assert got == [f"kp{i}".encode() for i in range(5)]


def test_aiokafka(tls_broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: PLC0415

    b = tls_broker
    topic = _topic(b)

    async def run():
        p = AIOKafkaProducer(**b.tls.aiokafka(b.bootstrap))
        await p.start()
        try:
            for i in range(5):
                await p.send_and_wait(topic, f"ak{i}".encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **b.tls.aiokafka(b.bootstrap))
        await c.start()
        got = []
        try:
            async with asyncio.timeout(30):
                async for m in c:
                    got.append(m.value)
                    if len(got) == 5:
                        break
        finally:
            await c.stop()
        return got

    assert asyncio.run(run()) == [f"ak{i}".encode() for i in range(5)]


def test_kcat(tls_broker, tmp_path):
    assert KCAT is not None, "kcat is not installed (apt-get install kcat)"
    b = tls_broker
    topic = _topic(b)
    args = b.tls.kcat_args(b.bootstrap)
    kcat(*args, "-P", "-t", topic, input=b"one\ntwo\n")
    out = kcat(*args, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q").stdout.decode()
    assert [json.loads(line)["payload"] for line in out.splitlines() if line.strip()] == ["one", "two"]
    # The same through a Kafka client.properties file (PEM keystore), as `keystream up` writes it.
    props = b.tls.client_properties(tmp_path / "client.properties")
    assert "ssl.keystore.location" in props.read_text()
