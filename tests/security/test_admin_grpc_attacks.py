"""Attacks on the gRPC admin API: clients that cannot authenticate, principals without the right,
a tenant admin reaching beyond its tenant (other tenants, new tenants, quotas, ACLs spanning
tenants, other tenants' SCRAM users), tenant principals holding Cluster ACLs (still confined to
their tenant), ACLs outliving a principal's membership, racing writes, malformed, oversized or
unknown-enum requests, and garbage on the TLS/HTTP/2 connection. Each is refused with the status the API documents, names nothing that
exists, leaves the server serving, and the broker logs no traceback (the fixture checks)."""

from __future__ import annotations

import math
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.broker import TlsMaterial
from tests.fixtures.waiting import Deadline, wait_for

pytestmark = pytest.mark.keystream_only

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
TENANT = "acme"


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    """Tenants acme (member acme-dev, admin acme-boss) and globex (member globex-dev, SCRAM user globex-app);
    super users: the admin certificate and the SCRAM user `admin`, as `keystream up` has them."""
    b = admin_broker(module_broker_factory, **{"super.users": f"{TlsMaterial.ADMIN};User:admin"})
    with admin_channel(b) as ch:
        tenants = rpc.TenantServiceStub(ch)
        tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name=TENANT, members=["User:CN=acme-dev"], admins=["User:CN=acme-boss"])), timeout=TIMEOUT_S)
        tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="globex", members=["User:CN=globex-dev", "User:globex-app"], quotas={"producer_byte_rate": 1e6})),
            timeout=TIMEOUT_S)
        rpc.UserServiceStub(ch).UpsertScramUser(pb.UpsertScramUserRequest(
            name="globex-app", password="globex-secret", mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_512), timeout=TIMEOUT_S)
    return b


@pytest.fixture(scope="module")
def dev(broker):
    return broker.tls.client("acme-dev", common_name="acme-dev")


@pytest.fixture(scope="module")
def boss(broker):
    return broker.tls.client("acme-boss", common_name="acme-boss")


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

def _entity(**names) -> pb.QuotaEntity:
    types = {"user": pb.QUOTA_ENTITY_TYPE_USER, "client_id": pb.QUOTA_ENTITY_TYPE_CLIENT_ID,
             "tenant": pb.QUOTA_ENTITY_TYPE_TENANT}
    return pb.QuotaEntity(components=[pb.QuotaEntityComponent(type=types[k], name=v) for k, v in names.items()])


def _every_call(ch):
    t, u, a, c, q = (rpc.TenantServiceStub(ch), rpc.UserServiceStub(ch), rpc.AclServiceStub(ch),
                     rpc.ClusterServiceStub(ch), rpc.QuotaServiceStub(ch))
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
        (q.SetQuotas, pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
            entity=_entity(user=None), set={"producer_byte_rate": 1})])),
        (q.ListQuotas, pb.ListQuotasRequest()),
    ]


def test_principal_without_cluster_rights_is_denied_everything(broker, admin):
    nobody = broker.tls.client("nobody", common_name="nobody")
    with admin_channel(broker, nobody) as ch:
        for call, request in _every_call(ch):
            code, details = _status(call, request)
            assert code == DENIED, (call, code)
            assert details == "Cluster authorization failed."  # names nothing that exists
    assert rpc.TenantServiceStub(admin).GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT


def test_tenant_member_is_denied_everything(broker, dev):
    with admin_channel(broker, dev) as ch:
        for call, request in _every_call(ch):
            code, details = _status(call, request)
            assert (code, details) == (DENIED, "Cluster authorization failed."), call


