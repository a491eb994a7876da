"""Attacks on the gRPC admin API: clients that cannot authenticate, principals without the right,
a tenant admin reaching beyond its tenant, and malformed or oversized requests. Each is refused
with the status the API documents, and the broker logs no traceback (the fixture checks)."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.broker import TlsMaterial

pytestmark = pytest.mark.keystream_only

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
TENANT = "acme"


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = admin_broker(module_broker_factory)
    with admin_channel(b) as ch:
        rpc.TenantServiceStub(ch).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name=TENANT, members=["User:CN=acme-dev"], admins=["User:CN=acme-boss"])), timeout=TIMEOUT_S)
    return b


@pytest.fixture(scope="module")
def admin(broker):
    with admin_channel(broker) as ch:
        yield ch


def _status(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT_S)
    return info.value.code(), info.value.details() or ""


def _code(call, request) -> grpc.StatusCode:
    return _status(call, request)[0]


# ---------------------------------------------------------------- authentication

def test_client_without_certificate_is_refused_at_tls(broker):
    with admin_channel(broker, certificate=False) as ch:
        code = _code(rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest())
    assert code == grpc.StatusCode.UNAVAILABLE  # the handshake fails: no call reaches a service


def test_certificate_of_another_ca_is_refused_at_tls(broker, tmp_path):
    stranger = TlsMaterial(tmp_path / "other-pki")
    with admin_channel(broker, stranger.admin) as ch:
        assert _code(rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest()) == grpc.StatusCode.UNAVAILABLE


def test_certificate_without_client_auth_usage_is_refused(broker):
    server_only = broker.tls.client("eku-server", common_name="admin", client=False, server=True,
                                    extended_key_usages=["serverAuth"])
    with admin_channel(broker, server_only) as ch:  # TLS refuses the purpose (the per-call check backs it up)
        assert _code(rpc.TenantServiceStub(ch).ListTenants, pb.ListTenantsRequest()) == grpc.StatusCode.UNAVAILABLE


def test_revoked_certificate_is_unauthenticated(broker):
    revoked = broker.tls.client("revoked-admin", common_name="admin")  # would be the super user
    with admin_channel(broker, revoked) as ch:
        assert rpc.TenantServiceStub(ch).ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S) is not None
    broker.tls.revoke(revoked)
    with admin_channel(broker, revoked) as ch:  # a new connection sees the new CRL
        assert _code(rpc.TenantServiceStub(ch).ListTenants, pb.ListTenantsRequest()) == \
            grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------- authorization

def _every_call(ch):
    t, u, a, c = (rpc.TenantServiceStub(ch), rpc.UserServiceStub(ch), rpc.AclServiceStub(ch),
                  rpc.ClusterServiceStub(ch))
    topic_acl = pb.AclBinding(resource_type=pb.RESOURCE_TYPE_TOPIC, resource_name="x", host="*",
                              pattern_type=pb.PATTERN_TYPE_LITERAL, principal="User:CN=nobody",
                              operation=pb.OPERATION_READ, permission=pb.PERMISSION_ALLOW)
    return [
        (t.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(name="evil"))),
        (t.GetTenant, pb.GetTenantRequest(name=TENANT)),
        (t.ListTenants, pb.ListTenantsRequest()),
        (t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, members=["User:CN=nobody"]))),
        (t.DeleteTenant, pb.DeleteTenantRequest(name=TENANT)),
        (u.UpsertScramUser, pb.UpsertScramUserRequest(name="mallory", password="x",
                                                      mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_256)),
        (u.DeleteScramUser, pb.DeleteScramUserRequest(name="mallory")),
        (u.ListScramUsers, pb.ListScramUsersRequest()),
        (a.CreateAcls, pb.CreateAclsRequest(bindings=[topic_acl])),
        (a.DeleteAcls, pb.DeleteAclsRequest(filters=[pb.AclBindingFilter(
            resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY, operation=pb.OPERATION_ANY,
            permission=pb.PERMISSION_ANY)])),
        (a.ListAcls, pb.ListAclsRequest()),
        (c.GetStatus, pb.GetStatusRequest()),
    ]


def test_principal_without_cluster_rights_is_denied_everything(broker, admin):
    nobody = broker.tls.client("nobody", common_name="nobody")
    with admin_channel(broker, nobody) as ch:
        for call, request in _every_call(ch):
            code, details = _status(call, request)
            assert code == DENIED, (call, code)
            assert details == "Cluster authorization failed."  # names nothing that exists
    assert rpc.TenantServiceStub(admin).GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT


def test_tenant_member_is_denied_and_admin_cannot_escalate(broker, admin):
    dev = broker.tls.client("acme-dev", common_name="acme-dev")
    boss = broker.tls.client("acme-boss", common_name="acme-boss")
    with admin_channel(broker, dev) as ch:
        for call, request in _every_call(ch):
            assert _code(call, request) == DENIED, call
    with admin_channel(broker, boss) as ch:
        t, u, a = rpc.TenantServiceStub(ch), rpc.UserServiceStub(ch), rpc.AclServiceStub(ch)
        # own tenant readable; others look missing; changing its own tenant is not its to do
        assert t.GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT
        rpc.TenantServiceStub(admin).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name="globex")),
                                                  timeout=TIMEOUT_S)
        assert _code(t.GetTenant, pb.GetTenantRequest(name="globex")) == grpc.StatusCode.NOT_FOUND
        for path, tenant in [("quotas", pb.Tenant(name=TENANT, quotas={"producer_byte_rate": 1e12})),
                             ("members", pb.Tenant(name=TENANT, members=["User:CN=admin"])),
                             ("admins", pb.Tenant(name=TENANT, admins=["User:CN=acme-dev"]))]:
            assert _code(t.UpdateTenant, pb.UpdateTenantRequest(tenant=tenant, update_mask=FieldMask(paths=[path]))) \
                == DENIED
        assert _code(t.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(name="acme2"))) == DENIED
        assert _code(t.DeleteTenant, pb.DeleteTenantRequest(name="globex")) == DENIED
        assert _code(u.UpsertScramUser, pb.UpsertScramUserRequest(
            name="acme-boss", password="x", mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_512)) == DENIED
        assert _code(rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest()) == DENIED
        # ACLs: only LITERAL/PREFIXED namespaced patterns inside acme. for acme's principals
        def acl(rtype, name, principal="User:CN=acme-dev", pattern=pb.PATTERN_TYPE_LITERAL, op=pb.OPERATION_READ):
            return pb.CreateAclsRequest(bindings=[pb.AclBinding(
                resource_type=rtype, resource_name=name, pattern_type=pattern, principal=principal, host="*",
                operation=op, permission=pb.PERMISSION_ALLOW)])
        for request in [
            acl(pb.RESOURCE_TYPE_CLUSTER, "kafka-cluster", "User:CN=acme-boss", op=pb.OPERATION_ALL),
            acl(pb.RESOURCE_TYPE_TOPIC, "globex.orders"),
            acl(pb.RESOURCE_TYPE_TOPIC, "acme", pattern=pb.PATTERN_TYPE_PREFIXED),  # would cover acme2.*
            acl(pb.RESOURCE_TYPE_TOPIC, "ACME.orders"),
            acl(pb.RESOURCE_TYPE_TOPIC, "*"),
            acl(pb.RESOURCE_TYPE_TOPIC, "acme.orders", principal="User:CN=globex-dev"),
            acl(pb.RESOURCE_TYPE_TOPIC, "acme.orders", principal="User:*"),
            acl(pb.RESOURCE_TYPE_USER, "acme.x"),
        ]:
            assert _code(a.CreateAcls, request) == DENIED, request
        # one binding out of scope refuses the whole request
        mixed = acl(pb.RESOURCE_TYPE_TOPIC, "acme.orders")
        mixed.bindings.extend(acl(pb.RESOURCE_TYPE_TOPIC, "globex.orders").bindings)
        assert _code(a.CreateAcls, mixed) == DENIED
    everything = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY,
                                     operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
    assert not rpc.AclServiceStub(admin).ListAcls(pb.ListAclsRequest(filter=everything), timeout=TIMEOUT_S).bindings


# ---------------------------------------------------------------- malformed requests

def _bad_tenants():
    yield pb.Tenant(name="")
    yield pb.Tenant(name="Acme")
    yield pb.Tenant(name="acme.x")
    yield pb.Tenant(name="a" * 64)
    yield pb.Tenant(name="ok", members=["alice"])
    yield pb.Tenant(name="ok", members=["User:*"])
    yield pb.Tenant(name="ok", members=["User:\x00root"])
    yield pb.Tenant(name="ok", members=["User:" + "a" * 5000])
    yield pb.Tenant(name="ok", members=[f"User:u{i}" for i in range(1001)])
    yield pb.Tenant(name="ok", quotas={"producer_byte_rate": -1})
    yield pb.Tenant(name="ok", quotas={"producer_byte_rate": 0})
    yield pb.Tenant(name="ok", quotas={"consumer_byte_rate": math.nan})
    yield pb.Tenant(name="ok", quotas={"request_percentage": math.inf})
    yield pb.Tenant(name="ok", quotas={"bogus_rate": 1})
    yield pb.Tenant(name="ok", max_partitions=-1)
    yield pb.Tenant(name="ok", max_storage_bytes=-5)


@pytest.mark.parametrize("tenant", list(_bad_tenants()), ids=lambda t: str(t)[:60].replace("\n", " "))
def test_malformed_tenant_is_invalid_argument(admin, tenant):
    assert _code(rpc.TenantServiceStub(admin).CreateTenant, pb.CreateTenantRequest(tenant=tenant)) == INVALID


def test_malformed_updates_and_users_are_invalid_argument(admin):
    t, u = rpc.TenantServiceStub(admin), rpc.UserServiceStub(admin)
    for paths in (["name"], ["quotas.bogus"], ["members.x"], ["usage"]):
        request = pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), update_mask=FieldMask(paths=paths))
        assert _code(t.UpdateTenant, request) == INVALID, paths
    negative = pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, quotas={"producer_byte_rate": -100}),
                                      update_mask=FieldMask(paths=["quotas"]))
    assert _code(t.UpdateTenant, negative) == INVALID
    sha = pb.SCRAM_MECHANISM_SCRAM_SHA_256
    for request in [
        pb.UpsertScramUserRequest(name="", password="x", mechanism=sha),
        pb.UpsertScramUserRequest(name="u" * 300, password="x", mechanism=sha),
        pb.UpsertScramUserRequest(name="bad\nname", password="x", mechanism=sha),
        pb.UpsertScramUserRequest(name="u", password="x"),  # no mechanism
        pb.UpsertScramUserRequest(name="u", password="x", mechanism=7),
        pb.UpsertScramUserRequest(name="u", mechanism=sha),  # no secret
        pb.UpsertScramUserRequest(name="u", password="", mechanism=sha),
        pb.UpsertScramUserRequest(name="u", password="x", mechanism=sha, iterations=100),
        pb.UpsertScramUserRequest(name="u", password="x", mechanism=sha, iterations=-4096),
        pb.UpsertScramUserRequest(name="u", password="x", mechanism=sha, iterations=10**9),
        pb.UpsertScramUserRequest(name="u", mechanism=sha, salted=pb.SaltedPassword(salt=b"s", salted_password=b"x")),
    ]:
        assert _code(u.UpsertScramUser, request) == INVALID, request


def test_malformed_acls_are_invalid_argument(admin):
    a = rpc.AclServiceStub(admin)
    good = dict(resource_type=pb.RESOURCE_TYPE_TOPIC, resource_name="t", pattern_type=pb.PATTERN_TYPE_LITERAL,
                principal="User:alice", host="*", operation=pb.OPERATION_READ, permission=pb.PERMISSION_ALLOW)
    for change in [dict(resource_type=pb.RESOURCE_TYPE_UNSPECIFIED), dict(resource_type=pb.RESOURCE_TYPE_ANY),
                   dict(resource_type=99), dict(pattern_type=pb.PATTERN_TYPE_MATCH), dict(operation=pb.OPERATION_ANY),
                   dict(permission=pb.PERMISSION_UNSPECIFIED), dict(resource_name=""), dict(principal="alice"),
                   dict(resource_type=pb.RESOURCE_TYPE_CLUSTER, resource_name="other"),
                   dict(resource_name="x" * 2000), dict(host="\x01")]:
        request = pb.CreateAclsRequest(bindings=[pb.AclBinding(**{**good, **change})])
        assert _code(a.CreateAcls, request) == INVALID, change
    too_many = pb.CreateAclsRequest(bindings=[pb.AclBinding(**good)] * 1001)
    assert _code(a.CreateAcls, too_many) == INVALID
    assert _code(a.DeleteAcls, pb.DeleteAclsRequest(filters=[pb.AclBindingFilter()])) == INVALID  # UNSPECIFIED parts


def test_oversized_message_is_refused_before_parsing(admin):
    huge = pb.CreateTenantRequest(tenant=pb.Tenant(name="huge", members=["User:" + "a" * 1000] * 2000))
    assert huge.ByteSize() > 1 << 20
    assert _code(rpc.TenantServiceStub(admin).CreateTenant, huge) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_garbage_request_bytes_are_refused(admin):
    call = admin.unary_unary("/keystream.admin.v1.TenantService/CreateTenant",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
    for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05abc"):
        code = _code(call, garbage)
        assert code == INVALID, (garbage, code)
    assert _code(admin.unary_unary("/keystream.admin.v1.Nope/Nothing", request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b), b"") == grpc.StatusCode.UNIMPLEMENTED
