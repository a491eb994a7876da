"""registry.schema: what the registry accepts, and the canonical/normalized forms that decide "same schema"."""

import io
import json
import time
from decimal import Decimal

import fastavro
import pytest

from keystream.registry.compat import LEVELS, check, reader_can_read
from keystream.registry.schema import (
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    Reference,
    SchemaError,
    parse_schema,
)

PERSON = {
    "type": "record", "name": "Person", "namespace": "com.example", "doc": "A person",
    "aliases": ["Human", "other.Being"], "connect.name": "x",
    "fields": [
        {"name": "name", "type": "string", "doc": "full name", "aliases": ["fullName"]},
        {"name": "age", "type": ["null", "int"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"], "default": "A"},
         "default": "B", "order": "descending"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
        {"name": "other", "type": ["null", "Kind"], "default": None},
    ],
}


def text(obj, **kw) -> str:
    return json.dumps(obj, **kw)


def test_canonical_ignores_formatting_and_key_order():
    a = parse_schema(text(PERSON))
    b = parse_schema(text(PERSON, indent=4))
    c = parse_schema(text(dict(reversed(list(PERSON.items()))), sort_keys=True))
    assert a.canonical == b.canonical == c.canonical
    assert a.identity() == c.identity() and a.identity(normalize=True) == c.identity(normalize=True)
    assert a.canonical.startswith('{"type":"record","name":"Person","namespace":"com.example","doc":"A person",')


def test_canonical_keeps_docs_defaults_aliases_properties_and_logical_types():
    c = json.loads(parse_schema(text(PERSON)).canonical)
    assert c["aliases"] == ["Human", "other.Being"] and c["connect.name"] == "x"
    name, age, kind, price, other = c["fields"]
    assert name == {"name": "name", "type": "string", "doc": "full name", "aliases": ["fullName"]}
    assert age["default"] is None
    assert kind["type"]["default"] == "A" and kind["default"] == "B" and kind["order"] == "descending"
    assert price["type"] == {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}
    assert other["type"] == ["null", "Kind"]  # named types in full once, then by (short) name


def test_primitive_canonical_is_the_bare_name():
    assert parse_schema('{"type": "string"}').canonical == '"string"'
    assert parse_schema('  "long" ').canonical == '"long"'
    assert parse_schema('{"type": "int", "connect.type": "int16"}').canonical == '{"type":"int","connect.type":"int16"}'


def test_same_name_written_two_ways_is_the_same_schema():
    a = parse_schema('{"type":"record","name":"a.b.R","fields":[]}')
    b = parse_schema('{"type":"record","name":"R","namespace":"a.b","fields":[]}')
    assert a.canonical == b.canonical and a.fullname == "a.b.R"


def test_normalized_fully_qualifies_and_sorts():
    n = json.loads(parse_schema(text(PERSON)).normalized)
    assert n["name"] == "com.example.Person" and "namespace" not in n
    assert list(n)[:3] == ["name", "type", "fields"]
    assert n["aliases"] == ["com.example.Human", "other.Being"]
    assert n["fields"][2]["type"]["name"] == "com.example.Kind"
    assert n["fields"][4]["type"] == ["null", "com.example.Kind"]
    swapped = dict(PERSON, aliases=["other.Being", "Human"])
    assert parse_schema(text(swapped)).normalized == parse_schema(text(PERSON)).normalized
    assert parse_schema(text(swapped)).canonical != parse_schema(text(PERSON)).canonical


def test_normalized_keeps_a_null_namespace_inside_a_namespace():
    s = {"type": "record", "name": "a.R", "fields": [{"name": "f", "type": {
        "type": "fixed", "name": "F", "namespace": "", "size": 2}}]}
    p = parse_schema(text(s))
    assert p.names["F"].namespace is None
    assert set(parse_schema(p.normalized).names) == {"a.R", "F"}
    assert set(parse_schema(p.canonical).names) == {"a.R", "F"}


@pytest.mark.parametrize("schema", [
    PERSON,
    {"type": "record", "name": "L", "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "L"]}]},
    {"type": "array", "items": {"type": "map", "values": {"type": "fixed", "name": "F", "size": 3}}},
    {"type": "error", "name": "Oops", "fields": []},
])
def test_forms_parse_back_to_themselves(schema):
    p = parse_schema(text(schema))
    assert parse_schema(p.canonical).canonical == p.canonical
    assert parse_schema(p.normalized).normalized == p.normalized
    assert reader_can_read(parse_schema(p.normalized), p) == []


def test_parsed_is_ready_for_fastavro():
    p = parse_schema(text(PERSON))
    datum = {"name": "Ann", "age": 3, "kind": "A", "price": Decimal("12.34"), "other": None}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, p.parsed, datum)
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, p.parsed) == datum
    assert p.fullname == "com.example.Person" and p.schema_type == "AVRO"
    assert parse_schema('"int"').fullname is None


# --- invalid input ------------------------------------------------------------------------------------


def test_too_large_schema_is_refused_with_a_clear_message():
    big = text({"type": "record", "name": "R", "doc": "x" * MAX_SCHEMA_BYTES, "fields": []})
    with pytest.raises(SchemaError, match="larger than the limit"):
        parse_schema(big)


def test_deep_nesting_is_refused_before_json_parsing():
    started = time.monotonic()
    for deep in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000, "[" * 500_000):
        with pytest.raises(SchemaError, match=f"deeper than {MAX_SCHEMA_DEPTH}"):
            parse_schema(deep)
    assert time.monotonic() - started < 2