def test_tenant_admin_reads_its_own_tenant_only_and_no_leak(broker, boss):
    with admin_channel(broker, boss) as ch:
        t, q = rpc.TenantServiceStub(ch), rpc.QuotaServiceStub(ch)
        assert t.GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT
        assert [x.name for x in t.ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S).tenants] == [TENANT]
        # globex exists, no-such does not: the answers differ only by the name asked for
        existing = _status(t.GetTenant, pb.GetTenantRequest(name="globex"))
        missing = _status(t.GetTenant, pb.GetTenantRequest(name="nosuch"))
        assert existing == (grpc.StatusCode.NOT_FOUND, "tenant globex does not exist")
        assert missing == (grpc.StatusCode.NOT_FOUND, "tenant nosuch does not exist")
        assert not q.ListQuotas(pb.ListQuotasRequest(), timeout=TIMEOUT_S).entries  # acme has none; globex's hidden
        for component in (pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_TENANT, match=pb.QUOTA_MATCH_EXACT,
                                                  name="globex"),
                          pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=pb.QUOTA_MATCH_ANY)):
            assert not q.ListQuotas(pb.ListQuotasRequest(components=[component]), timeout=TIMEOUT_S).entries


def test_tenant_admin_cannot_change_tenants(broker, boss, admin):
    with admin_channel(broker, boss) as ch:
        t = rpc.TenantServiceStub(ch)
        me = "User:CN=acme-boss"
        for request in [
            # its own tenant: members, admins, quotas and limits are the cluster admins' call
            pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, quotas={"producer_byte_rate": 1e12}),
                                   update_mask=FieldMask(paths=["quotas"])),
            pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, members=["User:CN=admin"]),
                                   update_mask=FieldMask(paths=["members"])),
            pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), add_admins=["User:CN=acme-dev"]),
            pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, max_partitions=10**9),
                                   update_mask=FieldMask(paths=["max_partitions"])),
            # another tenant: joining it, or making itself its admin
            pb.UpdateTenantRequest(tenant=pb.Tenant(name="globex"), add_members=[me]),
            pb.UpdateTenantRequest(tenant=pb.Tenant(name="globex"), add_admins=[me]),
            pb.UpdateTenantRequest(tenant=pb.Tenant(name="globex", admins=[me]), update_mask=FieldMask(paths=["admins"])),
        ]:
            assert _status(t.UpdateTenant, request) == (DENIED, "Cluster authorization failed."), request
        for request in [pb.CreateTenantRequest(tenant=pb.Tenant(name="acme2", members=[me], admins=[me])),
                        pb.CreateTenantRequest(tenant=pb.Tenant(name="evil"))]:
            assert _code(t.CreateTenant, request) == DENIED
        assert _code(t.DeleteTenant, pb.DeleteTenantRequest(name="globex")) == DENIED
        assert _code(t.DeleteTenant, pb.DeleteTenantRequest(name=TENANT)) == DENIED
    tenants = {x.name: x for x in rpc.TenantServiceStub(admin).ListTenants(pb.ListTenantsRequest(),
                                                                           timeout=TIMEOUT_S).tenants}
    assert set(tenants) == {TENANT, "globex"}
    assert list(tenants[TENANT].admins) == ["User:CN=acme-boss"] and not tenants[TENANT].quotas
    assert "User:CN=acme-boss" not in tenants["globex"].members


def test_tenant_admin_cannot_set_quotas(broker, boss, admin):
    with admin_channel(broker, boss) as ch:
        q = rpc.QuotaServiceStub(ch)
        for entity in [_entity(tenant=TENANT), _entity(tenant="globex"), _entity(user=None), _entity(client_id=None),
                       _entity(user="CN=acme-boss"), _entity(user="CN=acme-dev", client_id="app")]:
            request = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=entity,
                                                                          set={"producer_byte_rate": 1e12})])
            assert _status(q.SetQuotas, request) == (DENIED, "Cluster authorization failed."), entity
            request = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=entity, remove=["producer_byte_rate"])],
                                          validate_only=True)
            assert _code(q.SetQuotas, request) == DENIED
    entries = rpc.QuotaServiceStub(admin).ListQuotas(pb.ListQuotasRequest(), timeout=TIMEOUT_S).entries
    assert [(list(e.entity.components), dict(e.quotas)) for e in entries] == \
        [(list(_entity(tenant="globex").components), {"producer_byte_rate": 1e6})]


