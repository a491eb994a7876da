"""The gRPC admin API on a real broker (admin.listener, mTLS) with real grpc clients: health, the
tenant lifecycle, client quotas (seen by Kafka's DescribeClientQuotas too), SCRAM users that then
log in over SASL, ACLs, cluster status, and what a tenant admin may do. The CLI over the same API:
tests/integration/test_cli_tenant.py."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keystream.auth.sasl.scram import salted_password
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.broker.protocol.messages.describe_client_quotas_request import DescribeClientQuotasRequest
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.clients import create_topic, wire
from tests.fixtures.sasl import sasl_wire, scram_login
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return admin_broker(module_broker_factory, sasl="SCRAM-SHA-256,SCRAM-SHA-512")


@pytest.fixture(scope="module")
def channel(broker):
    with admin_channel(broker) as ch:
        yield ch


def _code(call, *args) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=TIMEOUT_S)
    return info.value.code()


def _counts(usage: pb.TenantUsage) -> tuple[int, int]:
    return usage.topics, usage.partitions


def _tenant_name() -> str:
    return unique_name("t").lower().replace("_", "-")[:40]


def test_health_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "keystream.admin.v1.TenantService", "keystream.admin.v1.ClusterService"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert _code(stub.Check, health_pb2.HealthCheckRequest(service="nope")) == grpc.StatusCode.NOT_FOUND


def test_tenant_lifecycle(broker, channel):
    stub = rpc.TenantServiceStub(channel)
    name = _tenant_name()
    created = stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name=name, members=[f"User:{name}-alice", f"Group:{name}-devs"], admins=[f"User:{name}-boss"],
        quotas={"producer_byte_rate": 10e6, "consumer_byte_rate": 20e6}, max_partitions=200,
        max_storage_bytes=50 << 30)), timeout=TIMEOUT_S)
    assert set(created.members) == {f"User:{name}-alice", f"Group:{name}-devs", f"User:{name}-boss"}
    assert created.max_partitions == 200 and created.quotas["producer_byte_rate"] == 10e6
    assert _code(stub.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(name=name))) == \
        grpc.StatusCode.ALREADY_EXISTS

    create_topic(broker, f"{name}.orders", partitions=3)
    wait_for(lambda: _counts(stub.GetTenant(pb.GetTenantRequest(name=name), timeout=TIMEOUT_S).usage) == (1, 3), 10,
             message="the tenant's topics and partitions in its usage")  # partitions are recounted periodically
    listed = {t.name: t for t in stub.ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S).tenants}
    assert not listed[name].HasField("usage")  # asked for only when wanted: it costs a pass over the topics

    # one quota key changed, one limit cleared, the rest kept
    updated = stub.UpdateTenant(pb.UpdateTenantRequest(
        tenant=pb.Tenant(name=name, quotas={"producer_byte_rate": 5e6}),
        update_mask=FieldMask(paths=["quotas.producer_byte_rate", "max_storage_bytes"])), timeout=TIMEOUT_S)
    assert dict(updated.quotas) == {"producer_byte_rate": 5e6, "consumer_byte_rate": 20e6}
    assert not updated.HasField("max_storage_bytes") and updated.max_partitions == 200
    updated = stub.UpdateTenant(pb.UpdateTenantRequest(
        tenant=pb.Tenant(name=name, members=[f"User:{name}-carol"]), update_mask=FieldMask(paths=["members"])),
        timeout=TIMEOUT_S)
    assert set(updated.members) == {f"User:{name}-carol", f"User:{name}-boss"}  # admins stay members

    # a principal belongs to one tenant at most
    other = _tenant_name()
    assert _code(stub.CreateTenant, pb.CreateTenantRequest(tenant=pb.Tenant(
        name=other, members=[f"User:{name}-carol"]))) == grpc.StatusCode.FAILED_PRECONDITION

    stub.DeleteTenant(pb.DeleteTenantRequest(name=name), timeout=TIMEOUT_S)
    assert _code(stub.GetTenant, pb.GetTenantRequest(name=name)) == grpc.StatusCode.NOT_FOUND
    assert _code(stub.DeleteTenant, pb.DeleteTenantRequest(name=name)) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("mechanism, code", [("SCRAM-SHA-256", pb.SCRAM_MECHANISM_SCRAM_SHA_256),
                                             ("SCRAM-SHA-512", pb.SCRAM_MECHANISM_SCRAM_SHA_512)])
def test_scram_user_upsert_then_sasl_login(broker, channel, mechanism, code):
    stub = rpc.UserServiceStub(channel)
    user = unique_name("u")
    stub.UpsertScramUser(pb.UpsertScramUserRequest(name=user, mechanism=code, password="s3cret"), timeout=TIMEOUT_S)
    with sasl_wire(broker) as c:
        scram_login(c, user, "s3cret", mechanism)
    listed = stub.ListScramUsers(pb.ListScramUsersRequest(names=[user]), timeout=TIMEOUT_S).users
    assert [(u.name, [(c.mechanism, c.iterations) for c in u.credentials]) for u in listed] == [(user, [(code, 8192)])]

    # a salted credential, as Kafka's admin clients send it: the password never leaves the client
    salt = b"0123456789abcdef"
    stub.UpsertScramUser(pb.UpsertScramUserRequest(
        name=user, mechanism=code, iterations=4096,
        salted=pb.SaltedPassword(salt=salt, salted_password=salted_password("other", mechanism, salt, 4096))),
        timeout=TIMEOUT_S)
    with sasl_wire(broker) as c:
        scram_login(c, user, "other", mechanism)

    stub.DeleteScramUser(pb.DeleteScramUserRequest(name=user), timeout=TIMEOUT_S)
    assert _code(stub.ListScramUsers, pb.ListScramUsersRequest(names=[user])) == grpc.StatusCode.NOT_FOUND
    with sasl_wire(broker) as c, pytest.raises(AssertionError, match="SaslAuthenticate error"):
        scram_login(c, user, "other", mechanism)


def test_acls_round_trip(channel):
    stub = rpc.AclServiceStub(channel)
    topic = unique_name("acl")
    binding = pb.AclBinding(resource_type=pb.RESOURCE_TYPE_TOPIC, resource_name=topic,
                            pattern_type=pb.PATTERN_TYPE_LITERAL, principal="User:alice",
                            operation=pb.OPERATION_READ, permission=pb.PERMISSION_ALLOW)
    stub.CreateAcls(pb.CreateAclsRequest(bindings=[binding]), timeout=TIMEOUT_S)
    flt = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, resource_name=topic, pattern_type=pb.PATTERN_TYPE_ANY,
                              operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
    listed = stub.ListAcls(pb.ListAclsRequest(filter=flt), timeout=TIMEOUT_S).bindings
    expected = pb.AclBinding(); expected.CopyFrom(binding); expected.host = "*"  # noqa: E702
    assert list(listed) == [expected]
    deleted = stub.DeleteAcls(pb.DeleteAclsRequest(filters=[flt]), timeout=TIMEOUT_S).deleted
    assert list(deleted) == [expected]
    assert not stub.ListAcls(pb.ListAclsRequest(filter=flt), timeout=TIMEOUT_S).bindings


def test_cluster_status(broker, channel):
    status = rpc.ClusterServiceStub(channel).GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT_S)
    assert status.node_id == 1 and status.cluster_id
    assert {(e.security_protocol, e.port) for e in status.listeners} >= {("SSL", broker.port)}
    assert status.connections >= 0 and status.version


def test_tenant_admin_reads_its_tenant_and_manages_its_acls(broker, channel):
    name = _tenant_name()
    boss = broker.tls.client(f"{name}-boss", common_name=f"{name}-boss")
    rpc.TenantServiceStub(channel).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name=name, members=[f"User:CN={name}-dev"], admins=[f"User:CN={name}-boss"])), timeout=TIMEOUT_S)
    with admin_channel(broker, boss) as ch:
        tenants = rpc.TenantServiceStub(ch)
        assert tenants.GetTenant(pb.GetTenantRequest(name=name), timeout=TIMEOUT_S).name == name
        assert [t.name for t in tenants.ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S).tenants] == [name]
        acls = rpc.AclServiceStub(ch)
        inside = pb.AclBinding(resource_type=pb.RESOURCE_TYPE_TOPIC, resource_name=f"{name}.", host="*",
                               pattern_type=pb.PATTERN_TYPE_PREFIXED, principal=f"User:CN={name}-dev",
                               operation=pb.OPERATION_DESCRIBE_CONFIGS, permission=pb.PERMISSION_DENY)
        acls.CreateAcls(pb.CreateAclsRequest(bindings=[inside]), timeout=TIMEOUT_S)
        everything = pb.AclBindingFilter(resource_type=pb.RESOURCE_TYPE_ANY, pattern_type=pb.PATTERN_TYPE_ANY,
                                         operation=pb.OPERATION_ANY, permission=pb.PERMISSION_ANY)
        assert list(acls.ListAcls(pb.ListAclsRequest(filter=everything), timeout=TIMEOUT_S).bindings) == [inside]
        assert list(acls.DeleteAcls(pb.DeleteAclsRequest(filters=[everything]), timeout=TIMEOUT_S).deleted) == [inside]


def test_update_adds_and_removes_principals_one_by_one(channel):
    stub = rpc.TenantServiceStub(channel)
    name = _tenant_name()
    alice, bob, boss = (f"User:{name}-{who}" for who in ("alice", "bob", "boss"))
    stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name=name, members=[alice], quotas={
        "producer_byte_rate": 1e6}, max_partitions=10)), timeout=TIMEOUT_S)
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name), add_members=[bob], add_admins=[boss]),
                          timeout=TIMEOUT_S)  # no mask: nothing but the lists changes
    assert (set(t.members), list(t.admins)) == ({alice, bob, boss}, [boss])
    assert dict(t.quotas) == {"producer_byte_rate": 1e6} and t.max_partitions == 10
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name), remove_admins=[boss]), timeout=TIMEOUT_S)
    assert (set(t.members), list(t.admins)) == ({alice, bob, boss}, [])  # still a member
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name, max_partitions=20), add_admins=[bob],
                                                 remove_members=[alice], update_mask=FieldMask(paths=["max_partitions"])),
                          timeout=TIMEOUT_S)
    assert (set(t.members), list(t.admins), t.max_partitions) == ({bob, boss}, [bob], 20)
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name), remove_members=[bob]), timeout=TIMEOUT_S)
    assert (set(t.members), list(t.admins)) == ({boss}, [])  # a removed member is no admin either
    request = pb.UpdateTenantRequest(tenant=pb.Tenant(name=name), remove_members=[alice])
    with pytest.raises(grpc.RpcError) as info:
        stub.UpdateTenant(request, timeout=TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == f"remove_members: {alice} is not a member of tenant {name}"
    stub.DeleteTenant(pb.DeleteTenantRequest(name=name), timeout=TIMEOUT_S)


def test_list_tenants_with_usage_counts_each_tenant_in_one_pass(broker, channel):
    stub = rpc.TenantServiceStub(channel)
    a, b = _tenant_name(), _tenant_name()
    for name in (a, b):
        stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name=name)), timeout=TIMEOUT_S)
    create_topic(broker, f"{a}.orders", partitions=2)
    create_topic(broker, f"{a}.audit", partitions=1)
    create_topic(broker, f"{b}.events", partitions=4)
    create_topic(broker, f"{a}", partitions=1)        # no dot: no tenant's
    create_topic(broker, f"{a}x.orders", partitions=1)  # another prefix

    def listed():
        found = stub.ListTenants(pb.ListTenantsRequest(include_usage=True), timeout=TIMEOUT_S).tenants
        return {t.name: _counts(t.usage) for t in found if t.name in (a, b)}
    wait_for(lambda: listed() == {a: (2, 3), b: (1, 4)}, 10, message=lambda: f"usage of {a}, {b}: {listed()}")
    assert _counts(stub.GetTenant(pb.GetTenantRequest(name=a), timeout=TIMEOUT_S).usage) == (2, 3)
    for name in (a, b):
        stub.DeleteTenant(pb.DeleteTenantRequest(name=name), timeout=TIMEOUT_S)


def test_update_without_a_mask_changes_only_the_fields_it_sets(channel):
    """AIP-134: no mask means the fields set in the request, never "replace everything"."""
    stub = rpc.TenantServiceStub(channel)
    name = _tenant_name()
    alice, boss = f"User:{name}-alice", f"User:{name}-boss"
    stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name=name, members=[alice], admins=[boss], quotas={"producer_byte_rate": 1e6}, max_partitions=10,
        max_storage_bytes=1 << 30)), timeout=TIMEOUT_S)
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name, max_partitions=20)), timeout=TIMEOUT_S)
    assert (set(t.members), list(t.admins), dict(t.quotas)) == ({alice, boss}, [boss], {"producer_byte_rate": 1e6})
    assert (t.max_partitions, t.max_storage_bytes) == (20, 1 << 30)
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name, quotas={"consumer_byte_rate": 2e6})),
                          timeout=TIMEOUT_S)
    assert dict(t.quotas) == {"consumer_byte_rate": 2e6} and set(t.members) == {alice, boss}  # the map is a field
    t = stub.UpdateTenant(pb.UpdateTenantRequest(tenant=pb.Tenant(name=name)), timeout=TIMEOUT_S)  # nothing set
    assert (set(t.members), list(t.admins), t.max_partitions, t.max_storage_bytes) == ({alice, boss}, [boss], 20,
                                                                                      1 << 30)
    stub.DeleteTenant(pb.DeleteTenantRequest(name=name), timeout=TIMEOUT_S)


def _entity(**names) -> pb.QuotaEntity:
    """_entity(user="alice", client_id=None): None is the type's default entity."""
    types = {"user": pb.QUOTA_ENTITY_TYPE_USER, "client_id": pb.QUOTA_ENTITY_TYPE_CLIENT_ID,
             "tenant": pb.QUOTA_ENTITY_TYPE_TENANT}
    return pb.QuotaEntity(components=[pb.QuotaEntityComponent(type=types[k], name=v) for k, v in names.items()])


