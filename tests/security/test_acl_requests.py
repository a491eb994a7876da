"""Malformed and unauthorized ACL requests against a live broker: each bad binding or filter gets
INVALID_REQUEST with a message (its siblings still succeed), a non-super user gets
CLUSTER_AUTHORIZATION_FAILED, and the connection stays open throughout."""

from __future__ import annotations

import pytest

from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from keystream.broker.protocol.messages.describe_acls_request import DescribeAclsRequest
from tests.fixtures.wire import WireClient, unique_name

INVALID_REQUEST, CLUSTER_AUTHORIZATION_FAILED = 42, 31
TOPIC, CLUSTER = 2, 4
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
OP_ANY, READ, ALTER = 1, 3, 7
P_ANY, ALLOW = 1, 3


def creation(name, rtype=TOPIC, pattern=LITERAL, principal="User:alice", host="*", op=READ, perm=ALLOW):
    return AclCreation(rtype, name, pattern, principal, host, op, perm)


def any_filter(**kw) -> dict:
    base = dict(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=ANY, principal_filter=None,
                host_filter=None, operation=OP_ANY, permission_type=P_ANY)
    return {**base, **kw}


@pytest.fixture(scope="module")
def client(shared_broker):
    # the fixture's default: super.users=User:ANONYMOUS, so this client may manage ACLs
    with WireClient(shared_broker.address) as c:
        yield c


BAD_CREATIONS = {
    "unknown-resource-type": (dict(rtype=0), "resourceType"),
    "resource-type-out-of-range": (dict(rtype=99), "resourceType"),
    "negative-resource-type": (dict(rtype=-128), "resourceType"),
    "resource-type-any": (dict(rtype=1), "resourceType"),
    "pattern-unknown": (dict(pattern=0), "patternType"),
    "pattern-any": (dict(pattern=ANY), "patternType"),
    "pattern-match": (dict(pattern=MATCH), "patternType"),
    "pattern-out-of-range": (dict(pattern=77), "patternType"),
    "empty-principal": (dict(principal=""), "principal"),
    "principal-without-type": (dict(principal="alice"), "principal"),
    "principal-without-name": (dict(principal="User:"), "principal"),
    "operation-unknown": (dict(op=0), "operation"),
    "operation-any": (dict(op=OP_ANY), "operation"),
    "operation-out-of-range": (dict(op=100), "operation"),
    "permission-unknown": (dict(perm=0), "permission"),
    "permission-any": (dict(perm=P_ANY), "permission"),
    "empty-host": (dict(host=""), "host"),
    "cluster-wrong-name": (dict(rtype=CLUSTER), "kafka-cluster"),
}


# v0 has no pattern type on the wire (it is LITERAL), so pattern cases start at v1.
CREATE_CASES = [(case, v) for case in BAD_CREATIONS for v in range(4) if v > 0 or "pattern" not in case]


@pytest.mark.parametrize("case, version", CREATE_CASES, ids=[f"{c}-v{v}" for c, v in CREATE_CASES])
def test_malformed_create_acls(client, case, version):
    kw, message = BAD_CREATIONS[case]
    good = unique_name("ok")
    resp = client.request(CreateAclsRequest([creation(good), creation(unique_name("bad"), **kw)]), version)
    assert [r.error_code for r in resp.results] == [0, INVALID_REQUEST]
    assert message in resp.results[1].error_message
    resp = client.request(DescribeAclsRequest(**any_filter(resource_name_filter=good, pattern_type_filter=LITERAL)), 1)
    assert [r.resource_name for r in resp.resources] == [good]


def test_empty_resource_name(client):
    resp = client.request(CreateAclsRequest([creation("")]), 3)
    assert resp.results[0].error_code == INVALID_REQUEST and "empty resource name" in resp.results[0].error_message


def test_huge_and_odd_strings_are_kept_exactly(client):
    name = "t\u00e9\u4e2d\U0001f600" + "x" * 30000
    principal = "User:CN=" + "y" * 2000 + ",O=\"a,b\""
    resp = client.request(CreateAclsRequest([creation(name, principal=principal)]), 3)
    assert resp.results[0].error_code == 0
    resp = client.request(DescribeAclsRequest(**any_filter(principal_filter=principal)), 3)
    assert [(r.resource_name, r.acls[0].principal) for r in resp.resources] == [(name, principal)]


FILTER_CASES = {
    "unknown-resource-type": dict(resource_type_filter=0),
    "resource-type-out-of-range": dict(resource_type_filter=50),
    "unknown-pattern": dict(pattern_type_filter=0),
    "pattern-out-of-range": dict(pattern_type_filter=-3),
    "unknown-operation": dict(operation=0),
    "unknown-permission": dict(permission_type=0),
}


