"""Hostile input to the registry's REST API: invalid and oversized schemas, absurd nesting, strange
subject names, log injection, non-JSON bodies and unknown paths. Every answer is Confluent's JSON
error, quickly, and the registry stays healthy, small and free of tracebacks."""

from __future__ import annotations

import http.client
import itertools
import json
import ssl
import time

import pytest

pytestmark = pytest.mark.keystream_only

_seq = itertools.count()
QUICK_S = 5.0
RSS_GROWTH_LIMIT = 64 << 20


@pytest.fixture(scope="module")
def registry(module_broker_factory, registry_factory):
    return registry_factory(module_broker_factory(tls=True))


def unique() -> str:
    return f"input{next(_seq)}-value"


def answered(reply, status: int, code: int) -> dict:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    body = reply.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return body


def healthy(registry) -> None:
    assert registry.running
    assert registry.http("GET", "/health").json() == {"status": "UP"}
    assert not registry.tracebacks()


def timed(call):
    started = time.monotonic()
    reply = call()
    assert time.monotonic() - started < QUICK_S, "answer took too long"
    return reply


@pytest.mark.parametrize("schema", [
    "{not json", "", "[", '{"type": "recrd", "name": "X", "fields": []}', '{"type": "record", "fields": []}',
    '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuchtype"}]}',
    '{"type": "enum", "name": "E", "symbols": ["A", "A"]}', '{"type": "fixed", "name": "F", "size": -1}',
    '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "int", "default": "text"}]}',
    '{"type": "array"}', '{"type": "map", "values": 42}', "[\"int\", \"int\"]",
], ids=lambda s: s[:40] or "empty")
def test_invalid_schema_is_42201(registry, schema):
    answered(registry.http("POST", f"/subjects/{unique()}/versions", {"schema": schema}), 422, 42201)


def test_ten_mib_schema_is_refused_quickly_with_bounded_memory(registry):
    before = registry.rss_bytes()
    text = json.dumps({"type": "enum", "name": "Big", "symbols": [f"S{i}" for i in range(1_200_000)]})
    assert len(text) > 10 << 20
    body = answered(timed(lambda: registry.http("POST", f"/subjects/{unique()}/versions", {"schema": text})),
                    413, 413)
    assert "exceeds" in body["message"]
    assert registry.rss_bytes() - before < RSS_GROWTH_LIMIT
    healthy(registry)


def test_schema_over_the_schema_limit_but_under_the_body_limit_is_42201(registry):
    text = json.dumps({"type": "enum", "name": "Big", "symbols": [f"S{i}" for i in range(150_000)]})
    assert 1 << 20 < len(text) < 2 << 20
    answered(timed(lambda: registry.http("POST", f"/subjects/{unique()}/versions", {"schema": text})), 422, 42201)
    healthy(registry)


def test_ten_thousand_levels_of_nesting(registry):
    nested = '{"type": "array", "items": ' * 10_000 + '"int"' + "}" * 10_000
    answered(timed(lambda: registry.http("POST", f"/subjects/{unique()}/versions", {"schema": nested})), 422, 42201)
    unions = "[" * 10_000 + '"int"' + "]" * 10_000
    answered(timed(lambda: registry.http("POST", f"/subjects/{unique()}/versions", {"schema": unions})), 422, 42201)
    # the request body itself nested 100,000 deep: refused as malformed JSON, no RecursionError
    deep_body = b'{"schema": "\\"int\\"", "references": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answered(timed(lambda: registry.http("POST", f"/subjects/{unique()}/versions", deep_body,
                                         headers={"Content-Type": "application/json"})), 400, 400)
    healthy(registry)


@pytest.mark.parametrize("raw", ["%00", "a%00b", "line%0Abreak", "tab%09", "%7F", "x" * 10_000])
def test_subjects_that_cannot_be_names_are_42208(registry, raw):
    answered(registry.http("POST", f"/subjects/{raw}/versions", {"schema": '"int"'}), 422, 42208)
    answered(registry.http("GET", f"/subjects/{raw}/versions"), 422, 42208)
    healthy(registry)


