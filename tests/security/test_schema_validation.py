"""Broker-side schema validation under attack: a real broker validating against a real registry.

Each produce goes through the broker's wire protocol (raw Produce requests from WireClient, so a
test can send exactly the bytes it means); the registry is the real `keystream registry serve`.
"""

from __future__ import annotations

import io
import json
import struct
import time

import fastavro
import pytest

from keystream.broker.records import encode_varint as zigzag
from tests.fixtures.broker import BrokerProcess
from tests.fixtures.records import Record, build_batch
from tests.fixtures.registry import RegistryProcess
from tests.fixtures.waiting import wait_for

INVALID_RECORD, REQUEST_TIMED_OUT = 87, 7

USER = {"type": "record", "name": "User", "namespace": "com.acme", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": "string"}, {"name": "blob", "type": "bytes"},
    {"name": "tags", "type": {"type": "array", "items": "long"}}]}
NODE = {"type": "record", "name": "Node", "fields": [{"name": "v", "type": "int"},
                                                     {"name": "next", "type": ["null", "Node"]}]}
NULLS = {"type": "record", "name": "Nulls", "fields": [{"name": "xs", "type": {"type": "array", "items": "null"}}]}



def encode(schema: dict, datum, schema_id: int) -> bytes:
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, fastavro.parse_schema(schema), datum)
    return b"\x00" + struct.pack(">I", schema_id) + bio.getvalue()