def _kafka_quotas(broker) -> dict:
    """What Kafka's DescribeClientQuotas answers (all entities)."""
    with wire(broker) as c:
        resp = c.request(DescribeClientQuotasRequest([], False), 1)
    assert resp.error_code == 0, resp.error_message
    return {tuple(sorted((d.entity_type, d.entity_name) for d in e.entity)): {v.key: v.value for v in e.values}
            for e in resp.entries}


def test_quotas_of_users_client_ids_and_tenants(broker, channel):
    q = rpc.QuotaServiceStub(channel)
    user, tenant = unique_name("qu"), _tenant_name()
    rpc.TenantServiceStub(channel).CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(name=tenant)),
                                                timeout=TIMEOUT_S)
    alterations = [
        pb.QuotaAlteration(entity=_entity(user=user), set={"producer_byte_rate": 1048576}),
        pb.QuotaAlteration(entity=_entity(user=user, client_id=None), set={"request_percentage": 25}),
        pb.QuotaAlteration(entity=_entity(client_id=f"{user}-job"), set={"consumer_byte_rate": 2048}),
        pb.QuotaAlteration(entity=_entity(tenant=tenant), set={"producer_byte_rate": 10e6}),
    ]
    dry = q.SetQuotas(pb.SetQuotasRequest(alterations=alterations, validate_only=True), timeout=TIMEOUT_S)
    assert [dict(e.quotas) for e in dry.entries] == [{"producer_byte_rate": 1048576}, {"request_percentage": 25},
                                                    {"consumer_byte_rate": 2048}, {"producer_byte_rate": 10e6}]
    assert (("user", user),) not in _kafka_quotas(broker)
    q.SetQuotas(pb.SetQuotasRequest(alterations=alterations), timeout=TIMEOUT_S)
    kafka = _kafka_quotas(broker)  # the same store Kafka's tools read
    assert kafka[(("user", user),)] == {"producer_byte_rate": 1048576.0}
    assert kafka[(("client-id", None), ("user", user))] == {"request_percentage": 25.0}
    assert kafka[(("client-id", f"{user}-job"),)] == {"consumer_byte_rate": 2048.0}
    assert kafka[(("tenant", tenant),)] == {"producer_byte_rate": 10e6}
    got = rpc.TenantServiceStub(channel).GetTenant(pb.GetTenantRequest(name=tenant), timeout=TIMEOUT_S)
    assert dict(got.quotas) == {"producer_byte_rate": 10e6}

    def listed(*components, strict=False):
        entries = q.ListQuotas(pb.ListQuotasRequest(components=components, strict=strict), timeout=TIMEOUT_S).entries
        return [(list(e.entity.components), dict(e.quotas)) for e in entries]
    exact = pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_USER, match=pb.QUOTA_MATCH_EXACT, name=user)
    assert listed(exact, strict=True) == [(list(_entity(user=user).components), {"producer_byte_rate": 1048576})]
    assert [e[1] for e in listed(exact)] == [{"producer_byte_rate": 1048576}, {"request_percentage": 25}]
    default_client = pb.QuotaFilterComponent(type=pb.QUOTA_ENTITY_TYPE_CLIENT_ID, match=pb.QUOTA_MATCH_DEFAULT)
    assert listed(exact, default_client) == [(list(_entity(user=user, client_id=None).components),
                                              {"request_percentage": 25})]

    # keys removed one by one; an entity with none left is gone
    removed = q.SetQuotas(pb.SetQuotasRequest(alterations=[
        pb.QuotaAlteration(entity=_entity(user=user), remove=["producer_byte_rate"]),
        pb.QuotaAlteration(entity=_entity(user=user, client_id=None), remove=["request_percentage"]),
        pb.QuotaAlteration(entity=_entity(client_id=f"{user}-job"), remove=["consumer_byte_rate"]),
        pb.QuotaAlteration(entity=_entity(tenant=tenant), remove=["producer_byte_rate"])]), timeout=TIMEOUT_S)
    assert [dict(e.quotas) for e in removed.entries] == [{}, {}, {}, {}]
    assert not [k for k in _kafka_quotas(broker) if user in str(k) or tenant in str(k)]
    rpc.TenantServiceStub(channel).DeleteTenant(pb.DeleteTenantRequest(name=tenant), timeout=TIMEOUT_S)


