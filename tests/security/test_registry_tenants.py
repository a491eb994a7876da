"""Cross-tenant attacks through the schema registry: a member of `acme` against `globex`'s subjects,
un-namespaced ones and look-alike names, on a real broker (SASL_SSL, gRPC admin API) and a real
registry process that reads the broker's tenants from `admin.url`.

Tenants `acme` (User:alice) and `globex` (User:gina) are created over gRPC. alice also holds ACLs that
try to reach outside (ALLOW ALL on topic `*` and on PREFIXED `acme`, which spans `acme2.`); the tenant
rule denies everything outside `acme.` anyway. Every probe is sent for a subject that exists and one
that does not, names of the same length, and the two answers must be the same once the name is
swapped: reads answer 40401 as for a missing subject, writes the 40301 anyone gets, schema ids 40403.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import Tenant
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.registry.access import Access, Action
from keystream.registry.config import RegistryConfig
from keystream.registry.errors import RegistryError
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.broker import free_port
from tests.fixtures.clients import admin
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only

ALICE, GINA = "alice:alice-secret", "gina:gina-secret"
REFRESH_MS = 300
# (existing outside subject, a missing one of the same length); the admin registers the first of each
OUTSIDE = [
    ("globex.events-value", "globex.eventz-value"),  # another tenant's
    ("acme2.x-value", "acme2.y-value"),              # a tenant name that only starts like ours
    ("ACME.orders-value", "ACME.ordera-value"),      # differs in case only
    ("acme-value", "acmf-value"),                    # topic `acme`: no dot, outside `acme.`
    ("com.globex.Event", "com.globex.Evenz"),        # RecordNameStrategy-style subject
    ("orders-value", "ordert-value"),                # un-namespaced
]


def schema(name: str, *extra: str) -> dict:
    fields = [{"name": "id", "type": "long"}, *({"name": f, "type": "int", "default": 0} for f in extra)]
    return {"schema": json.dumps({"type": "record", "name": name, "fields": fields})}


def create_tenant(channel, name: str, *members: str) -> None:
    rpc.TenantServiceStub(channel).CreateTenant(
        pb.CreateTenantRequest(tenant=pb.Tenant(name=name, members=list(members))), timeout=TIMEOUT_S)


def scram_user(channel, name: str, password: str) -> None:
    rpc.UserServiceStub(channel).UpsertScramUser(pb.UpsertScramUserRequest(
        name=name, mechanism=pb.SCRAM_MECHANISM_SCRAM_SHA_512, password=password), timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = admin_broker(module_broker_factory, sasl="SCRAM-SHA-512")
    with admin_channel(b) as ch:
        for user in ("alice", "gina"):
            scram_user(ch, user, f"{user}-secret")
    from confluent_kafka.admin import AclBinding, AclPermissionType  # noqa: PLC0415

    reach = [AclBinding(ResourceType.TOPIC, name, pattern, "User:alice", "*", AclOperation.ALL,
                        AclPermissionType.ALLOW)
             for name, pattern in (("*", ResourcePatternType.LITERAL), ("acme", ResourcePatternType.PREFIXED),
                                   *((s, ResourcePatternType.LITERAL) for pair in OUTSIDE for s in pair))]
    client = admin(b)
    for future in client.create_acls(reach, request_timeout=30).values():
        assert future.result() is None
    return b


@pytest.fixture(scope="module")
def registry(broker, registry_factory):
    r = registry_factory(broker, **{"acl.refresh.ms": REFRESH_MS})
    for subject, _ in OUTSIDE[1:]:
        assert r.http("POST", f"/subjects/{subject}/versions", schema("Outside")).status == 200
    assert r.http("POST", "/subjects/globex.old-value/versions", schema("Old")).status == 200
    assert r.http("DELETE", "/subjects/globex.old-value").status == 200  # soft deleted
    # Tenants come after the registry started: its copy follows the broker's within the refresh.
    with admin_channel(broker) as ch:
        create_tenant(ch, "acme", "User:alice")
        create_tenant(ch, "globex", "User:gina")
    wait_for(lambda: r.http("GET", "/subjects", basic=ALICE).json() == [], 10,
             message="the registry to confine alice to tenant acme")
    reply = r.http("POST", "/subjects/globex.events-value/versions", schema("Event"), basic=GINA)
    assert reply.status == 200, reply.body
    reply = r.http("POST", "/subjects/acme.orders-value/versions", schema("Order"), basic=ALICE)
    assert reply.status == 200, reply.body
    return r


def _same_answer(registry, method: str, path: str, real: str, missing: str, body=None):
    """The answers for the real and the missing subject, asserted equal once the name is swapped."""
    a = registry.http(method, path.format(s=real), body, basic=ALICE)
    b = registry.http(method, path.format(s=missing), body, basic=ALICE)
    assert (a.status, a.body.replace(real.encode(), missing.encode())) == (b.status, b.body), (method, path, real)
    rest = a.body.replace(real.encode(), b"")
    assert b"Outside" not in rest and b"Event" not in rest and b'"id"' not in rest
    return a


READS = [("GET", "/subjects/{s}/versions"), ("GET", "/subjects/{s}/versions/1"),
         ("GET", "/subjects/{s}/versions/latest/schema"), ("GET", "/subjects/{s}/versions/1/referencedby"),
         ("GET", "/subjects/{s}/versions?deleted=true"), ("DELETE", "/subjects/{s}"),
         ("DELETE", "/subjects/{s}?permanent=true"), ("DELETE", "/subjects/{s}/versions/1"),
         ("GET", "/config/{s}"), ("GET", "/config/{s}?defaultToGlobal=true"), ("GET", "/mode/{s}")]
# What a subject nobody registered answers on a route, when it is not 40401
MISSING_CODES = {"/config/{s}": 40408, "/config/{s}?defaultToGlobal=true": 40408, "/mode/{s}": 40409}
READS_WITH_BODY = [("POST", "/subjects/{s}"), ("POST", "/compatibility/subjects/{s}/versions/latest"),
                   ("POST", "/compatibility/subjects/{s}/versions")]
WRITES = [("POST", "/subjects/{s}/versions", schema("Outside")), ("PUT", "/config/{s}", {"compatibility": "NONE"}),
          ("PUT", "/mode/{s}", {"mode": "READONLY"}), ("DELETE", "/config/{s}", None), ("DELETE", "/mode/{s}", None)]


@pytest.mark.parametrize("real, missing", OUTSIDE)
def test_outside_subjects_read_as_missing(registry, real, missing):
    for method, path in READS:
        reply = _same_answer(registry, method, path, real, missing)
        code = MISSING_CODES.get(path, 40401)
        assert reply.status == 404 and reply.json()["error_code"] == code, (path, reply.body)
        if code == 40401:
            assert reply.json()["message"] == f"Subject '{real}' not found."
    # the codes are those of a subject that does not exist inside alice's own namespace
    for path in ("/config/{s}", "/mode/{s}"):
        inside = registry.http("GET", path.format(s="acme.never-value"), basic=ALICE)
        assert inside.json()["error_code"] == MISSING_CODES[path]
    for method, path in READS_WITH_BODY:
        reply = _same_answer(registry, method, path, real, missing, schema("Outside"))
        assert reply.json()["error_code"] == 40401


@pytest.mark.parametrize("real, missing", OUTSIDE)
def test_outside_subjects_refuse_writes_alike(registry, real, missing):
    for method, path, body in WRITES:
        reply = _same_answer(registry, method, path, real, missing, body)
        assert reply.status == 403 and reply.json()["error_code"] == 40301
    assert registry.http("GET", f"/subjects/{real}/versions").json() == [1]  # nothing changed (admin's view)
    assert registry.http("GET", f"/subjects/{missing}/versions").status == 404


def test_percent_encoded_and_dotted_paths_reach_no_other_subject(registry):
    for path in ("/subjects/globex%2Eevents-value/versions", "/subjects/globex%2eevents-value/versions",
                 "/subjects/acme.x/../globex.events-value/versions", "/subjects/acme.%2E%2E%2Fglobex.events-value/versions",
                 "/subjects/%61cme%2Eorders/../../subjects/globex.events-value/versions"):
        reply = registry.http("GET", path, basic=ALICE)
        assert reply.status == 404 and reply.json()["error_code"] in (40401, 404), (path, reply.body)
        assert b"Event" not in reply.body


def test_listings_show_only_the_tenants_own_subjects(registry):
    assert registry.http("GET", "/subjects", basic=ALICE).json() == ["acme.orders-value"]
    assert registry.http("GET", "/subjects?deleted=true", basic=ALICE).json() == ["acme.orders-value"]
    assert registry.http("GET", "/subjects?subjectPrefix=globex", basic=ALICE).json() == []
    assert registry.http("GET", "/subjects?subjectPrefix=globex%2E&deleted=true", basic=ALICE).json() == []
    assert registry.http("GET", "/subjects?deleted=true", basic=GINA).json() == ["globex.events-value",
                                                                                 "globex.old-value"]
    for query in ("", "?subjectPrefix=globex", "?deleted=true", "?subjectPrefix=acme", "?latestOnly=true"):
        found = registry.http("GET", f"/schemas{query}", basic=ALICE).json()
        assert {entry["subject"] for entry in found} <= {"acme.orders-value"}, query
    assert registry.http("GET", "/schemas?subjectPrefix=globex", basic=ALICE).json() == []


def test_schema_ids_of_another_tenant_are_missing(registry):
    theirs = registry.http("GET", "/subjects/globex.events-value/versions/1").json()["id"]
    old = registry.http("GET", "/subjects/globex.old-value/versions/1?deleted=true").json()["id"]
    mine = registry.http("GET", "/subjects/acme.orders-value/versions/1").json()["id"]
    missing = 1_000_000  # no schema has it
    assert registry.http("GET", f"/schemas/ids/{missing}").status == 404
    for ident in (theirs, old, missing):
        for suffix in ("", "/schema", "/subjects", "/versions", "?subject=globex.events-value"):
            reply = registry.http("GET", f"/schemas/ids/{ident}{suffix}", basic=ALICE)
            assert reply.status == 404, (ident, suffix)
            assert reply.json() == {"error_code": 40403, "message": f"Schema {ident} not found"}
    assert registry.http("GET", f"/schemas/ids/{mine}", basic=ALICE).status == 200
    assert registry.http("GET", f"/schemas/ids/{mine}", basic=GINA).status == 404


def test_references_to_another_tenants_subject_are_missing(registry):
    def with_ref(subject: str) -> dict:
        return {"schema": json.dumps({"type": "record", "name": "Wrap", "fields": [{"name": "e", "type": "Event"}]}),
                "references": [{"name": "Event", "subject": subject, "version": 1}]}

    for path in ("/subjects/acme.wrap-value/versions", "/subjects/acme.orders-value",
                 "/compatibility/subjects/acme.orders-value/versions"):
        a = registry.http("POST", path, with_ref("globex.events-value"), basic=ALICE)
        b = registry.http("POST", path, with_ref("globex.eventz-value"), basic=ALICE)
        assert (a.status, a.body.replace(b"events", b"eventz")) == (b.status, b.body), path
        assert a.status == 422 and a.json()["error_code"] == 42201
    assert registry.http("GET", "/subjects/acme.wrap-value/versions", basic=ALICE).status == 404


def test_an_equal_schema_gets_its_own_id_rather_than_another_tenants(registry):
    theirs = registry.http("GET", "/subjects/globex.events-value/versions/1").json()
    reply = registry.http("POST", "/subjects/acme.copy-value/versions", {"schema": theirs["schema"]}, basic=ALICE)
    assert reply.status == 200 and reply.json()["id"] != theirs["id"]
    again = registry.http("POST", "/subjects/acme.copy2-value/versions", {"schema": theirs["schema"]}, basic=ALICE)
    assert again.json()["id"] == reply.json()["id"]  # shared inside the tenant, as Confluent does
    assert registry.http("GET", f"/schemas/ids/{theirs['id']}", basic=ALICE).status == 404


def test_global_config_and_mode_need_cluster_acls(registry):
    for method, path, body in (("GET", "/config", None), ("PUT", "/config", {"compatibility": "NONE"}),
                               ("DELETE", "/config", None), ("GET", "/mode", None),
                               ("PUT", "/mode", {"mode": "READONLY"})):
        reply = registry.http(method, path, body, basic=ALICE)
        assert reply.status == 403 and reply.json()["error_code"] == 40301, (method, path)
    assert registry.http("GET", "/config").json()["compatibilityLevel"] == "BACKWARD"


def test_implicit_permissions_inside_the_namespace(registry):
    s = "acme.inside-value"
    assert registry.http("POST", f"/subjects/{s}/versions", schema("In"), basic=ALICE).status == 200
    assert registry.http("POST", f"/subjects/{s}/versions", schema("In", "more"), basic=ALICE).status == 200
    assert registry.http("PUT", f"/config/{s}", {"compatibility": "FULL"}, basic=ALICE).json() == {"compatibility": "FULL"}
    assert registry.http("GET", f"/config/{s}", basic=ALICE).json() == {"compatibilityLevel": "FULL"}
    assert registry.http("DELETE", f"/subjects/{s}/versions/2", basic=ALICE).json() == 2
    assert registry.http("GET", f"/subjects/{s}/versions", basic=GINA).status == 404
    assert registry.http("GET", "/subjects/acme.nothing-value/versions", basic=ALICE).json()["error_code"] == 40401


def test_import_mode_needs_the_cluster_even_inside_the_namespace(registry):
    """IMPORT picks ids in the id space every tenant shares (and tells whether one is taken)."""
    s = "acme.import-value"
    refused = registry.http("PUT", f"/mode/{s}", {"mode": "IMPORT"}, basic=ALICE)
    assert refused.status == 403 and refused.json()["error_code"] == 40301
    assert registry.http("PUT", f"/mode/{s}", {"mode": "READONLY"}, basic=ALICE).json() == {"mode": "READONLY"}
    assert registry.http("PUT", f"/mode/{s}", {"mode": "IMPORT"}).json() == {"mode": "IMPORT"}  # the super user


def test_until_the_tenants_are_known_only_super_users_are_served(broker, registry_factory):
    closed = registry_factory(broker, **{"admin.url": f"127.0.0.1:{free_port()}", "acl.refresh.ms": REFRESH_MS})
    reply = closed.http("GET", "/subjects", basic=ALICE)
    assert reply.status == 500 and reply.json()["error_code"] == 50003
    assert b"globex" not in reply.body
    assert closed.http("GET", "/subjects").status == 200  # the super user (admin certificate)
    assert "cannot fetch the tenants" in closed.log_text()


def test_a_failed_tenant_refresh_keeps_the_last_copy():
    """In process: a source that works once, then fails; the members stay confined."""
    state = {"fail": False}

    def tenants():
        if state["fail"]:
            raise ConnectionError("admin API down")
        return [Tenant("acme", frozenset({"User:alice"}))]

    async def run():
        config = RegistryConfig({"listeners": "http://127.0.0.1:8081", "listeners.allow.insecure": "true",
                                 "authentication.method": "NONE", "acl.refresh.ms": "50"})
        everything = [_allow_all("User:alice")]
        access = Access(config, lambda: everything, tenants)
        await access.start()
        alice = Session(Principal("User", "alice"), "127.0.0.1")
        assert access.allowed(alice, Action.WRITE, "acme.x-value")
        assert not access.allowed(alice, Action.READ, "globex.x-value") and access.outside_tenant(alice, "x")
        state["fail"] = True
        await access.refresher.refresh()
        assert not access.allowed(alice, Action.READ, "globex.x-value")
        assert access.allowed(alice, Action.READ, "acme.x-value")
        await access.close()

    asyncio.run(run())


def test_never_fetched_tenants_refuse_with_50003():
    def tenants():
        raise ConnectionError("admin API down")

    async def run():
        config = RegistryConfig({"listeners": "http://127.0.0.1:8081", "listeners.allow.insecure": "true",
                                 "authentication.method": "NONE", "super.users": "User:root"})
        access = Access(config, lambda: [_allow_all("User:alice")], tenants)
        await access.start()
        with pytest.raises(RegistryError) as info:
            access.allowed(Session(Principal("User", "alice"), "127.0.0.1"), Action.READ, "globex.x-value")
        assert info.value.error_code == 50003
        assert access.allowed(Session(Principal("User", "root"), "127.0.0.1"), Action.READ, "globex.x-value")
        await access.close()

    asyncio.run(run())


def _allow_all(principal: str):
    from keystream.auth.acl import AclBinding, Operation, PatternType, Permission  # noqa: PLC0415
    from keystream.auth.acl import ResourceType as R  # noqa: PLC0415

    return AclBinding(R.TOPIC, "*", PatternType.LITERAL, principal, "*", Operation.ALL, Permission.ALLOW)