def test_brackets_inside_strings_do_not_count_as_depth():
    doc = "[{" * 1000
    p = parse_schema(text({"type": "record", "name": "R", "doc": doc, "fields": []}))
    assert json.loads(p.canonical)["doc"] == doc


@pytest.mark.parametrize("bad,match", [
    ("{not json", "Invalid schema JSON"),
    ('{"type": "double", "default": NaN}', "Invalid schema JSON"),
    ('{"type": "double", "x": 1e999}', "out of range"),
    ('{"type": "string", "doc": "\\ud800"}', "lone surrogate"),
    ("42", "expected a string, object or array"),
    ('"strin"', "Unknown type 'strin'"),
    ('{"type": "record", "name": "R", "fields": [{"name": "f", "type": "Missing"}]}', "Unknown type 'Missing'"),
    ('{"type": "record", "name": "R"}', '"fields" must be an array'),
    ('{"type": "record", "name": "1R", "fields": []}', "Invalid name"),
    ('{"type": "record", "name": "R", "namespace": "a..b", "fields": []}', "Invalid name"),
    ('{"type": "record", "name": "int", "fields": []}', "Invalid name"),
    ('{"type": "record", "fields": []}', '"name" must be a string'),
    ('{"type": "record", "name": "R", "fields": [{"name": "a-b", "type": "int"}]}', "Invalid field name"),
    ('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}, {"name": "a", "type": "long"}]}',
     "Duplicate field name 'a'"),
    ('{"type": "record", "name": "R", "fields": [{"name": "a"}]}', "has no type"),
    ('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "order": "up"}]}', "Invalid order"),
    ('{"type": "enum", "name": "E", "symbols": ["A", "A"]}', "Duplicate enum symbol"),
    ('{"type": "enum", "name": "E", "symbols": ["A", "1"]}', "Invalid enum symbol"),
    ('{"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}', "enum default"),
    ('{"type": "fixed", "name": "F", "size": -1}', "non-negative"),
    ('{"type": "fixed", "name": "F", "size": "4"}', "non-negative"),
    ('{"type": "array"}', 'missing "items"'),
    ('{"type": "map", "items": "int"}', 'missing "values"'),
    ('["int", "int"]', "Duplicate type 'int'"),
    ('["int", {"type": "int", "logicalType": "date"}]', "Duplicate type 'int'"),
    ('["null", ["int", "string"]]', "Nested union"),
    ('{"type": "record", "name": "R", "fields": [{"name": "f", "type": '
     '{"type": "record", "name": "R", "fields": []}}]}', "Can't redefine: R"),
    ('{"type": 5}', '"type" must be a string'),
    ('{"type": "record", "name": "R", "doc": 5, "fields": []}', "Invalid doc"),
    ('{"type": "record", "name": "R", "aliases": "x", "fields": []}', "Invalid aliases"),
])
def test_invalid_schemas(bad, match):
    with pytest.raises(SchemaError, match=match):
        parse_schema(bad)


@pytest.mark.parametrize("type_,default", [
    ("int", "1"), ("int", 1.5), ("int", 1 << 31), ("int", True), ("long", 1 << 63), ("boolean", 0),
    ("string", 1), ("bytes", None), ("null", 0), ("double", "1.0"),
    (["null", "int"], "x"), ({"type": "array", "items": "int"}, ["a"]), ({"type": "map", "values": "int"}, []),
    ({"type": "enum", "name": "E", "symbols": ["A"]}, "B"), ({"type": "fixed", "name": "F", "size": 2}, "abc"),
    ({"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"}]}, {}),
    ({"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"}]}, {"x": "1"}),
])
def test_defaults_must_match_their_type(type_, default):
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": type_, "default": default}]}
    with pytest.raises(SchemaError, match="Invalid default for field f"):
        parse_schema(text(schema))