def test_tenant_admin_cannot_touch_scram_users(broker, boss, admin):
    with admin_channel(broker, boss) as ch:
        u = rpc.UserServiceStub(ch)
        for name in ("globex-app", "acme-boss", "admin"):
            request = pb.UpsertScramUserRequest(name=name, password="x", mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_512)
            assert _status(u.UpsertScramUser, request) == (DENIED, "Cluster authorization failed."), name
        assert _code(u.DeleteScramUser, pb.DeleteScramUserRequest(name="globex-app")) == DENIED
        # acme has no SCRAM user: another tenant's reads as missing
        assert _status(u.ListScramUsers, pb.ListScramUsersRequest(names=["globex-app"])) == \
            (grpc.StatusCode.NOT_FOUND, "user globex-app has no SCRAM credential")
        assert not u.ListScramUsers(pb.ListScramUsersRequest(), timeout=TIMEOUT_S).users
        assert _code(rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest()) == DENIED
    listed = rpc.UserServiceStub(admin).ListScramUsers(pb.ListScramUsersRequest(names=["globex-app"]),
                                                       timeout=TIMEOUT_S).users
    assert [x.name for x in listed] == ["globex-app"]  # untouched


EVERYTHING = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY,
                                 operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)


def _cluster_acls(principal: str) -> list[pb.AclBinding]:
    return [pb.AclBinding(resource_type=pb.RESOURCE_TYPE_CLUSTER, resource_name="kafka-cluster", host="*",
                          pattern_type=pb.PATTERN_TYPE_LITERAL, principal=principal, operation=op,
                          permission=pb.PERMISSION_ALLOW) for op in (pb.OPERATION_ALTER, pb.OPERATION_DESCRIBE)]


@pytest.fixture(scope="module")
def initech_certificates(broker):
    return {"dev": broker.tls.client("initech-dev", common_name="initech-dev"),
            "boss": broker.tls.client("initech-boss", common_name="initech-boss")}


@pytest.fixture
def initech(admin, initech_certificates):
    """Tenant initech: member CN=initech-dev, admin CN=initech-boss, SCRAM users initech-app and (an
    operator's slip) the super user `admin`; both certificates hold Cluster ALTER and DESCRIBE through
    ACLs the super user granted. Everything is gone afterwards."""
    t, u, a = rpc.TenantServiceStub(admin), rpc.UserServiceStub(admin), rpc.AclServiceStub(admin)
    dev, boss = "User:CN=initech-dev", "User:CN=initech-boss"
    t.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name="initech", members=[dev, "User:initech-app", "User:admin"], admins=[boss])), timeout=TIMEOUT_S)
    a.CreateAcls(pb.CreateAclsRequest(bindings=_cluster_acls(dev) + _cluster_acls(boss)), timeout=TIMEOUT_S)
    u.UpsertScramUser(pb.UpsertScramUserRequest(name="initech-app", password="initech-secret",
                                                mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_256), timeout=TIMEOUT_S)
    yield initech_certificates
    t.DeleteTenant(pb.DeleteTenantRequest(name="initech"), timeout=TIMEOUT_S)
    a.DeleteAcls(pb.DeleteAclsRequest(filters=[EVERYTHING]), timeout=TIMEOUT_S)
    u.DeleteScramUser(pb.DeleteScramUserRequest(name="initech-app"), timeout=TIMEOUT_S)


def _scram_users(admin) -> dict[str, list[tuple[int, int]]]:
    users = rpc.UserServiceStub(admin).ListScramUsers(pb.ListScramUsersRequest(), timeout=TIMEOUT_S).users
    return {x.name: [(c.mechanism, c.iterations) for c in x.credentials] for x in users}


