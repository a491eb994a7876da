"""The gRPC admin API on a real broker (admin.listener, mTLS) with real grpc clients: health, the
tenant lifecycle, SCRAM users that then log in over SASL, ACLs, cluster status, and what a tenant
admin may do."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keystream.auth.sasl.scram import salted_password
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.clients import create_topic
from tests.fixtures.sasl import sasl_wire, scram_login
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
    got = stub.GetTenant(pb.GetTenantRequest(name=name), timeout=TIMEOUT_S)
    assert (got.usage.topics, got.usage.partitions) == (1, 3)
    assert name in [t.name for t in stub.ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S).tenants]

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


def test_cli_manages_the_tenant_lifecycle(broker, tmp_path):
    import json

    from click.testing import CliRunner

    from keystream.cli import cli

    props = broker.tls.client_properties(tmp_path / "client.properties")
    common = ["--admin-url", broker.admin_target, "--command-config", str(props)]
    name = _tenant_name()

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    run("tenant", "create", name, "--principal", f"User:{name}-alice", "--principal", f"Group:{name}-devs",
        "--admin", f"User:{name}-boss", "--produce-byte-rate", "10MB", "--fetch-byte-rate", "20MB",
        "--max-partitions", "200", "--max-storage-bytes", "50GB")
    described = json.loads(run("tenant", "describe", name, "--output", "json"))
    assert described["quotas"] == {"producer_byte_rate": 10e6, "consumer_byte_rate": 20e6}
    assert described["max_storage_bytes"] == 50 * 10**9 and described["prefix"] == f"{name}."
    assert f"Tenant: {name}" in run("tenant", "describe", name)
    assert name in run("tenant", "list").split()
    run("quota", "set", "--tenant", name, "--produce-byte-rate", "1MiB", "--delete", "consumer_byte_rate")
    rows = json.loads(run("quota", "list", "--tenant", name, "--output", "json"))
    assert rows == [{"entity": {"tenant": name}, "quotas": {"producer_byte_rate": float(2**20)}}]
    run("tenant", "delete", name)
    run("tenant", "delete", name, "--if-exists")
    result = CliRunner().invoke(cli, ["tenant", "describe", name, *common])
    assert result.exit_code == 1 and "NOT_FOUND" in result.output
