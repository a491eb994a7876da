"""The broker's Avro validator and its payload guard, on real fastavro encodings (no registry: schemas
are put into the client's cache; the one HTTP case points at a closed port)."""

from __future__ import annotations

import asyncio
import io
import random
import socket
import struct
import time
import tracemalloc

import fastavro
import pytest

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.config import LogConfig
from keystream.broker.records import encode_varint as zigzag
from keystream.config import Config
from keystream.registry.avro_guard import MAX_DEPTH, compile_guard
from keystream.registry.schema import parse_schema
from keystream.registry.schema_client import SUBJECTS_TTL_S
from keystream.registry.validator import SchemaValidator
from tests.fixtures.records import Record, build_batch

USER = {"type": "record", "name": "User", "namespace": "com.acme", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": "string"}, {"name": "blob", "type": "bytes"},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
NODE = {"type": "record", "name": "Node", "fields": [{"name": "v", "type": "int"},
                                                     {"name": "next", "type": ["null", "Node"]}]}
NULLS = {"type": "record", "name": "Nulls", "fields": [{"name": "xs", "type": {"type": "array", "items": "null"}}]}
OTHER = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}
VALUE = LogConfig(confluent_value_schema_validation=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def encode(schema: dict, datum, schema_id: int = 1) -> bytes:
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, fastavro.parse_schema(schema), datum)
    return b"\x00" + struct.pack(">I", schema_id) + bio.getvalue()


def user(i: int = 1) -> dict:
    return {"id": i, "name": f"user-{i}", "blob": b"\x00\xff", "tags": ["a", "b"], "at": 1_700_000_000_000}


@pytest.fixture
def validator():
    v = SchemaValidator(Config({"confluent.schema.registry.url": f"http://127.0.0.1:{closed_port()}",
                                "confluent.schema.registry.timeout.ms": 2000}))
    client = v.client
    client.put(1, parse_schema(_json(USER)), {"t-value", "t-key"})
    client.put(2, parse_schema(_json(NODE)), {"t-value"})
    client.put(3, parse_schema(_json(NULLS)), {"t-value"})
    client.put(4, parse_schema(_json(OTHER)), {"elsewhere-value"})
    client.put(5, parse_schema(_json(USER)), {"com.acme.User", "t-com.acme.User"})
    yield v
    asyncio.run(v.close())


def _json(schema: dict) -> str:
    import json

    return json.dumps(schema)


def run(v: SchemaValidator, values, cfg: LogConfig = VALUE, *, keys=None, compression="none", topic="t"):
    keys = keys or [None] * len(values)
    batch = build_batch([Record(key=k, value=x) for k, x in zip(keys, values, strict=True)],
                        compression=compression)
    asyncio.run(v.validate(topic, cfg, batch))


def refused(v: SchemaValidator, values, **kw) -> KafkaError:
    with pytest.raises(KafkaError) as info:
        run(v, values, **kw)
    e = info.value
    assert e.code == ErrorCode.INVALID_RECORD, e
    assert len(e.record_errors) == 1 and e.record_errors[0][1] in e.message
    return e


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_valid_records_pass(validator, compression):
    run(validator, [encode(USER, user(i)) for i in range(50)], compression=compression)


def test_null_values_pass_as_in_confluent_server(validator):
    run(validator, [encode(USER, user()), None, encode(USER, user(2))])


def test_logical_type_values_python_cannot_represent_still_pass(validator):
    at_zero = encode(USER, {**user(), "at": 0})  # "at" is the last field: its 1-byte 0 ends the payload
    run(validator, [at_zero[:-1] + zigzag(2**62)])  # a valid long; no datetime can hold it


def test_wrong_magic_names_the_record(validator):
    good = encode(USER, user())
    e = refused(validator, [good, good, b"\x01" + good[1:], good])
    assert e.record_errors[0][0] == 2 and "magic byte 1" in e.message


def test_short_value(validator):
    assert "too short" in refused(validator, [b"\x00\x00\x01"]).message


def test_trailing_bytes(validator):
    e = refused(validator, [encode(USER, user()) + b"\x00"])
    assert "1 bytes after its Avro data" in e.message


@pytest.mark.parametrize("where", [0, 1])
def test_truncated_payload_first_or_last(validator, where):
    good = encode(USER, user())
    values = [good, good]
    values[where] = good[:-3]
    e = refused(validator, values)
    assert e.record_errors[0][0] == where
    assert "truncated" in e.message