@pytest.mark.parametrize("type_,default", [
    ("int", -(1 << 31)), ("long", 1 << 40), ("float", 1), ("double", 1.5), ("bytes", "\u00ff"), ("null", None),
    (["null", "int"], None), (["null", "int"], 3), ({"type": "map", "values": "int"}, {"a": 1}),
    ({"type": "fixed", "name": "F", "size": 2}, "ab"),
    ({"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"},
                                                 {"name": "y", "type": "int", "default": 0}]}, {"x": 1}),
])
def test_valid_defaults(type_, default):
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": type_, "default": default}]}
    parse_schema(text(schema))


def test_default_of_a_recursive_type():
    schema = {"type": "record", "name": "L", "fields": [
        {"name": "v", "type": "int"},
        {"name": "next", "type": ["null", "L"], "default": None},
        {"name": "first", "type": ["L", "null"], "default": {"v": 1, "next": {"v": 2}}}]}
    parse_schema(text(schema))


def test_unsupported_schema_type():
    with pytest.raises(SchemaError, match="only AVRO"):
        parse_schema("{}", schema_type="PROTOBUF")


# --- logical types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema,logical", [
    ({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}, "decimal"),
    ({"type": "fixed", "name": "D", "size": 4, "logicalType": "decimal", "precision": 9}, "decimal"),
    ({"type": "string", "logicalType": "uuid"}, "uuid"),
    ({"type": "int", "logicalType": "date"}, "date"),
    ({"type": "int", "logicalType": "time-millis"}, "time-millis"),
    ({"type": "long", "logicalType": "time-micros"}, "time-micros"),
    ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp-millis"),
    ({"type": "long", "logicalType": "timestamp-micros"}, "timestamp-micros"),
    ({"type": "long", "logicalType": "local-timestamp-millis"}, "local-timestamp-millis"),
    ({"type": "long", "logicalType": "local-timestamp-micros"}, "local-timestamp-micros"),
    ({"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}, "duration"),
    # invalid ones are ignored (Avro spec), never an error
    ({"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 5}, None),
    ({"type": "bytes", "logicalType": "decimal"}, None),
    ({"type": "bytes", "logicalType": "decimal", "precision": 0}, None),
    ({"type": "bytes", "logicalType": "decimal", "precision": "4"}, None),
    ({"type": "fixed", "name": "D", "size": 4, "logicalType": "decimal", "precision": 10}, None),
    ({"type": "string", "logicalType": "decimal", "precision": 4}, None),
    ({"type": "int", "logicalType": "timestamp-millis"}, None),
    ({"type": "fixed", "name": "Dur", "size": 8, "logicalType": "duration"}, None),
    ({"type": "string", "logicalType": "made-up"}, None),
])
def test_logical_types(schema, logical):
    p = parse_schema(text(schema))
    assert p.root.logical == logical
    assert json.loads(p.canonical)["logicalType"] == schema["logicalType"]  # kept as written
    fa = p.parsed if isinstance(p.parsed, dict) else {}
    assert (fa.get("logicalType") is not None) == (logical is not None)  # fastavro only sees valid ones


def test_decimal_scale_defaults_to_zero_and_normalized_omits_it():
    p = parse_schema('{"type": "bytes", "logicalType": "decimal", "precision": 5}')
    assert (p.root.precision, p.root.scale) == (5, 0)
    assert p.normalized == '{"type":"bytes","logicalType":"decimal","precision":5}'


# --- references ---------------------------------------------------------------------------------------


def _registry(schemas: dict):
    """resolve() over a dict of (subject, version) -> (text, references), as the service would."""
    def resolve(ref: Reference):
        if (ref.subject, ref.version) not in schemas:
            raise SchemaError(f"Reference {ref.name} not found")
        body, refs = schemas[(ref.subject, ref.version)]
        return parse_schema(body, references=refs, resolve=resolve)
    return resolve


ADDRESS = '{"type": "record", "name": "Address", "namespace": "com.example", "fields": [{"name": "city", "type": "City"}]}'
CITY = '{"type": "record", "name": "City", "namespace": "com.example", "fields": [{"name": "name", "type": "string"}]}'
CITY_REF = Reference("com.example.City", "city", 1)
ADDRESS_REF = Reference("com.example.Address", "address", 1)
STORE = {("city", 1): (CITY, []), ("address", 1): (ADDRESS, [CITY_REF])}
USER = ('{"type": "record", "name": "User", "namespace": "com.example", "fields": ['
        '{"name": "home", "type": "Address"}, {"name": "work", "type": ["null", "com.example.Address"]}]}')


def test_references_resolve_transitively_and_stay_by_name():
    p = parse_schema(USER, references=[ADDRESS_REF], resolve=_registry(STORE))
    assert json.loads(p.canonical)["fields"][0]["type"] == "Address"
    assert json.loads(p.normalized)["fields"][1]["type"] == ["null", "com.example.Address"]
    assert p.references == (ADDRESS_REF,)
    datum = {"home": {"city": {"name": "Oslo"}}, "work": None}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, p.parsed, datum)
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, p.parsed) == datum