def test_quotas_of_a_missing_tenant_are_not_found_and_nothing_is_applied(broker, channel):
    user = unique_name("qu")
    request = pb.SetQuotasRequest(alterations=[
        pb.QuotaAlteration(entity=_entity(user=user), set={"producer_byte_rate": 1024}),
        pb.QuotaAlteration(entity=_entity(tenant="no-such-tenant"), set={"producer_byte_rate": 1024})])
    assert _code(rpc.QuotaServiceStub(channel).SetQuotas, request) == grpc.StatusCode.NOT_FOUND
    assert (("user", user),) not in _kafka_quotas(broker)


def test_tenant_admin_lists_its_own_tenant_quotas_only(broker, channel):
    name, other = _tenant_name(), _tenant_name()
    tenants = rpc.TenantServiceStub(channel)
    tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name=name, admins=[f"User:CN={name}-boss"], quotas={"consumer_byte_rate": 5e6})), timeout=TIMEOUT_S)
    tenants.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        name=other, quotas={"consumer_byte_rate": 7e6})), timeout=TIMEOUT_S)
    rpc.QuotaServiceStub(channel).SetQuotas(pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
        entity=_entity(user=f"CN={name}-boss"), set={"producer_byte_rate": 1024})]), timeout=TIMEOUT_S)
    boss = broker.tls.client(f"{name}-boss", common_name=f"{name}-boss")
    with admin_channel(broker, boss) as ch:
        entries = rpc.QuotaServiceStub(ch).ListQuotas(pb.ListQuotasRequest(), timeout=TIMEOUT_S).entries
    assert [(list(e.entity.components), dict(e.quotas)) for e in entries] == \
        [(list(_entity(tenant=name).components), {"consumer_byte_rate": 5e6})]
    rpc.QuotaServiceStub(channel).SetQuotas(pb.SetQuotasRequest(alterations=[pb.QuotaAlteration(
        entity=_entity(user=f"CN={name}-boss"), remove=["producer_byte_rate"])]), timeout=TIMEOUT_S)
    for n in (name, other):
        tenants.DeleteTenant(pb.DeleteTenantRequest(name=n), timeout=TIMEOUT_S)