def test_id_from_another_subject_asks_the_registry_before_refusing(validator):
    """The id may have been registered under t-value since it was cached: the broker asks (at most once
    a second per id); this registry is down, so the answer is the retriable fail-closed error."""
    with pytest.raises(KafkaError) as info:
        run(validator, [encode(OTHER, {"x": 1}, schema_id=4)])
    assert info.value.code == ErrorCode.REQUEST_TIMED_OUT


def test_invalid_utf8_string(validator):
    bad = b"\x00" + struct.pack(">I", 1) + zigzag(1) + zigzag(2) + b"\xff\xfe" + zigzag(0) + zigzag(0) + zigzag(0)
    assert "UTF-8" in refused(validator, [bad]).message


def test_bad_union_and_enum_index(validator):
    payload = b"\x00" + struct.pack(">I", 2) + zigzag(1) + zigzag(7)
    assert refused(validator, [payload]).record_errors[0][0] == 0


def test_gigabyte_length_prefix_refused_without_allocating(validator):
    bad = b"\x00" + struct.pack(">I", 1) + zigzag(1) + zigzag(3 << 30) + b"abc"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        refused(validator, [bad])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 16 << 20


def test_huge_array_of_zero_size_items_refused_fast(validator):
    bad = b"\x00" + struct.pack(">I", 3) + zigzag(2**40) + zigzag(0)
    started = time.perf_counter()
    e = refused(validator, [bad])
    assert time.perf_counter() - started < 1.0
    assert "collection items" in e.message
    run(validator, [b"\x00" + struct.pack(">I", 3) + zigzag(100) + zigzag(0)])  # a modest one is fine


def test_deep_recursive_payload_refused_without_crash(validator):
    deep = b"\x00" + struct.pack(">I", 2) + (zigzag(1) + zigzag(1)) * 5000 + zigzag(1) + zigzag(0)
    assert "deeper than" in refused(validator, [deep]).message
    ok = b"\x00" + struct.pack(">I", 2) + (zigzag(1) + zigzag(1)) * (MAX_DEPTH - 2) + zigzag(1) + zigzag(0)
    run(validator, [ok])


def test_one_bad_record_among_many(validator):
    values = [encode(USER, user(i)) for i in range(100)]
    values[63] = values[63][:-1] + b"\xff\xff"
    assert refused(validator, values).record_errors[0][0] == 63


def test_record_index_counts_across_batches(validator):
    good = encode(USER, user())
    records = build_batch([Record(value=good)] * 3) + build_batch([Record(value=good), Record(value=b"junk!")])
    with pytest.raises(KafkaError) as info:
        asyncio.run(validator.validate("t", VALUE, records))
    assert info.value.record_errors[0][0] == 4


def test_key_validation(validator):
    cfg = LogConfig(confluent_key_schema_validation=True)
    run(validator, [b"anything"], cfg, keys=[encode(USER, user())])
    run(validator, [b"anything"], cfg, keys=[None])
    e = refused(validator, [b"x"], cfg=cfg, keys=[b"plain key"])
    assert "key" in e.message


@pytest.mark.parametrize("strategy, topic_ok", [("RecordNameStrategy", "any-topic"),
                                                ("TopicRecordNameStrategy", "t")])
def test_record_name_strategies(validator, strategy, topic_ok):
    cfg = LogConfig(confluent_value_schema_validation=True,
                    confluent_value_subject_name_strategy="io.confluent.kafka.serializers.subject." + strategy)
    run(validator, [encode(USER, user(), schema_id=5)], cfg, topic=topic_ok)
    with pytest.raises(KafkaError):  # id 1 is only under t-value/t-key (checked again with the registry)
        run(validator, [encode(USER, user(), schema_id=1)], cfg, topic=topic_ok)


def test_registry_unreachable_fails_closed(validator):
    with pytest.raises(KafkaError) as info:
        run(validator, [encode(USER, user(), schema_id=99)])
    assert info.value.code == ErrorCode.REQUEST_TIMED_OUT
    assert "unreachable" in info.value.message and "refused until it answers" in info.value.message
    assert validator.failures == 1


def test_random_garbage_only_ever_refuses_cleanly(validator):
    rnd = random.Random(7)
    good = [encode(USER, user()), encode(NODE, {"v": 1, "next": {"v": 2, "next": None}}, 2),
            encode(NULLS, {"xs": [None] * 3}, 3)]
    for n in range(1500):
        base = bytearray(rnd.choice(good))
        for _ in range(rnd.randint(1, 4)):
            base[rnd.randrange(5, len(base))] = rnd.randrange(256)
        if n % 3 == 0:
            base += bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 8)))
        try:
            run(validator, [bytes(base)])
        except KafkaError as e:
            assert e.code == ErrorCode.INVALID_RECORD, e