def test_references_take_part_in_identity():
    with_ref = parse_schema(USER, references=[ADDRESS_REF], resolve=_registry(STORE))
    store2 = {("city", 1): STORE[("city", 1)], ("address", 2): STORE[("address", 1)]}
    other = parse_schema(USER, references=[Reference("com.example.Address", "address", 2)], resolve=_registry(store2))
    assert with_ref.canonical == other.canonical
    assert with_ref.identity() != other.identity()


def test_missing_reference_is_a_schema_error():
    with pytest.raises(SchemaError, match="not found"):
        parse_schema(USER, references=[Reference("com.example.Address", "nope", 1)], resolve=_registry(STORE))
    with pytest.raises(SchemaError, match="Unknown type 'Address'"):
        parse_schema(USER)
    with pytest.raises(SchemaError, match="Cannot resolve"):
        parse_schema(USER, references=[ADDRESS_REF])


# --- compat.check levels ------------------------------------------------------------------------------


def _rec(*fields) -> str:
    return text({"type": "record", "name": "R", "fields": list(fields)})


V1 = parse_schema(_rec({"name": "a", "type": "int"}))
V2 = parse_schema(_rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}))
V3_NO_A = parse_schema(_rec({"name": "b", "type": "int", "default": 0}))
V3_NEW_REQUIRED = parse_schema(_rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0},
                                    {"name": "c", "type": "int"}))


def test_levels():
    assert check("NONE", V3_NEW_REQUIRED, [V1, V2]) == []
    assert check("BACKWARD", V2, [V1]) == []
    assert check("BACKWARD", V3_NEW_REQUIRED, [V1, V2])[0].startswith("READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2")
    assert check("FORWARD", V3_NEW_REQUIRED, [V1, V2]) == []
    assert check("FULL", V3_NEW_REQUIRED, [V1, V2]) != []
    assert check("FULL", V2, [V1]) == []
    # dropping required field a: old readers without a default for a break (FORWARD), new reads old (BACKWARD)
    assert check("BACKWARD", V3_NO_A, [V1, V2]) == []
    assert check("FORWARD", V3_NO_A, [V2]) != []
    assert check("forward", V1, []) == []
    assert set(LEVELS) == {"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
                           "FULL_TRANSITIVE", "NONE"}


def test_transitive_levels_check_every_previous_version():
    v1 = parse_schema(_rec({"name": "a", "type": "int"}))
    v2 = parse_schema(_rec({"name": "a", "type": "int", "default": 0}))
    v3 = parse_schema(_rec())  # drops a: fine against v2 (a had a default) but not against v1 when FORWARD
    assert check("FORWARD", v3, [v1, v2]) == []
    assert check("FORWARD_TRANSITIVE", v3, [v1, v2]) != []
    v3b = parse_schema(_rec({"name": "b", "type": "string", "default": ""}))
    assert check("BACKWARD_TRANSITIVE", v3b, [v1, v2]) == []
    assert check("FULL_TRANSITIVE", v3b, [v1, v2]) != []


def test_unknown_level():
    with pytest.raises(ValueError, match="Unknown compatibility level"):
        check("SIDEWAYS", V1, [V1])


def test_messages_name_type_and_location():
    w = parse_schema(_rec({"name": "a", "type": {"type": "array", "items": "long"}}))
    r = parse_schema(_rec({"name": "a", "type": {"type": "array", "items": "int"}}))
    assert reader_can_read(r, w) == ["TYPE_MISMATCH at /fields/0/type/items: reader type: int not compatible "
                                     "with writer type: long"]
    e1 = parse_schema('{"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}')
    e2 = parse_schema('{"type": "enum", "name": "E", "symbols": ["A"]}')
    assert reader_can_read(e2, e1) == ["MISSING_ENUM_SYMBOLS at /symbols: [B, C]"]


def test_wide_unions_stay_fast():
    """Each writer branch is checked deeply only against reader branches of the same name."""
    records = [{"type": "record", "name": f"R{i}", "fields": [{"name": f"f{j}", "type": "long"} for j in range(40)]}
               for i in range(300)]
    w = parse_schema(text(records))
    r = parse_schema(text(list(reversed(records))))
    started = time.monotonic()
    assert reader_can_read(r, w) == []
    assert reader_can_read(parse_schema(text(records[:-1])), w) == [
        "MISSING_UNION_BRANCH at /299: reader union lacking writer type: R299"]
    assert time.monotonic() - started < 2