@pytest.mark.parametrize("who", ["dev", "boss"])
def test_cluster_acls_give_a_tenant_principal_nothing_beyond_its_tenant(broker, admin, initech, who):
    users_before = _scram_users(admin)
    sha = pb.SCRAM_MECHANISM_SCRAM_SHA_512
    with admin_channel(broker, initech[who]) as ch:
        t, u, q = rpc.TenantServiceStub(ch), rpc.UserServiceStub(ch), rpc.QuotaServiceStub(ch)
        refused = [
            # the super user's credential (the tenant names it, by mistake), another tenant's, no tenant's
            (u.UpsertScramUser, pb.UpsertScramUserRequest(name="admin", password="pwned", mechanism=sha)),
            (u.UpsertScramUser, pb.UpsertScramUserRequest(name="globex-app", password="pwned", mechanism=sha)),
            (u.UpsertScramUser, pb.UpsertScramUserRequest(name="mallory", password="pwned", mechanism=sha)),
            (u.DeleteScramUser, pb.DeleteScramUserRequest(name="globex-app")),
            (u.DeleteScramUser, pb.DeleteScramUserRequest(name="admin")),
            # growing a tenant, making one, touching another, quotas, the cluster's status
            (t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name="initech"), add_members=["User:CN=mallory"])),
            (t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name="initech", max_partitions=10**9))),
            (t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name="globex"), add_members=["User:CN=mallory"])),
            (t.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(name="evil", members=["User:CN=mallory"]))),
            (t.DeleteTenant, pb.DeleteTenantRequest(name="globex")),
            (q.SetQuotas, pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
                entity=_entity(tenant="initech"), set={"producer_byte_rate": 1e12})])),
            (q.SetQuotas, pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
                entity=_entity(user=None), set={"producer_byte_rate": 1})])),
            (rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest()),
        ]
        for call, request in refused:
            assert _status(call, request) == (DENIED, "Cluster authorization failed."), request
        # its own tenant's SCRAM users only: the others read as missing
        assert [x.name for x in u.ListScramUsers(pb.ListScramUsersRequest(), timeout=TIMEOUT_S).users] == \
            ["initech-app"]
        for name in ("globex-app", "admin"):
            assert _code(u.ListScramUsers, pb.ListScramUsersRequest(names=[name])) == grpc.StatusCode.NOT_FOUND
        u.UpsertScramUser(pb.UpsertScramUserRequest(name="initech-app", password="rotated", mechanism=sha),
                          timeout=TIMEOUT_S)
        # ACLs: its tenant's only, the Cluster ACLs (not in its scope) stay hidden
        assert not rpc.AclServiceStub(ch).ListAcls(pb.ListAclsRequest(filter=EVERYTHING), timeout=TIMEOUT_S).bindings
        if who == "boss":  # a tenant admin reads its own tenant, nothing more
            assert [x.name for x in t.ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S).tenants] == ["initech"]
            assert _code(t.GetTenant, pb.GetTenantRequest(name="globex")) == grpc.StatusCode.NOT_FOUND
        else:
            assert _code(t.ListTenants, pb.ListTenantsRequest()) == DENIED
            assert _code(q.ListQuotas, pb.ListQuotasRequest()) == DENIED
    users_after = _scram_users(admin)
    assert "admin" not in users_after and "mallory" not in users_after
    assert users_after["globex-app"] == users_before["globex-app"]
    assert users_after["initech-app"] == [(pb.SCRAM_MECHANISM_SCRAM_SHA_256, 8192), (sha, 8192)]
    tenants = {x.name: x for x in rpc.TenantServiceStub(admin).ListTenants(pb.ListTenantsRequest(),
                                                                           timeout=TIMEOUT_S).tenants}
    assert set(tenants) == {TENANT, "globex", "initech"}
    assert "User:CN=mallory" not in tenants["initech"].members and not tenants["initech"].HasField("max_partitions")
    assert dict(tenants["globex"].quotas) == {"producer_byte_rate": 1e6}


def _acls_of(admin, principal: str) -> list[str]:
    flt = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY, principal=principal,
                              operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
    return sorted(b.resource_name for b in
                  rpc.AclServiceStub(admin).ListAcls(pb.ListAclsRequest(filter=flt), timeout=TIMEOUT_S).bindings)