@pytest.mark.parametrize(("raw", "name"), [("a%2Fb", "a/b"), ("%2E%2E", ".."), ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),
                                           ("%C3%A9t%C3%A9", "\u00e9t\u00e9"), ("a%25b", "a%b")])
def test_unusual_but_valid_subjects_are_only_names(registry, raw, name):
    suffix = f"-{next(_seq)}"
    raw, name = raw + suffix, name + suffix
    schema_id = registry.http("POST", f"/subjects/{raw}/versions", {"schema": '"string"'}).json()["id"]
    assert name in registry.http("GET", "/subjects").json()
    assert registry.http("GET", f"/subjects/{raw}/versions/1").json()["subject"] == name
    assert registry.http("GET", f"/schemas/ids/{schema_id}/subjects").json().count(name) == 1
    healthy(registry)


def test_dot_segments_never_escape_the_api(registry):
    for path in ("/subjects/../config", "/subjects/../../etc/passwd", "/../../../etc/passwd"):
        reply = registry.http("GET", path)
        assert reply.status in (200, 404), (path, reply.status)
        assert reply.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
        assert b"root:" not in reply.body
    healthy(registry)


def test_non_utf8_percent_encodings_are_handled(registry):
    for raw in ("%FF%FE", "a%C3", "%ED%A0%80"):
        reply = registry.http("POST", f"/subjects/{raw}{next(_seq)}/versions", {"schema": '"int"'})
        assert reply.status in (200, 422), (raw, reply.status, reply.body)
        assert reply.json().get("error_code", 42208) == 42208
    healthy(registry)


def test_a_newline_in_a_subject_cannot_forge_a_log_line(registry):
    forged = "2030-01-01 00:00:00,000 INFO keystream.registry FORGED"
    raw = "x%0A" + forged.replace(" ", "%20").replace(",", "%2C").replace(":", "%3A")
    registry.http("POST", f"/subjects/{raw}/versions", {"schema": '"int"'})
    registry.http("GET", f"/subjects/{raw}/versions")
    registry.http("GET", f"/nowhere/{raw}")
    registry.http("GET", "/health")  # its access-log line follows the ones above
    assert not [line for line in registry.log_text().splitlines() if line.startswith(forged[:10])]


def test_non_json_bodies_and_wrong_content_types(registry):
    path = f"/subjects/{unique()}/versions"
    for data in (b"\x00\x01\x02", b"<xml/>", b"schema=int", b"\xff" * 1000, b"null", b"42"):
        answered(registry.http("POST", path, data, headers={"Content-Type": "application/json"}), 400, 400)
    for content_type in ("text/html", "multipart/form-data; boundary=x", "application/xml"):
        answered(registry.http("POST", path, b"{}", headers={"Content-Type": content_type}), 415, 415)
        answered(registry.http("PUT", "/config", b"{}", headers={"Content-Type": content_type}), 415, 415)
    healthy(registry)


@pytest.mark.parametrize("path", ["/associations/resources/x/y", "/dek-registry/v1/keks", "/contexts",
                                  "/v1/metadata/id", "/subjects/a/versions/1/extra"])
def test_paths_newer_clients_probe_get_confluents_404(registry, path):
    reply = registry.http("GET", path)
    assert reply.status == 404 and reply.json() == {"error_code": 404, "message": "HTTP 404 Not Found"}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_only_tls_1_2_and_later_and_no_plain_http(registry):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = registry.ssl_context()
        ctx.minimum_version = ctx.maximum_version = version
        assert registry.http("GET", "/health", context=ctx).status == 200
    old = registry.ssl_context()
    old.minimum_version, old.maximum_version = ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        registry.http("GET", "/health", context=old)
    plain = http.client.HTTPConnection(registry.host, registry.port, timeout=10)
    try:
        plain.request("GET", "/health")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            plain.getresponse().read()
    finally:
        plain.close()
    healthy(registry)
