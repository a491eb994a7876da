"""Every REST endpoint of the registry over real HTTPS: Confluent's status codes, error codes and
JSON shapes. One broker and one registry for the module; each test uses subjects of its own."""

from __future__ import annotations

import itertools
import json

import pytest
from confluent_kafka.admin import AclOperation

pytestmark = pytest.mark.keystream_only

_seq = itertools.count()
V1 = json.dumps({"type": "record", "name": "User", "namespace": "t", "fields": [{"name": "a", "type": "int"}]})
V2 = json.dumps({"type": "record", "name": "User", "namespace": "t",
                 "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}]})
V2_NO_DEFAULT = json.dumps({"type": "record", "name": "User", "namespace": "t",
                            "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]})


def unique(prefix: str = "api") -> str:
    return f"{prefix}{next(_seq)}-value"


@pytest.fixture(scope="module")
def registry(module_broker_factory, registry_factory):
    return registry_factory(module_broker_factory(tls=True, sasl="SCRAM-SHA-512"))


def ok(reply, status: int = 200):
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    return reply.json()


def error(reply, status: int, code: int) -> str:
    body = ok(reply, status)
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


def register(registry, subject: str, schema: str = V1, **extra) -> int:
    return ok(registry.http("POST", f"/subjects/{subject}/versions", {"schema": schema, **extra}))["id"]


def test_root_and_health_answer_without_credentials(registry):
    assert ok(registry.http("GET", "/", certificate=False)) == {}
    assert ok(registry.http("GET", "/health", certificate=False)) == {"status": "UP"}


def test_other_paths_need_credentials(registry):
    reply = registry.http("GET", "/subjects", certificate=False)
    error(reply, 401, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Basic realm=")
    error(registry.http("GET", "/subjects", basic="nobody:wrong"), 401, 401)


def test_register_then_read_back_every_way(registry):
    subject = unique()
    schema_id = register(registry, subject)
    assert register(registry, subject) == schema_id  # the same schema again: same version and id
    reformatted = json.dumps(json.loads(V1), indent=4)
    assert register(registry, subject, reformatted) == schema_id
    assert ok(registry.http("GET", f"/subjects/{subject}/versions")) == [1]
    expected = {"subject": subject, "version": 1, "id": schema_id, "schema": ok(registry.http(
        "GET", f"/subjects/{subject}/versions/1"))["schema"]}
    assert json.loads(expected["schema"]) == json.loads(V1)
    for version in ("1", "latest", "-1"):
        assert ok(registry.http("GET", f"/subjects/{subject}/versions/{version}")) == expected
        raw = registry.http("GET", f"/subjects/{subject}/versions/{version}/schema")
        assert ok(raw) == json.loads(V1) and raw.body.decode() == expected["schema"]
    assert ok(registry.http("GET", f"/schemas/ids/{schema_id}")) == {"schema": expected["schema"]}
    assert ok(registry.http("GET", f"/schemas/ids/{schema_id}/schema")) == json.loads(V1)
    assert subject in ok(registry.http("GET", "/subjects"))
    assert subject in ok(registry.http("GET", f"/schemas/ids/{schema_id}/subjects"))
    assert {"subject": subject, "version": 1} in ok(registry.http("GET", f"/schemas/ids/{schema_id}/versions"))


def test_same_schema_in_another_subject_shares_the_id_and_evolution_adds_versions(registry):
    first, second = unique(), unique()
    schema_id = register(registry, first)
    assert register(registry, second) == schema_id
    holders = ok(registry.http("GET", f"/schemas/ids/{schema_id}/subjects"))
    assert {first, second} <= set(holders) and holders == sorted(holders)
    v2_id = register(registry, first, V2)
    assert v2_id > schema_id
    assert ok(registry.http("GET", f"/subjects/{first}/versions")) == [1, 2]
    assert ok(registry.http("GET", f"/subjects/{first}/versions/latest"))["id"] == v2_id


def test_lookup(registry):
    subject = unique()
    schema_id = register(registry, subject)
    found = ok(registry.http("POST", f"/subjects/{subject}", {"schema": V1}))
    assert found == {"subject": subject, "version": 1, "id": schema_id, "schema": found["schema"]}
    error(registry.http("POST", f"/subjects/{subject}", {"schema": V2}), 404, 40403)
    error(registry.http("POST", f"/subjects/{unique()}", {"schema": V1}), 404, 40401)


def test_not_found_and_invalid_arguments(registry):
    subject = unique()
    register(registry, subject)
    error(registry.http("GET", f"/subjects/{unique()}/versions"), 404, 40401)
    error(registry.http("GET", f"/subjects/{unique()}/versions/1"), 404, 40401)
    error(registry.http("GET", f"/subjects/{subject}/versions/7"), 404, 40402)
    for bad in ("abc", "0", "-2", "2147483648"):
        error(registry.http("GET", f"/subjects/{subject}/versions/{bad}"), 422, 42202)
    error(registry.http("GET", "/schemas/ids/987654"), 404, 40403)
    error(registry.http("GET", "/schemas/ids/987654/subjects"), 404, 40403)
    error(registry.http("GET", "/schemas/ids/987654/versions"), 404, 40403)
    error(registry.http("GET", "/schemas/ids/abc"), 404, 404)
    error(registry.http("POST", f"/subjects/{subject}/versions", {"schema": '{"type": "recrd"}'}), 422, 42201)
    error(registry.http("POST", f"/subjects/{subject}/versions", {"schema": "{not json"}), 422, 42201)


def test_soft_then_permanent_delete(registry):
    subject = unique()
    register(registry, subject)
    register(registry, subject, V2)
    error(registry.http("DELETE", f"/subjects/{subject}/versions/1?permanent=true"), 404, 40407)
    assert ok(registry.http("DELETE", f"/subjects/{subject}/versions/1")) == 1
    assert ok(registry.http("GET", f"/subjects/{subject}/versions")) == [2]
    assert ok(registry.http("GET", f"/subjects/{subject}/versions?deleted=true")) == [1, 2]
    error(registry.http("GET", f"/subjects/{subject}/versions/1"), 404, 40402)
    assert ok(registry.http("GET", f"/subjects/{subject}/versions/1?deleted=True"))["version"] == 1
    assert ok(registry.http("DELETE", f"/subjects/{subject}/versions/1?permanent=true")) == 1
    error(registry.http("DELETE", f"/subjects/{subject}?permanent=true"), 404, 40405)
    assert ok(registry.http("DELETE", f"/subjects/{subject}")) == [2]
    assert subject not in ok(registry.http("GET", "/subjects"))
    assert subject in ok(registry.http("GET", "/subjects?deleted=true"))
    error(registry.http("GET", f"/subjects/{subject}/versions"), 404, 40401)
    error(registry.http("DELETE", f"/subjects/{subject}"), 404, 40404)
    assert ok(registry.http("DELETE", f"/subjects/{subject}?permanent=true")) == [2]
    assert subject not in ok(registry.http("GET", "/subjects?deleted=true"))


def test_ids_only_grow_even_after_a_permanent_delete(registry):
    subject = unique()
    schema = json.dumps({"type": "enum", "name": f"E{next(_seq)}", "symbols": ["A"]})
    first = register(registry, subject, schema)
    registry.http("DELETE", f"/subjects/{subject}")
    ok(registry.http("DELETE", f"/subjects/{subject}?permanent=true"))
    other = json.dumps({"type": "enum", "name": f"E{next(_seq)}", "symbols": ["B"]})
    assert register(registry, unique(), other) > first


def test_schema_listing_types_and_prefix(registry):
    prefix = f"list{next(_seq)}"
    register(registry, f"{prefix}-a-value")
    register(registry, f"{prefix}-a-value", V2)
    register(registry, f"{prefix}-b-value")
    assert "AVRO" in ok(registry.http("GET", "/schemas/types"))
    assert ok(registry.http("GET", f"/subjects?subjectPrefix={prefix}")) == [f"{prefix}-a-value", f"{prefix}-b-value"]
    every = ok(registry.http("GET", f"/schemas?subjectPrefix={prefix}"))
    assert [(s["subject"], s["version"]) for s in every] == [(f"{prefix}-a-value", 1), (f"{prefix}-a-value", 2),
                                                             (f"{prefix}-b-value", 1)]
    assert set(every[0]) >= {"subject", "version", "id", "schema"}
    latest = ok(registry.http("GET", f"/schemas?subjectPrefix={prefix}&latestOnly=true"))
    assert [(s["subject"], s["version"]) for s in latest] == [(f"{prefix}-a-value", 2), (f"{prefix}-b-value", 1)]
    assert len(ok(registry.http("GET", f"/schemas?subjectPrefix={prefix}&offset=1&limit=1"))) == 1


def test_compatibility_endpoint_and_incompatible_registration(registry):
    subject = unique()
    register(registry, subject)
    path = f"/compatibility/subjects/{subject}/versions"
    assert ok(registry.http("POST", f"{path}/latest", {"schema": V2})) == {"is_compatible": True}
    assert ok(registry.http("POST", path, {"schema": V2}))["is_compatible"] is True
    verdict = ok(registry.http("POST", f"{path}/1?verbose=true", {"schema": V2_NO_DEFAULT}))
    assert verdict["is_compatible"] is False and verdict["messages"]
    assert ok(registry.http("POST", f"{path}/latest", {"schema": V2_NO_DEFAULT}))["is_compatible"] is False
    error(registry.http("POST", f"/subjects/{subject}/versions", {"schema": V2_NO_DEFAULT}), 409, 40901)
    # Confluent: nothing to be incompatible with under "latest" of a new subject; a numbered version is missing
    assert ok(registry.http("POST", f"/compatibility/subjects/{unique()}/versions/latest", {"schema": V1}))[
        "is_compatible"] is True
    error(registry.http("POST", f"/compatibility/subjects/{unique()}/versions/1", {"schema": V1}), 404, 40401)


def test_config_global_and_per_subject(registry):
    subject = unique()
    assert ok(registry.http("GET", "/config")) == {"compatibilityLevel": "BACKWARD"}
    error(registry.http("GET", f"/config/{subject}"), 404, 40408)
    assert ok(registry.http("GET", f"/config/{subject}?defaultToGlobal=true")) == {"compatibilityLevel": "BACKWARD"}
    assert ok(registry.http("PUT", f"/config/{subject}", {"compatibility": "full"})) == {"compatibility": "FULL"}
    assert ok(registry.http("GET", f"/config/{subject}")) == {"compatibilityLevel": "FULL"}
    error(registry.http("PUT", f"/config/{subject}", {"compatibility": "SIDEWAYS"}), 422, 42203)
    assert ok(registry.http("DELETE", f"/config/{subject}")) == {"compatibilityLevel": "FULL"}
    error(registry.http("GET", f"/config/{subject}"), 404, 40408)
    try:
        assert ok(registry.http("PUT", "/config", {"compatibility": "NONE"})) == {"compatibility": "NONE"}
        assert ok(registry.http("GET", "/config")) == {"compatibilityLevel": "NONE"}
        # deleting the global level falls back to schema.compatibility.level
        assert ok(registry.http("DELETE", "/config")) == {"compatibilityLevel": "NONE"}
        assert ok(registry.http("GET", "/config")) == {"compatibilityLevel": "BACKWARD"}
    finally:
        ok(registry.http("PUT", "/config", {"compatibility": "BACKWARD"}))


def test_mode_global_and_per_subject(registry):
    subject = unique()
    register(registry, subject)
    assert ok(registry.http("GET", "/mode")) == {"mode": "READWRITE"}
    error(registry.http("GET", f"/mode/{subject}"), 404, 40409)
    assert ok(registry.http("GET", f"/mode/{subject}?defaultToGlobal=true")) == {"mode": "READWRITE"}
    assert ok(registry.http("PUT", f"/mode/{subject}", {"mode": "READONLY"})) == {"mode": "READONLY"}
    error(registry.http("POST", f"/subjects/{subject}/versions", {"schema": V2}), 422, 42205)
    error(registry.http("PUT", f"/mode/{subject}", {"mode": "SOMETIMES"}), 422, 42204)
    assert ok(registry.http("DELETE", f"/mode/{subject}")) == {"mode": "READONLY"}
    register(registry, subject, V2)


def test_references_and_referencedby(registry):
    base_subject, user_subject = unique("ref"), unique("ref")
    address = json.dumps({"type": "record", "name": "Address", "namespace": "r",
                          "fields": [{"name": "street", "type": "string"}]})
    register(registry, base_subject, address)
    person = json.dumps({"type": "record", "name": "Person", "namespace": "r",
                         "fields": [{"name": "home", "type": "r.Address"}]})
    refs = [{"name": "r.Address", "subject": base_subject, "version": 1}]
    person_id = register(registry, user_subject, person, references=refs)
    got = ok(registry.http("GET", f"/subjects/{user_subject}/versions/1"))
    assert got["references"] == refs
    assert ok(registry.http("GET", f"/schemas/ids/{person_id}"))["references"] == refs
    assert ok(registry.http("GET", f"/subjects/{base_subject}/versions/1/referencedby")) == [person_id]
    error(registry.http("DELETE", f"/subjects/{base_subject}/versions/1"), 422, 42206)
    missing = [{"name": "r.Address", "subject": unique("ref"), "version": 1}]
    error(registry.http("POST", f"/subjects/{unique('ref')}/versions", {"schema": person, "references": missing}),
          422, 42201)


@pytest.mark.parametrize(("yes", "no"), [("true", "false"), ("True", "False"), ("TRUE", "FALSE")])
def test_query_booleans_in_any_case(registry, yes, no):
    subject = unique()
    register(registry, subject)
    ok(registry.http("DELETE", f"/subjects/{subject}"))
    assert subject in ok(registry.http("GET", f"/subjects?deleted={yes}"))
    assert subject not in ok(registry.http("GET", f"/subjects?deleted={no}"))


@pytest.mark.parametrize("content_type", ["application/vnd.schemaregistry.v1+json",
                                          "application/vnd.schemaregistry+json", "application/json",
                                          "application/json; charset=utf-8", "application/octet-stream", None])
def test_accepted_content_types(registry, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"schema": V1}).encode()
    assert "id" in ok(registry.http("POST", f"/subjects/{unique()}/versions", body, headers=headers))


def test_wrong_content_type_and_bodies_get_confluent_errors(registry):
    subject = unique()
    body = json.dumps({"schema": V1}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        error(registry.http("POST", f"/subjects/{subject}/versions", body, headers={"Content-Type": content_type}),
              415, 415)
    for bad in (b"{not json", b"", b"[1, 2]", b'"schema"', b"\xff\xfe"):
        error(registry.http("POST", f"/subjects/{subject}/versions", bad, headers={"Content-Type": "application/json"}),
              400, 400)
    error(registry.http("POST", f"/subjects/{subject}/versions", {"schema": 17}), 422, 42201)
    error(registry.http("POST", f"/subjects/{subject}/versions", {}), 422, 42201)


@pytest.mark.parametrize("path", ["/associations/resources/abc", "/associations", "/contexts/x/y", "/nothing",
                                  "/subjects/a/versions/1/nothing"])
def test_unknown_paths_get_confluents_404_body(registry, path):
    reply = registry.http("GET", path)
    assert ok(reply, 404) == {"error_code": 404, "message": "HTTP 404 Not Found"}


def test_wrong_method_gets_405_json(registry):
    assert ok(registry.http("PATCH", "/subjects"), 405) == {"error_code": 405, "message": "HTTP 405 Method Not Allowed"}


def test_percent_encoded_slash_in_a_subject(registry):
    subject = f"team/{unique()}"
    schema_id = register(registry, subject.replace("/", "%2F"))
    assert subject in ok(registry.http("GET", "/subjects"))
    assert ok(registry.http("GET", f"/subjects/{subject.replace('/', '%2F')}/versions/1"))["id"] == schema_id


def test_routes_authorize_each_subject_and_hide_unreadable_ids(registry):
    """The routes' side of authorization (the rules themselves: tests/security/test_registry_auth.py):
    a certificate principal without ACLs is refused (40301), lists are filtered, ids are hidden (40403);
    DESCRIBE on the subject's topic then lets it read that subject only."""
    from tests.fixtures.sasl_acls import allow_topic_and_group  # noqa: PLC0415
    from tests.fixtures.waiting import wait_for  # noqa: PLC0415

    bob = registry.tls.client(f"bob{next(_seq)}")
    topic = f"authz{next(_seq)}"
    schema_id = register(registry, f"{topic}-value")
    error(registry.http("POST", f"/subjects/{topic}-value/versions", {"schema": V2}, identity=bob), 403, 40301)
    error(registry.http("GET", f"/subjects/{topic}-value/versions", identity=bob), 403, 40301)
    error(registry.http("PUT", "/config", {"compatibility": "NONE"}, identity=bob), 403, 40301)
    assert ok(registry.http("GET", "/subjects", identity=bob)) == []
    error(registry.http("GET", f"/schemas/ids/{schema_id}", identity=bob), 404, 40403)

    allow_topic_and_group(registry.broker, f"User:CN={bob.cert.stem}", topic, "unused", AclOperation.DESCRIBE)
    wait_for(lambda: registry.http("GET", "/subjects", identity=bob).json() == [f"{topic}-value"], 15,
             message="the new ACL to reach the registry")
    assert ok(registry.http("GET", f"/schemas/ids/{schema_id}", identity=bob))["schema"]
    error(registry.http("POST", f"/subjects/{topic}-value/versions", {"schema": V2}, identity=bob), 403, 40301)


def test_unknown_tenants_are_a_warning(registry):
    """Without admin.url tenant members get whatever the ACLs grant on subjects: the log says so loudly."""
    text = registry.log_path.read_text(encoding="utf-8", errors="replace")
    assert "WARNING keystream.registry admin.url is unset: the registry does not know the brokers' tenants" in text