@pytest.fixture
def acls_cleared(admin):
    """Deletes every ACL afterwards, passed or failed: other tests here count on there being none."""
    yield
    rpc.AclServiceStub(admin).DeleteAcls(pb.DeleteAclsRequest(filters=[EVERYTHING]), timeout=TIMEOUT_S)


def test_a_principal_leaving_its_tenant_loses_the_tenant_acls_naming_it(broker, admin, acls_cleared):
    """A tenant admin's `hooli.` PREFIXED ALL for a member would, once the member left, be an
    ordinary ACL granting all of hooli's topics, which no tenant admin sees any more."""
    dev, boss = "User:CN=hooli-dev", "User:CN=hooli-boss"
    t, a = rpc.TenantServiceStub(admin), rpc.AclServiceStub(admin)
    t.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name="hooli", members=[dev], admins=[boss])),
                   timeout=TIMEOUT_S)
    with admin_channel(broker, broker.tls.client("hooli-boss", common_name="hooli-boss")) as ch:
        rpc.AclServiceStub(ch).CreateAcls(pb.CreateAclsRequest(bindings=[
            _acl(T, "hooli.", dev, PREFIXED, pb.OPERATION_ALL).bindings[0],
            _acl(G, "hooli.g", dev).bindings[0], _acl(T, "hooli.", boss, PREFIXED).bindings[0]]), timeout=TIMEOUT_S)
    a.CreateAcls(_acl(T, "plain", dev), timeout=TIMEOUT_S)  # the cluster admin's, outside the tenant: kept
    assert _acls_of(admin, dev) == ["hooli.", "hooli.g", "plain"]

    t.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name="hooli"), remove_members=[dev]), timeout=TIMEOUT_S)
    assert _acls_of(admin, dev) == ["plain"]
    assert _acls_of(admin, boss) == ["hooli."]
    wait_for(lambda: "updated tenant hooli: members -[User:CN=hooli-dev] (2 ACLs of removed members deleted)"
             in broker.log_text(), 10, message="the update's log line")

    t.DeleteTenant(pb.DeleteTenantRequest(name="hooli"), timeout=TIMEOUT_S)
    assert _acls_of(admin, boss) == []
    wait_for(lambda: "deleted tenant hooli (1 ACLs of its members deleted)" in broker.log_text(), 10,
             message="the delete's log line")


def test_racing_tenant_writes_never_undo_each_other(admin):
    t = rpc.TenantServiceStub(admin)
    members = [f"User:racer-{i}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        def outcomes(calls):
            futures = [pool.submit(call, request, timeout=TIMEOUT_S) for call, request in calls]
            return [f.exception().code() if f.exception() else grpc.StatusCode.OK for f in futures]

        # one name created by 8 callers at once, each with another member: one wins, whole
        codes = outcomes([(t.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(name="racers", members=[m])))
                          for m in members])
        assert (codes.count(grpc.StatusCode.OK), codes.count(grpc.StatusCode.ALREADY_EXISTS)) == (1, 7), codes
        winner = members[codes.index(grpc.StatusCode.OK)]
        assert list(t.GetTenant(pb.GetTenantRequest(name="racers"), timeout=TIMEOUT_S).members) == [winner]

        # 8 members removed by 8 callers at once: none comes back
        t.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name="racers"), add_members=members), timeout=TIMEOUT_S)
        assert outcomes([(t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name="racers"), remove_members=[m]))
                         for m in members]) == [grpc.StatusCode.OK] * 8
        assert not t.GetTenant(pb.GetTenantRequest(name="racers"), timeout=TIMEOUT_S).members

        # updates racing the delete: the tenant stays deleted
        codes = outcomes([(t.DeleteTenant, pb.DeleteTenantRequest(name="racers"))] + [
            (t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name="racers"), add_members=[m]))
            for m in members[:4]])
        assert codes[0] == grpc.StatusCode.OK
        assert set(codes[1:]) <= {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}
        assert _code(t.GetTenant, pb.GetTenantRequest(name="racers")) == grpc.StatusCode.NOT_FOUND


