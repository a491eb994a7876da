"""The registry Store folds `_schemas` records (Confluent's formats) into subjects, ids and settings."""

import json

from keystream.registry.store import (
    ID_HWM_KEY,
    NOOP_KEY,
    Store,
    Version,
    decode,
    encode,
    schema_key,
    schema_value,
    subject_key,
)

A = '{"type":"string"}'
B = '{"type":"int"}'


def put(store: Store, v: Version) -> None:
    store.apply(*decode(*encode(schema_key(v.subject, v.version), schema_value(v))))


def test_keys_are_serialized_like_confluent():
    assert encode(schema_key("s-value", 3), None)[0] == b'{"keytype":"SCHEMA","subject":"s-value","version":3,"magic":1}'
    assert encode(subject_key("CONFIG", None), None)[0] == b'{"keytype":"CONFIG","magic":0}'
    assert encode(subject_key("MODE", "s"), None)[0] == b'{"keytype":"MODE","subject":"s","magic":0}'
    assert encode(NOOP_KEY, None)[0] == b'{"keytype":"NOOP","magic":0}'


def test_same_content_shares_an_id_and_versions_are_ordered():
    s = Store()
    put(s, Version("a", 1, 1, A))
    put(s, Version("a", 2, 2, B))
    put(s, Version("b", 1, 1, A))
    assert [v.version for v in s.versions("a")] == [1, 2]
    assert s.id_for(("AVRO", A, ())) == 1
    assert [(v.subject, v.version) for v in s.with_id(1)] == [("a", 1), ("b", 1)]
    assert s.subjects() == ["a", "b"]
    assert s.max_id == 2


def test_soft_delete_subject_then_tombstones():
    s = Store()
    put(s, Version("a", 1, 1, A))
    put(s, Version("a", 2, 2, B))
    s.apply(subject_key("DELETE_SUBJECT", "a"), {"subject": "a", "version": 2})
    assert s.subjects() == [] and s.subjects(deleted=True) == ["a"]
    assert s.versions("a") == [] and all(v.deleted for v in s.versions("a", deleted=True))
    assert s.by_id(2).deleted  # still readable by id
    for n in (1, 2):
        s.apply(schema_key("a", n), None)
    assert s.subjects(deleted=True) == [] and s.by_id(1) is None and s.id_for(("AVRO", A, ())) is None
    assert s.max_id == 2  # never goes down


def test_id_hwm_survives_missing_schema_records():
    s = Store()
    s.apply(ID_HWM_KEY, {"id": 41})
    put(s, Version("a", 1, 7, A))
    assert s.max_id == 41


def test_a_second_schema_under_a_used_id_is_ignored():
    s = Store()
    put(s, Version("a", 1, 1, A))
    put(s, Version("b", 1, 1, B))
    assert s.versions("b") == [] and s.by_id(1).schema == A


def test_references_and_referrers():
    s = Store()
    put(s, Version("base", 1, 1, A))
    put(s, Version("user", 1, 2, B, references=(("Base", "base", 1),)))
    assert [v.subject for v in s.referenced_by("base", 1)] == ["user"]
    value = schema_value(s.get("user", 1))
    assert value["references"] == [{"name": "Base", "subject": "base", "version": 1}]
    assert "schemaType" not in value


def test_configs_and_modes_set_and_cleared():
    s = Store()
    s.apply(subject_key("CONFIG", None), {"compatibilityLevel": "full"})
    s.apply(subject_key("CONFIG", "a"), {"subject": "a", "compatibilityLevel": "NONE"})
    s.apply(subject_key("MODE", "a"), {"subject": "a", "mode": "READONLY"})
    assert (s.config(None), s.config("a"), s.mode("a"), s.mode(None)) == ("FULL", "NONE", "READONLY", None)
    s.apply(subject_key("CONFIG", "a"), None)
    s.apply(subject_key("MODE", "a"), None)
    assert s.config("a") is None and s.mode("a") is None


def test_garbage_and_unknown_records_are_skipped():
    s = Store()
    assert decode(b"not json", b"{}") is None
    assert decode(b"[1]", None) is None
    s.apply({"keytype": "SCHEMA", "subject": "a"}, {"nonsense": True})  # malformed: logged, skipped
    s.apply({"keytype": "CONTEXT", "magic": 0}, {"tenant": "x"})
    key, value = decode(json.dumps({"keytype": "SCHEMA", "subject": "a", "version": 1, "magic": 1}).encode(),
                        json.dumps({"subject": "a", "version": 1, "id": 3, "schema": A}).encode())
    s.apply(key, value)
    assert s.get("a", 1) == Version("a", 1, 3, A)