def test_guard_decides_per_schema():
    assert compile_guard(fastavro.parse_schema(USER)) is None
    assert compile_guard(fastavro.parse_schema(OTHER)) is None
    maps = {"type": "map", "values": {"type": "record", "name": "E", "fields": []}}
    assert compile_guard(fastavro.parse_schema(maps)) is None  # every map entry has a key byte
    assert compile_guard(fastavro.parse_schema(NODE)).reason == "recursive"
    assert compile_guard(fastavro.parse_schema(NULLS)).reason == "array of zero-size items"
    fixed0 = {"type": "array", "items": {"type": "fixed", "name": "F", "size": 0}}
    assert compile_guard(fastavro.parse_schema(fixed0)).reason == "array of zero-size items"


# ---------------------------------------------------------------- registry faults (in-process fake)
class FakeRegistry:
    """An aiohttp server answering /schemas/ids/... the way a test says, counting requests."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.status, self.delay, self.requests = status, delay, []
        self.subjects = ["t-value"]  # what /schemas/ids/7/versions answers

    async def handle(self, request):
        from aiohttp import web

        self.requests.append(request.path)
        if self.delay:
            await asyncio.sleep(self.delay)  # the fault: a registry slower than the broker's timeout
        if self.status != 200:
            return web.json_response({"error_code": self.status, "message": "injected"}, status=self.status)
        if request.path == "/schemas/ids/7":
            return web.json_response({"schema": _json(USER)})
        if request.path == "/schemas/ids/7/versions":
            return web.json_response([{"subject": s, "version": 1} for s in self.subjects])
        return web.json_response({"error_code": 40403, "message": "Schema not found"}, status=404)

    async def run(self, body):
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        v = SchemaValidator(Config({"confluent.schema.registry.url": f"http://127.0.0.1:{port}",
                                    "confluent.schema.registry.timeout.ms": 300,
                                    "confluent.missing.id.cache.ttl.sec": 60}))
        try:
            return await body(v)
        finally:
            await v.close()
            await runner.cleanup()


def batch_of(*values) -> bytes:
    return build_batch([Record(value=x) for x in values])


@pytest.mark.parametrize("status", [500, 401, 403])
def test_registry_errors_fail_closed(status):
    fake = FakeRegistry(status=status)

    async def body(v):
        with pytest.raises(KafkaError) as info:
            await v.validate("t", VALUE, batch_of(encode(USER, user(), schema_id=7)))
        return info.value

    e = asyncio.run(fake.run(body))
    assert e.code == ErrorCode.REQUEST_TIMED_OUT and f"HTTP {status}" in e.message


def test_slow_registry_times_out_closed():
    async def body(v):
        with pytest.raises(KafkaError) as info:
            await v.validate("t", VALUE, batch_of(encode(USER, user(), schema_id=7)))
        return info.value

    assert asyncio.run(FakeRegistry(delay=2.0).run(body)).code == ErrorCode.REQUEST_TIMED_OUT


def test_concurrent_batches_share_one_fetch_and_unknown_ids_are_remembered():
    fake = FakeRegistry()

    async def body(v):
        good = batch_of(encode(USER, user(), schema_id=7))
        await asyncio.gather(*(v.validate("t", VALUE, good) for _ in range(10)))
        for _ in range(3):
            with pytest.raises(KafkaError) as info:
                await v.validate("t", VALUE, batch_of(encode(USER, user(), schema_id=8)))
            assert info.value.code == ErrorCode.INVALID_RECORD
            assert "schema id 8 is not registered" in info.value.message

    asyncio.run(fake.run(body))
    assert fake.requests == ["/schemas/ids/7", "/schemas/ids/7/versions", "/schemas/ids/8"]


def test_a_schema_deleted_from_the_subject_stops_validating_once_its_subjects_expire():
    fake = FakeRegistry()

    async def body(v):
        good = batch_of(encode(USER, user(), schema_id=7))
        await v.validate("t", VALUE, good)
        fake.subjects = []  # deleted from t-value at the registry
        await v.validate("t", VALUE, good)  # still trusted within SUBJECTS_TTL_S: no request
        v.client.cached(7).refreshed_at -= SUBJECTS_TTL_S + 1
        v._admitted_at -= SUBJECTS_TTL_S + 1
        with pytest.raises(KafkaError) as info:
            await v.validate("t", VALUE, good)
        return info.value

    e = asyncio.run(fake.run(body))
    assert e.code == ErrorCode.INVALID_RECORD and "not registered under subject t-value" in e.message
    assert fake.requests == ["/schemas/ids/7", "/schemas/ids/7/versions", "/schemas/ids/7/versions"]