def _acl(rtype, name, principal="User:CN=acme-dev", pattern=pb.PATTERN_TYPE_LITERAL, op=pb.OPERATION_READ):
    return pb.CreateAclsRequest(bindings=[pb.AclBinding(
        resource_type=rtype, resource_name=name, pattern_type=pattern, principal=principal, host="*",
        operation=op, permission=pb.PERMISSION_ALLOW)])


T, G, X = pb.RESOURCE_TYPE_TOPIC, pb.RESOURCE_TYPE_GROUP, pb.RESOURCE_TYPE_TRANSACTIONAL_ID
PREFIXED = pb.PATTERN_TYPE_PREFIXED
OUT_OF_SCOPE = [
    _acl(pb.RESOURCE_TYPE_CLUSTER, "kafka-cluster", "User:CN=acme-boss", op=pb.OPERATION_ALL),
    _acl(pb.RESOURCE_TYPE_CLUSTER, "kafka-cluster", "User:CN=acme-dev", op=pb.OPERATION_ALTER),
    _acl(T, "globex.orders"),
    _acl(T, "acme", pattern=PREFIXED),  # would cover acme2.* and acme-x.*
    _acl(T, "acm", pattern=PREFIXED),
    _acl(T, "acme2.orders"),
    _acl(T, "acme2.", pattern=PREFIXED),
    _acl(T, "ACME.orders"),
    _acl(T, "acme"),
    _acl(T, "*"),
    _acl(G, "*"),
    _acl(X, "*"),
    _acl(G, "globex.", pattern=PREFIXED),
    _acl(X, "globex.tx"),
    _acl(G, "acme", pattern=PREFIXED),
    _acl(T, "acme.orders", principal="User:CN=globex-dev"),
    _acl(T, "acme.", principal="User:globex-app", pattern=PREFIXED),
    _acl(T, "acme.orders", principal="User:*"),
    _acl(T, "acme.orders", principal="User:CN=admin"),
    _acl(T, "acme.orders", principal="Group:acme-devs"),  # not a principal of acme
    _acl(pb.RESOURCE_TYPE_USER, "acme.x"),
    _acl(pb.RESOURCE_TYPE_DELEGATION_TOKEN, "acme.x"),
]


@pytest.mark.parametrize("request_", OUT_OF_SCOPE, ids=lambda r: " ".join(str(r.bindings[0]).split())[:90])
def test_tenant_admin_acls_outside_its_tenant_are_denied(broker, boss, admin, request_):
    with admin_channel(broker, boss) as ch:
        assert _status(rpc.AclServiceStub(ch).CreateAcls, request_) == (DENIED, "Cluster authorization failed.")
    everything = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY,
                                     operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
    assert not rpc.AclServiceStub(admin).ListAcls(pb.ListAclsRequest(filter=everything), timeout=TIMEOUT_S).bindings