@pytest.mark.parametrize("case", list(FILTER_CASES), ids=list(FILTER_CASES))
def test_malformed_filters(client, case):
    kw = FILTER_CASES[case]
    resp = client.request(DescribeAclsRequest(**any_filter(**kw)), 3)
    assert resp.error_code == INVALID_REQUEST and resp.error_message and resp.resources == []
    keep = unique_name("keep")
    client.request(CreateAclsRequest([creation(keep)]), 3)
    resp = client.request(DeleteAclsRequest([DeleteAclsFilter(**any_filter(**kw)),
                                             DeleteAclsFilter(**any_filter(resource_name_filter="nothing-here"))]), 3)
    assert [r.error_code for r in resp.filter_results] == [INVALID_REQUEST, 0]
    assert resp.filter_results[0].error_message
    # the bad filter deleted nothing
    resp = client.request(DescribeAclsRequest(**any_filter(resource_name_filter=keep)), 3)
    assert len(resp.resources) == 1


def test_many_acls_in_one_request(client):
    prefix = unique_name("bulk")
    resp = client.request(CreateAclsRequest([creation(f"{prefix}-{i}") for i in range(2000)]), 3)
    assert {r.error_code for r in resp.results} == {0}
    f = DeleteAclsFilter(**any_filter(resource_name_filter=prefix + "-", pattern_type_filter=MATCH))
    # MATCH with a literal name matches literal ACLs of that exact name only: nothing here
    assert client.request(DeleteAclsRequest([f]), 3).filter_results[0].matching_acls == []
    filters = [DeleteAclsFilter(**any_filter(resource_name_filter=f"{prefix}-{i}")) for i in range(2000)]
    resp = client.request(DeleteAclsRequest(filters), 3)
    assert sum(len(r.matching_acls) for r in resp.filter_results) == 2000


def test_non_super_user_cannot_manage_acls(broker_factory):
    broker = broker_factory(**{"super.users": "User:admin"})  # ANONYMOUS is an ordinary user here
    with WireClient(broker.address) as c:
        grant = creation("kafka-cluster", rtype=CLUSTER, principal="User:ANONYMOUS", op=ALTER)
        resp = c.request(CreateAclsRequest([grant, creation("t")]), 3)
        assert [r.error_code for r in resp.results] == [CLUSTER_AUTHORIZATION_FAILED] * 2
        assert all(r.error_message for r in resp.results)
        resp = c.request(CreateAclsRequest([grant]), 0)
        assert resp.results[0].error_code == CLUSTER_AUTHORIZATION_FAILED
        resp = c.request(DescribeAclsRequest(**any_filter()), 3)
        assert resp.error_code == CLUSTER_AUTHORIZATION_FAILED and resp.resources == []
        resp = c.request(DeleteAclsRequest([DeleteAclsFilter(**any_filter())]), 3)
        assert [r.error_code for r in resp.filter_results] == [CLUSTER_AUTHORIZATION_FAILED]
        assert c.api_versions()  # still connected


def test_grant_applies_to_the_next_request_and_survives_kill9(broker_factory):
    broker = broker_factory()  # ANONYMOUS is a super user: grant it Cluster Alter
    with WireClient(broker.address) as c:
        grant = creation("kafka-cluster", rtype=CLUSTER, principal="User:ANONYMOUS", op=ALTER)
        assert c.request(CreateAclsRequest([grant]), 3).results[0].error_code == 0
    broker.kill9()
    broker.overrides["super.users"] = "User:admin"
    broker.start()
    with WireClient(broker.address) as c:
        # ALTER on the cluster: may create and delete ACLs, and describe them (Alter implies Describe)
        assert c.request(CreateAclsRequest([creation("t")]), 3).results[0].error_code == 0
        assert c.request(DescribeAclsRequest(**any_filter()), 3).error_code == 0
        deny = creation("kafka-cluster", rtype=CLUSTER, principal="User:ANONYMOUS", op=ALTER, perm=2)
        assert c.request(CreateAclsRequest([deny]), 3).results[0].error_code == 0
        # the DENY is applied to the very next request
        resp = c.request(CreateAclsRequest([creation("t2")]), 3)
        assert resp.results[0].error_code == CLUSTER_AUTHORIZATION_FAILED


def test_mtls_principals_are_authorized_by_acls(broker_factory):
    broker = broker_factory(tls=True)  # User:CN=admin (the fixture's admin certificate) is the super user
    alice = broker.tls.client("alice", common_name="alice")
    with broker.tls.wire(broker.address) as admin, broker.tls.wire(broker.address, alice) as c:
        assert c.request(CreateAclsRequest([creation("t", principal="User:CN=alice")]), 3).results[0].error_code == (
            CLUSTER_AUTHORIZATION_FAILED)
        assert c.request(DescribeAclsRequest(**any_filter()), 3).error_code == CLUSTER_AUTHORIZATION_FAILED
        describe = creation("kafka-cluster", rtype=CLUSTER, principal="User:CN=alice", op=8)
        assert admin.request(CreateAclsRequest([describe]), 3).results[0].error_code == 0
        resp = c.request(DescribeAclsRequest(**any_filter()), 3)
        assert resp.error_code == 0
        assert [(r.resource_name, r.acls[0].principal) for r in resp.resources] == [("kafka-cluster", "User:CN=alice")]
        # Describe on the cluster does not allow Alter
        assert c.request(CreateAclsRequest([creation("t")]), 3).results[0].error_code == CLUSTER_AUTHORIZATION_FAILED
