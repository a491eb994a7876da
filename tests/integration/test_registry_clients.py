"""confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer against a live broker
and registry, unchanged: register, evolve under every compatibility level, produce and consume
serialized records, and find every subject and id again after the registry restarts."""

from __future__ import annotations

import itertools
import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.fixtures.clients import consume_assigned, create_topic, flush, producer
from tests.fixtures.sasl import scram_user

pytestmark = pytest.mark.keystream_only

_seq = itertools.count()


def record(*fields) -> Schema:
    return Schema(json.dumps({"type": "record", "name": "Evo", "namespace": "k", "fields": list(fields)}), "AVRO")


A = record({"name": "a", "type": "int"})
B = record({"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""})
C = record({"name": "a", "type": "int"}, {"name": "b", "type": "string"})
X = record({"name": "a", "type": "string"})  # `a` changes type: no level but NONE accepts it next to A/C

# level -> schemas registered in order, and whether the registry accepts each. The transitive levels
# accept the last schema against its predecessor but not against the first one.
EVOLUTIONS = {
    "BACKWARD": ([A, B, C, X], [True, True, True, False]),
    "BACKWARD_TRANSITIVE": ([A, B, C], [True, True, False]),
    "FORWARD": ([C, B, A, X], [True, True, True, False]),
    "FORWARD_TRANSITIVE": ([C, B, A], [True, True, False]),
    "FULL": ([A, B, C, X], [True, True, True, False]),
    "FULL_TRANSITIVE": ([A, B, C], [True, True, False]),
    "NONE": ([A, X, C], [True, True, True]),
}


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = module_broker_factory(tls=True, sasl="SCRAM-SHA-512")
    scram_user(b, "alice", "alice-secret", "SCRAM-SHA-512")
    return b


@pytest.fixture(scope="module")
def registry(broker, registry_factory):
    return registry_factory(broker, **{"super.users": "User:CN=admin;User:alice"})


def client(registry, **kw) -> SchemaRegistryClient:
    return SchemaRegistryClient(registry.client_conf(**kw))


def test_register_and_read_back_with_basic_auth(registry):
    sr = client(registry, basic="alice:alice-secret")
    subject = f"clients{next(_seq)}-value"
    schema_id = sr.register_schema(subject, A)
    assert sr.register_schema(subject, A) == schema_id
    assert json.loads(sr.get_schema(schema_id).schema_str) == json.loads(A.schema_str)
    latest = sr.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, schema_id)
    assert sr.lookup_schema(subject, A).schema_id == schema_id
    assert subject in sr.get_subjects()
    assert sr.get_versions(subject) == [1]
    assert sr.get_compatibility() == "BACKWARD"
    with pytest.raises(SchemaRegistryError) as missing:
        sr.get_latest_version(f"clients{next(_seq)}-value")
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40401)


def test_wrong_password_is_401(registry):
    with pytest.raises(SchemaRegistryError) as refused:
        client(registry, basic="alice:wrong").get_subjects()
    assert refused.value.http_status_code == 401


@pytest.mark.parametrize("level", list(EVOLUTIONS))
def test_evolution_under_each_compatibility_level(registry, level):
    sr = client(registry)
    subject = f"evo{next(_seq)}-{level.lower()}-value"
    assert sr.set_compatibility(subject, level) == {"compatibility": level}
    schemas, accepted = EVOLUTIONS[level]
    outcome = []
    for schema in schemas:
        predicted = sr.test_compatibility_all_versions(subject, schema) if outcome else True
        try:
            sr.register_schema(subject, schema)
            outcome.append(True)
        except SchemaRegistryError as exc:
            assert (exc.http_status_code, exc.error_code) == (409, 40901), exc
            outcome.append(False)
        assert predicted == outcome[-1], f"test_compatibility disagrees with registration of {schema.schema_str}"
    assert outcome == accepted
    assert sr.get_versions(subject) == list(range(1, accepted.count(True) + 1))


def test_produce_and_consume_with_the_avro_serde(broker, registry):
    sr = client(registry)
    topic = f"avro{next(_seq)}"
    create_topic(broker, topic)
    schema = json.dumps({"type": "record", "name": "Reading", "namespace": "k", "fields": [
        {"name": "sensor", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}]})
    serialize = AvroSerializer(sr, schema)
    values = [{"sensor": f"s{i}", "value": i / 4, "tags": ["x"] * (i % 3)} for i in range(20)]
    p = producer(broker)
    ctx = SerializationContext(topic, MessageField.VALUE)
    for value in values:
        p.produce(topic, value=serialize(value, ctx))
    flush(p)
    schema_id = sr.get_latest_version(f"{topic}-value").schema_id
    deserialize = AvroDeserializer(client(registry))  # a fresh client: ids are fetched from the registry
    got = consume_assigned(broker, topic, 1, len(values))
    assert all(m.value[0] == 0 and int.from_bytes(m.value[1:5], "big") == schema_id for m in got)
    assert [deserialize(m.value, ctx) for m in got] == values


def test_restart_finds_every_subject_and_id(registry):
    sr = client(registry)
    prefix = f"restart{next(_seq)}"
    ids = {}
    for i in range(3):
        subject = f"{prefix}-{i}-value"
        sr.set_compatibility(subject, "NONE")
        ids[subject] = [sr.register_schema(subject, s) for s in [A, B, C][: i + 1]]
    sr.delete_version(f"{prefix}-2-value", 1)
    before = registry.http("GET", f"/schemas?subjectPrefix={prefix}&deleted=true").json()
    configs = {s: registry.http("GET", f"/config/{s}").json() for s in ids}

    registry.restart()
    _assert_same(registry, prefix, ids, before, configs)
    registry.kill9()
    registry.start()
    _assert_same(registry, prefix, ids, before, configs)
    newest = client(registry).register_schema(f"{prefix}-new-value", record({"name": "z", "type": "long"}))
    assert newest > max(max(v) for v in ids.values())


def _assert_same(registry, prefix, ids, before, configs):
    sr = client(registry)
    assert sorted(s for s in sr.get_subjects() if s.startswith(prefix)) == sorted(ids)
    for subject, expected in ids.items():
        versions = sr.get_versions(subject)
        assert [sr.get_version(subject, v).schema_id for v in versions] == expected[len(expected) - len(versions):]
    assert registry.http("GET", f"/schemas?subjectPrefix={prefix}&deleted=true").json() == before
    assert {s: registry.http("GET", f"/config/{s}").json() for s in ids} == configs