def test_tenant_admin_acls_inside_its_tenant_only(broker, boss, admin):
    with admin_channel(broker, boss) as ch:
        a = rpc.AclServiceStub(ch)
        inside = _acl(T, "acme.", pattern=PREFIXED)
        mixed = _acl(T, "acme.orders")
        mixed.bindings.extend(_acl(T, "globex.orders").bindings)
        assert _code(a.CreateAcls, mixed) == DENIED  # one binding out of scope refuses the whole request
        a.CreateAcls(inside, timeout=TIMEOUT_S)
        # the admin cannot see or delete anything outside its namespace, even with an ANY filter
        rpc.AclServiceStub(admin).CreateAcls(_acl(T, "globex.", "User:CN=globex-dev", PREFIXED), timeout=TIMEOUT_S)
        everything = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY,
                                         operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
        listed = a.ListAcls(pb.ListAclsRequest(filter=everything), timeout=TIMEOUT_S).bindings
        assert [b.resource_name for b in listed] == ["acme."]
        deleted = a.DeleteAcls(pb.DeleteAclsRequest(filters=[everything]), timeout=TIMEOUT_S).deleted
        assert [b.resource_name for b in deleted] == ["acme."]
    left = rpc.AclServiceStub(admin).DeleteAcls(pb.DeleteAclsRequest(filters=[everything]), timeout=TIMEOUT_S).deleted
    assert [b.resource_name for b in left] == ["globex."]


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
    yield pb.Tenant(name="ok", quotas={"producer_byte_rate": 0.5})  # byte rates are whole, as SetQuotas has them
    yield pb.Tenant(name="ok", quotas={"consumer_byte_rate": 1e19})  # past a LONG
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
    for quotas in ({"producer_byte_rate": 0.5}, {"consumer_byte_rate": 1e19}):
        assert _code(t.UpdateTenant, pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT, quotas=quotas),
                                                            update_mask=FieldMask(paths=["quotas"]))) == INVALID
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
    entity = _entity(user="u" * 1000)
    quotas = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=entity, remove=["x" * 1000])] * 600)
    assert quotas.ByteSize() > 1 << 20
    assert _code(rpc.QuotaServiceStub(admin).SetQuotas, quotas) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_garbage_request_bytes_are_refused(admin):
    call = admin.unary_unary("/keystream.admin.v1.TenantService/CreateTenant",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
    for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05abc"):
        code = _code(call, garbage)
        assert code == INVALID, (garbage, code)
    assert _code(admin.unary_unary("/keystream.admin.v1.Nope/Nothing", request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b), b"") == grpc.StatusCode.UNIMPLEMENTED


def test_malformed_quota_requests_are_invalid_argument(admin):
    q = rpc.QuotaServiceStub(admin)
    user = pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_USER, name="alice")

    def entity(*components):
        return pb.QuotaEntity(components=list(components))
    bad_entities = [
        entity(),
        entity(pb.QuotaEntityComponent(name="alice")),                      # UNSPECIFIED type
        entity(pb.QuotaEntityComponent(type=99, name="alice")),             # unknown enum value
        entity(pb.QuotaEntityComponent(type=-1, name="alice")),
        entity(user, user),
        entity(user, pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_TENANT, name=TENANT)),
        entity(pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_TENANT)),  # no default tenant
        entity(pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_USER, name="")),
        entity(pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_USER, name="a" * 1025)),
        entity(pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_CLIENT_ID, name="x\x00y")),
        entity(user, user, user, user),
    ]
    for e in bad_entities:
        request = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=e, set={"producer_byte_rate": 1})])
        assert _code(q.SetQuotas, request) == INVALID, e
    ok = entity(user)
    for values, remove in [({"producer_byte_rate": -1}, []), ({"producer_byte_rate": 0}, []),
                           ({"producer_byte_rate": 1.5}, []), ({"consumer_byte_rate": 2.0**64}, []),
                           ({"request_percentage": math.nan}, []), ({"request_percentage": math.inf}, []),
                           ({"bogus": 1}, []), ({}, ["bogus"]), ({}, ["x" * 5000]),
                           ({"producer_byte_rate": 1}, ["producer_byte_rate"]), ({}, ["request_percentage"] * 4)]:
        request = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=ok, set=values, remove=remove)])
        assert _code(q.SetQuotas, request) == INVALID, (values, remove)
    twice = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(entity=ok, set={"producer_byte_rate": 1})] * 2)
    assert _code(q.SetQuotas, twice) == INVALID
    too_many = pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
        entity=entity(pb.QuotaEntityComponent(type=pb.QUOTA_ENTITY_TYPE_USER, name=f"u{i}")),
        set={"producer_byte_rate": 1}) for i in range(1001)])
    assert _code(q.SetQuotas, too_many) == INVALID
    for components in [
        [pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER)],  # UNSPECIFIED match
        [pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=42)],
        [pb.QuotaFilterComponent(type=42, match=pb.QUOTA_MATCH_ANY)],
        [pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=pb.QUOTA_MATCH_EXACT)],
        [pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=pb.QUOTA_MATCH_DEFAULT, name="x")],
        [pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=pb.QUOTA_MATCH_ANY)] * 2,
    ]:
        assert _code(q.ListQuotas, pb.ListQuotasRequest(components=components)) == INVALID, components
    assert not [e for e in q.ListQuotas(pb.ListQuotasRequest(), timeout=TIMEOUT_S).entries
                if e.entity.components[0].type != pb.QUOTA_ENTITY_TYPE_TENANT]  # nothing was stored


