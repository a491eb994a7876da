"""confluent-kafka's AvroSerializer producing to topics the broker validates against the registry: a
real client sees valid records stored and a garbled payload refused with INVALID_RECORD and the
broker's message."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import KafkaError as ClientError
from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.fixtures.broker import BrokerProcess
from tests.fixtures.clients import consume_assigned, create_topic, flush, producer, wire
from tests.fixtures.records import Record, build_batch
from tests.fixtures.registry import RegistryProcess

pytestmark = pytest.mark.keystream_only

READING = json.dumps({"type": "record", "name": "Reading", "namespace": "k", "fields": [
    {"name": "sensor", "type": "string"}, {"name": "value", "type": "double"},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}]})
VALIDATE = {"confluent.value.schema.validation": "true"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A broker whose confluent.schema.registry.url is a real registry that stores into that broker."""
    root = tmp_path_factory.mktemp("validating")
    broker = BrokerProcess(root / "broker", tls=True)
    registry = RegistryProcess(root / "registry", broker)
    broker.overrides.update({"confluent.schema.registry.url": registry.url,
                             "confluent.ssl.truststore.location": str(broker.tls.ca_cert),
                             "confluent.ssl.keystore.location": str(broker.tls.admin.pem)})
    broker.start()
    try:
        registry.start()
        yield broker, registry
    finally:
        if registry.proc is not None:
            registry.stop(check=False)
        broker.stop()
    assert not broker.tracebacks() and not registry.tracebacks()


def produce_all(broker, topic: str, values: list[bytes]) -> list:
    """Produce with confluent-kafka; -> the delivery error (or None) of each message."""
    errors: list = []
    p = producer(broker, **{"retries": 0, "enable.idempotence": False})
    for v in values:
        p.produce(topic, value=v, on_delivery=lambda err, _msg: errors.append(err))
    flush(p)
    return errors


def test_avro_serializer_records_are_accepted_and_read_back(stack):
    broker, registry = stack
    topic = "readings"
    create_topic(broker, topic, config=VALIDATE)
    sr = SchemaRegistryClient(registry.client_conf())
    ctx = SerializationContext(topic, MessageField.VALUE)
    serialize = AvroSerializer(sr, READING)
    values = [{"sensor": f"s{i}", "value": i / 4, "tags": ["x"] * (i % 3)} for i in range(20)]
    assert produce_all(broker, topic, [serialize(v, ctx) for v in values]) == [None] * 20
    deserialize = AvroDeserializer(SchemaRegistryClient(registry.client_conf()))
    got = consume_assigned(broker, topic, 1, len(values))
    assert [deserialize(m.value, ctx) for m in got] == values


def test_garbled_payload_with_a_valid_id_is_refused_with_the_reason(stack):
    broker, registry = stack
    topic = "garbled"
    create_topic(broker, topic, config=VALIDATE)
    ctx = SerializationContext(topic, MessageField.VALUE)
    good = AvroSerializer(SchemaRegistryClient(registry.client_conf()), READING)(
        {"sensor": "s", "value": 1.0, "tags": []}, ctx)
    garbled = [good[:5] + b"\x7f" + good[6:], good + b"!"]
    errors = produce_all(broker, topic, garbled)
    assert all(e is not None and e.code() == ClientError.INVALID_RECORD for e in errors), errors
    assert produce_all(broker, topic, [good]) == [None]
    # librdkafka reports only the code; the broker's reason travels in the Produce response (KIP-467),
    # where Java clients show it: read it as they do.
    with wire(broker) as client:
        part = client.produce(topic, 0, build_batch([Record(value=garbled[1])]), acks=1)
    assert part.error_code == ClientError.INVALID_RECORD
    assert part.error_message == "record 0: value has 1 bytes after its Avro data"
    assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [
        (0, "value has 1 bytes after its Avro data")]


def test_record_name_strategy_topic(stack):
    broker, registry = stack
    topic = "by-record-name"
    create_topic(broker, topic, config={
        **VALIDATE,
        "confluent.value.subject.name.strategy": "io.confluent.kafka.serializers.subject.RecordNameStrategy"})
    sr = SchemaRegistryClient(registry.client_conf())
    ctx = SerializationContext(topic, MessageField.VALUE)
    serialize = AvroSerializer(sr, READING, conf={"subject.name.strategy": record_subject_name_strategy})
    assert produce_all(broker, topic, [serialize({"sensor": "a", "value": 2.0}, ctx)]) == [None]
    assert "k.Reading" in sr.get_subjects()
    by_topic = AvroSerializer(sr, READING)(
        {"sensor": "a", "value": 2.0}, SerializationContext("elsewhere", MessageField.VALUE))
    assert by_topic[1:5] == serialize({"sensor": "a", "value": 2.0}, ctx)[1:5]  # same schema, same id