class Cluster:
    def __init__(self, broker: BrokerProcess, registry: RegistryProcess):
        self.broker, self.registry = broker, registry
        self.ids: dict[str, int] = {}
        self.wire = broker.tls.wire(broker.address)

    def register(self, subject: str, schema: dict) -> int:
        reply = self.registry.http("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema)})
        assert reply.status == 200, reply.body
        return reply.json()["id"]

    def create_topic(self, name: str, **configs: str) -> None:
        self.wire.create_topic(name, configs=configs)

    def produce(self, topic: str, values, *, keys=None):
        """One raw Produce request (acks=1); -> that partition's response."""
        keys = keys or [None] * len(values)
        batch = build_batch([Record(key=k, value=v) for k, v in zip(keys, values, strict=True)])
        return self.wire.produce(topic, 0, batch, acks=1, timeout_ms=30000)

    def end_offset(self, topic: str) -> int:
        return self.wire.list_offset(topic, 0).offset


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    broker = BrokerProcess(root / "broker", tls=True)
    registry = RegistryProcess(root / "registry", broker)
    broker.overrides.update({
        "confluent.schema.registry.url": registry.url,
        "confluent.ssl.truststore.location": str(broker.tls.ca_cert),
        "confluent.ssl.keystore.location": str(broker.tls.admin.pem),
        "confluent.schema.registry.timeout.ms": 3000,
        "confluent.missing.id.cache.ttl.sec": 1,
    })
    broker.start()
    registry.start()
    c = Cluster(broker, registry)
    c.ids["user"] = c.register("validated-value", USER)
    assert c.register("batch-value", USER) == c.ids["user"]
    c.ids["node"] = c.register("deep-value", NODE)
    c.ids["nulls"] = c.register("nulls-value", NULLS)
    c.ids["other"] = c.register("other-value", {"type": "record", "name": "Other", "fields": []})
    for topic in ("validated", "deep", "nulls", "batch"):
        c.create_topic(topic, **{"confluent.value.schema.validation": "true"})
    c.create_topic("plain")
    yield c
    c.wire.close()
    registry.stop(check=False)
    broker.stop()
    assert not broker.tracebacks(), broker.tracebacks()


def user(i: int = 1) -> dict:
    return {"id": i, "name": f"user-{i}", "blob": b"\x01\x02", "tags": [1, 2, 3]}


def refused(part, *, index: int = 0) -> str:
    assert part.error_code == INVALID_RECORD, (part.error_code, part.error_message)
    assert part.base_offset == -1
    assert [e.batch_index for e in part.record_errors] == [index]
    assert part.record_errors[0].batch_index_error_message in part.error_message
    return part.error_message


def test_valid_records_are_appended(cluster):
    part = cluster.produce("validated", [encode(USER, user(i), cluster.ids["user"]) for i in range(10)] + [None])
    assert part.error_code == 0, part.error_message
    assert part.base_offset >= 0


def test_gigabyte_bytes_length_prefix(cluster):
    rss = cluster.broker.rss_bytes()
    bad = b"\x00" + struct.pack(">I", cluster.ids["user"]) + zigzag(1) + zigzag(1) + b"a" + zigzag(3 << 30) + b"xy"
    started = time.monotonic()
    assert "truncated" in refused(cluster.produce("validated", [bad]))
    assert time.monotonic() - started < 5
    assert cluster.broker.rss_bytes() < rss + (64 << 20)


def test_gigabyte_array_count_of_zero_size_items(cluster):
    rss = cluster.broker.rss_bytes()
    bad = b"\x00" + struct.pack(">I", cluster.ids["nulls"]) + zigzag(2**40) + zigzag(0)
    started = time.monotonic()
    assert "collection items" in refused(cluster.produce("nulls", [bad]))
    assert time.monotonic() - started < 5
    assert cluster.broker.rss_bytes() < rss + (64 << 20)


def test_trailing_bytes(cluster):
    good = encode(USER, user(), cluster.ids["user"])
    assert "bytes after its Avro data" in refused(cluster.produce("validated", [good + b"\x00\x00"]))


def test_truncated_payload(cluster):
    good = encode(USER, user(), cluster.ids["user"])
    assert refused(cluster.produce("validated", [good[:-2]]))


def test_wrong_magic(cluster):
    good = encode(USER, user(), cluster.ids["user"])
    assert "magic byte 7" in refused(cluster.produce("validated", [b"\x07" + good[1:]]))


def test_valid_id_from_another_subject(cluster):
    other = b"\x00" + struct.pack(">I", cluster.ids["other"])
    assert "not registered under subject validated-value" in refused(cluster.produce("validated", [other]))


def test_unknown_id(cluster):
    unknown = encode(USER, user(), 987654)
    assert "schema id 987654 is not registered" in refused(cluster.produce("validated", [unknown]))


def test_deep_recursive_payload_does_not_crash_the_broker(cluster):
    deep = b"\x00" + struct.pack(">I", cluster.ids["node"]) + (zigzag(1) + zigzag(1)) * 5000 + zigzag(1) + zigzag(0)
    assert "deeper than" in refused(cluster.produce("deep", [deep]))
    assert cluster.broker.running
    shallow = encode(NODE, {"v": 1, "next": {"v": 2, "next": None}}, cluster.ids["node"])
    assert cluster.produce("deep", [shallow]).error_code == 0


def test_one_bad_record_refuses_the_whole_batch(cluster):
    good = [encode(USER, user(i), cluster.ids["user"]) for i in range(50)]
    first = cluster.produce("batch", good)
    assert first.error_code == 0
    end = cluster.end_offset("batch")
    bad = list(good)
    bad[37] = bad[37][:-1]
    refused(cluster.produce("batch", bad), index=37)
    assert cluster.end_offset("batch") == end  # nothing appended
    again = cluster.produce("batch", good)
    assert again.error_code == 0 and again.base_offset == end  # offsets stay contiguous
    fetched = cluster.wire.fetch("batch", 0, first.base_offset)
    assert fetched.error_code == 0


def test_topics_without_validation_are_unaffected(cluster):
    part = cluster.produce("plain", [b"not avro at all", None, b"\x00"])
    assert part.error_code == 0, part.error_message


def test_registry_stopped_mid_run_fails_closed_then_recovers(cluster):
    registry = cluster.registry
    registry.stop()
    try:
        unseen = encode(USER, user(), 424242)  # an id the broker has not cached
        part = cluster.produce("validated", [unseen])
        assert part.error_code == REQUEST_TIMED_OUT, (part.error_code, part.error_message)
        assert registry.url in part.error_message and "refused until it answers" in part.error_message
        cached = cluster.produce("validated", [encode(USER, user(), cluster.ids["user"])])
        assert cached.error_code == 0  # a schema already cached needs no registry
    finally:
        registry.start()
    new_id = cluster.register("validated-value", {**USER, "fields": USER["fields"] + [
        {"name": "extra", "type": "int", "default": 0}]})
    value = encode({**USER, "fields": USER["fields"] + [{"name": "extra", "type": "int", "default": 0}]},
                   {**user(), "extra": 5}, new_id)
    part = wait_for(lambda: (p := cluster.produce("validated", [value])).error_code == 0 and p, 20,
                    message="produce to succeed once the registry is back")
    assert part.base_offset >= 0