def test_malformed_tenant_edits_are_invalid_argument(admin):
    t = rpc.TenantServiceStub(admin)
    for request in [
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), add_members=["alice"]),
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), add_members=["User:*"]),
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), add_admins=["User:a\nb"]),
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), add_members=[f"User:u{i}" for i in range(1001)]),
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), remove_members=["User:CN=nobody"]),
        pb.UpdateTenantRequest(tenant=pb.Tenant(name=TENANT), remove_admins=["User:CN=acme-dev"]),  # a member only
    ]:
        assert _code(t.UpdateTenant, request) == INVALID, request
    assert _code(rpc.UserServiceStub(admin).DeleteScramUser, pb.DeleteScramUserRequest(name="globex-app",
                                                                                       mechanism=99)) == INVALID
    got = t.GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S)
    assert (set(got.members), list(got.admins)) == ({"User:CN=acme-dev", "User:CN=acme-boss"}, ["User:CN=acme-boss"])


def _raw_tls(broker, alpn: list[str] | None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(broker.tls.ca_cert))
    ctx.load_cert_chain(str(broker.tls.admin.cert), str(broker.tls.admin.key))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    sock = socket.create_connection(("127.0.0.1", broker.admin_port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def _closed_by_server(conn: ssl.SSLSocket) -> bool:
    """Reads (and drops, e.g. a GOAWAY) until the server closes; False if it is still open at the deadline."""
    deadline = Deadline(10)
    try:
        while not deadline.expired():
            conn.settimeout(max(deadline.left(), 0.01))
            if not conn.recv(65536):
                return True
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError):
        return True
    return False


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GARBAGE = [
    b"\x00" * 64,                                                # not a preface
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                        # HTTP/1.1 on an h2 connection
    HTTP2_PREFACE + b"\xff" * 9 + b"\x00" * 100,                    # a frame of unknown type, huge length
    HTTP2_PREFACE + b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x03\xff\xff\xff\xff"  # SETTINGS, then
    + b"\x00\x00\x05\x01\x04\x00\x00\x00\x01" + b"\xff\xff\xff\xff\xff",  # HEADERS with broken HPACK
    HTTP2_PREFACE + b"\x00\x00\x08\x06\x00\x00\x00\x00\x01abc",       # PING on stream 1, cut short
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_on_the_http2_stream_closes_that_connection_only(broker, admin, garbage):
    with _raw_tls(broker, ["h2"]) as conn:
        assert conn.selected_alpn_protocol() == "h2"
        conn.sendall(garbage)
        closed = _closed_by_server(conn)
    assert closed, "the server kept a connection that sent garbage"
    assert rpc.TenantServiceStub(admin).GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT


def test_garbage_instead_of_tls_is_dropped(broker, admin):
    for garbage in (b"\x16\x03\x01\xff\xff" + b"\x00" * 50, HTTP2_PREFACE, b"GET / HTTP/1.0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", broker.admin_port), timeout=10) as sock:
            sock.sendall(garbage)
            deadline, data = Deadline(10), b"x"
            while data and not deadline.expired():
                sock.settimeout(max(deadline.left(), 0.01))
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    break
                except ConnectionError:
                    data = b""
            assert not data, f"the server did not drop a client sending {garbage[:20]!r}"
    assert rpc.TenantServiceStub(admin).GetTenant(pb.GetTenantRequest(name=TENANT), timeout=TIMEOUT_S).name == TENANT
