"""CreateAcls, DescribeAcls and DeleteAcls handlers in-process, through the codecs, at every version."""

from __future__ import annotations

import asyncio

import pytest

from keystream.auth.principal import ANONYMOUS, Principal, Session
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import Writer
from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from keystream.broker.protocol.messages.describe_acls_request import DescribeAclsRequest
from keystream.config import load_config

TOPIC, GROUP, CLUSTER = 2, 3, 4
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
OP_ANY, OP_ALL, READ, WRITE, ALTER, DESCRIBE = 1, 2, 3, 4, 7, 8
P_ANY, DENY, ALLOW = 1, 2, 3
INVALID_REQUEST, CLUSTER_AUTHORIZATION_FAILED = 42, 31
VERSIONS = range(0, 4)


@pytest.fixture
def broker(tmp_path):
    props = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
             "super.users": "User:admin"}
    b = Broker(load_config(None, overrides=props, environ={}))
    b.logs.load()
    b.metadata.open()
    b.authorizer.load()
    yield b
    b.logs.close()


def _wire(msg, version: int) -> memoryview:
    w = Writer()
    msg.encode(w, version)
    return memoryview(b"".join(bytes(part) for part in w.getbuffers()))


ADMIN = Principal("User", "admin")


def call(broker, req, version: int, principal: Principal = ADMIN):
    handler = HANDLERS[type(req).API_KEY]
    assert handler.supports(version)
    decoded_req, _ = type(req).decode(_wire(req, version), 0, version)
    ctx = RequestContext(broker, version, 7, "test", Session(principal, "127.0.0.1"))
    resp = asyncio.run(handler.fn(ctx, decoded_req))
    raw = _wire(resp, version)
    decoded, end = handler.response_cls.decode(raw, 0, version)
    assert end == len(raw)
    return decoded


def creation(name="foo", pattern=LITERAL, rtype=TOPIC, principal="User:alice", host="*", op=READ, perm=ALLOW):
    return AclCreation(rtype, name, pattern, principal, host, op, perm)


def describe_filter(version, **kw):
    base = dict(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=ANY if version else LITERAL,
                principal_filter=None, host_filter=None, operation=OP_ANY, permission_type=P_ANY)
    base.update(kw)
    return base


@pytest.mark.parametrize("version", VERSIONS)
def test_lifecycle_every_version(broker, version):
    pattern = PREFIXED if version else LITERAL
    acls = [creation("foo"), creation("fo", pattern, op=WRITE, perm=DENY), creation("g", rtype=GROUP)]
    resp = call(broker, CreateAclsRequest(acls), version)
    assert [(r.error_code, r.error_message) for r in resp.results] == [(0, None)] * 3

    resp = call(broker, DescribeAclsRequest(**describe_filter(version, resource_type_filter=TOPIC)), version)
    assert resp.error_code == 0
    got = {(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation, a.permission_type)
           for r in resp.resources for a in r.acls}
    assert got == {(TOPIC, "foo", LITERAL, "User:alice", "*", READ, ALLOW),
                   (TOPIC, "fo", pattern, "User:alice", "*", WRITE, DENY)}

    f = DeleteAclsFilter(**describe_filter(version, resource_type_filter=TOPIC, permission_type=DENY))
    resp = call(broker, DeleteAclsRequest([f]), version)
    (result,) = resp.filter_results
    assert result.error_code == 0
    assert [(m.resource_name, m.pattern_type, m.operation, m.permission_type) for m in result.matching_acls] == [
        ("fo", pattern, WRITE, DENY)]
    resp = call(broker, DescribeAclsRequest(**describe_filter(version)), version)
    assert sorted(r.resource_name for r in resp.resources) == ["foo", "g"]


def test_describe_match_filter(broker):
    call(broker, CreateAclsRequest([creation("foo"), creation("f", PREFIXED), creation("*"), creation("bar")]), 3)
    resp = call(broker, DescribeAclsRequest(**describe_filter(3, resource_type_filter=TOPIC,
                                                              resource_name_filter="foo", pattern_type_filter=MATCH)), 3)
    assert sorted((r.resource_name, r.pattern_type) for r in resp.resources) == [
        ("*", LITERAL), ("f", PREFIXED), ("foo", LITERAL)]


@pytest.mark.parametrize("bad, message", [
    (creation(rtype=99), "resourceType"),
    (creation(rtype=1), "resourceType"),
    (creation(pattern=MATCH), "patternType"),
    (creation(pattern=ANY), "patternType"),
    (creation(pattern=0), "patternType"),
    (creation(principal=""), "principal"),
    (creation(principal="alice"), "principal"),
    (creation(op=OP_ANY), "operation"),
    (creation(op=0), "operation"),
    (creation(perm=P_ANY), "permission"),
    (creation(perm=0), "permission"),
    (creation(name=""), "resource name"),
    (creation(rtype=CLUSTER, name="x"), "kafka-cluster"),
])
def test_create_invalid_per_binding(broker, bad, message):
    resp = call(broker, CreateAclsRequest([creation("ok"), bad]), 3)
    assert resp.results[0].error_code == 0
    assert resp.results[1].error_code == INVALID_REQUEST
    assert message in resp.results[1].error_message


def test_non_super_user_is_refused(broker):
    alice = Principal("User", "alice")
    resp = call(broker, CreateAclsRequest([creation(), creation("x")]), 3, alice)
    assert [r.error_code for r in resp.results] == [CLUSTER_AUTHORIZATION_FAILED] * 2
    resp = call(broker, DescribeAclsRequest(**describe_filter(3)), 3, alice)
    assert resp.error_code == CLUSTER_AUTHORIZATION_FAILED and resp.resources == []
    resp = call(broker, DeleteAclsRequest([DeleteAclsFilter(**describe_filter(3))]), 3, alice)
    assert [r.error_code for r in resp.filter_results] == [CLUSTER_AUTHORIZATION_FAILED]
    assert len(broker.authorizer.store.index) == 0


def test_granted_cluster_alter_lets_a_user_manage_acls(broker):
    grant = creation("kafka-cluster", rtype=CLUSTER, principal="User:ops", op=ALTER)
    assert call(broker, CreateAclsRequest([grant]), 3).results[0].error_code == 0
    ops = Principal("User", "ops")
    assert call(broker, CreateAclsRequest([creation()]), 3, ops).results[0].error_code == 0
    # ALTER implies DESCRIBE on the cluster, so DescribeAcls is allowed too
    assert call(broker, DescribeAclsRequest(**describe_filter(3)), 3, ops).error_code == 0
    assert call(broker, DescribeAclsRequest(**describe_filter(3)), 3, ANONYMOUS).error_code == 31


@pytest.mark.parametrize("field, value", [
    ("resource_type_filter", 0), ("resource_type_filter", 77), ("pattern_type_filter", 0),
    ("operation", 0), ("permission_type", 0),
])
def test_unknown_filters(broker, field, value):
    resp = call(broker, DescribeAclsRequest(**describe_filter(3, **{field: value})), 3)
    assert resp.error_code == INVALID_REQUEST and resp.error_message
    resp = call(broker, DeleteAclsRequest([DeleteAclsFilter(**describe_filter(3, **{field: value})),
                                           DeleteAclsFilter(**describe_filter(3))]), 3)
    assert [r.error_code for r in resp.filter_results] == [INVALID_REQUEST, 0]
