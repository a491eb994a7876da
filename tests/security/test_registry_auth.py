"""The registry's REST API behind the broker's own users and ACLs: a real SASL_SSL broker with SCRAM
users, and a real registry process checking Basic passwords by SCRAM logins to it, client certificates
by the broker's mapping, and every request against the broker's Kafka ACLs (topic of a subject)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from tests.fixtures.clients import admin
from tests.fixtures.sasl import scram_user
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only

DELAY_MS = 700
REFRESH_MS = 500


def schema(name: str, *extra: str) -> dict:
    """A record schema; `extra` adds fields with defaults (a backward compatible new version)."""
    fields = [{"name": "id", "type": "long"}, *({"name": f, "type": "int", "default": 0} for f in extra)]
    return {"schema": json.dumps({"type": "record", "name": name, "fields": fields})}


def _binding(principal: str, topic: str, op=AclOperation.WRITE) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*", op,
                      AclPermissionType.ALLOW)


def grant(broker, principal: str, topic: str) -> None:
    client = admin(broker)
    for future in client.create_acls([_binding(principal, topic)], request_timeout=30).values():
        assert future.result() is None


def revoke(broker, principal: str, topic: str) -> None:
    f = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*",
                         AclOperation.WRITE, AclPermissionType.ALLOW)
    client = admin(broker)
    for future in client.delete_acls([f], request_timeout=30).values():
        assert future.result()


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = module_broker_factory(tls=True, sasl="SCRAM-SHA-512")
    for user in ("alice", "bob", "dave"):
        scram_user(b, user, f"{user}-secret", "SCRAM-SHA-512")
    grant(b, "User:alice", "orders")
    return b


@pytest.fixture(scope="module")
def registry(broker, registry_factory):
    r = registry_factory(broker, **{"basic.auth.failure.delay.ms": DELAY_MS, "acl.refresh.ms": REFRESH_MS})
    for subject, name in (("orders-value", "Order"), ("payments-value", "Payment")):
        reply = r.http("POST", f"/subjects/{subject}/versions", schema(name))  # the admin certificate
        assert reply.status == 200, reply.body
    return r


def test_no_credentials_is_401_with_a_challenge(registry):
    reply = registry.http("GET", "/subjects", certificate=False)
    assert reply.status == 401
    assert reply.json() == {"error_code": 401, "message": "Unauthorized"}
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="SchemaRegistry"'


@pytest.mark.parametrize("who", ["alice:wrong-password", "nobody:nobody-secret", "alice:", ":x-secret", "alice"])
def test_bad_credentials_are_401_after_the_delay_and_not_logged(registry, who):
    started = time.monotonic()
    reply = registry.http("GET", "/subjects", basic=who)
    elapsed = time.monotonic() - started
    assert reply.status == 401 and reply.json() == {"error_code": 401, "message": "Unauthorized"}
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="SchemaRegistry"'
    assert elapsed >= DELAY_MS / 1000 * 0.95
    secret = who.partition(":")[2]
    if secret:
        assert secret not in registry.log_text()


def test_a_user_without_acls_sees_and_registers_nothing(registry):
    assert registry.http("GET", "/subjects").json() == ["orders-value", "payments-value"]  # the admin sees all
    assert registry.http("GET", "/subjects", basic="bob:bob-secret").json() == []
    reply = registry.http("POST", "/subjects/orders-value/versions", schema("Order"), basic="bob:bob-secret")
    assert reply.status == 403 and reply.json()["error_code"] == 40301


def test_write_on_a_topic_registers_its_subjects_only(registry):
    alice = "alice:alice-secret"
    reply = registry.http("POST", "/subjects/orders-value/versions", schema("Order", "qty"), basic=alice)
    assert reply.status == 200, reply.body
    assert registry.http("GET", "/subjects", basic=alice).json() == ["orders-value"]
    reply = registry.http("POST", "/subjects/payments-value/versions", schema("Payment", "fee"), basic=alice)
    assert reply.status == 403 and reply.json()["error_code"] == 40301


def test_schema_ids_of_other_teams_are_not_found(registry):
    theirs = registry.http("GET", "/subjects/payments-value/versions/1").json()["id"]
    mine = registry.http("GET", "/subjects/orders-value/versions/1").json()["id"]
    alice = "alice:alice-secret"
    reply = registry.http("GET", f"/schemas/ids/{theirs}", basic=alice)
    assert reply.status == 404 and reply.json()["error_code"] == 40403
    assert registry.http("GET", f"/schemas/ids/{mine}", basic=alice).status == 200


def test_a_client_certificate_is_a_principal(broker, registry):
    carol = broker.tls.client("carol")  # User:CN=carol, as the broker maps it
    grant(broker, "User:CN=carol", "labs")
    reply = wait_for(lambda: (r := registry.http("POST", "/subjects/labs-value/versions", schema("Lab"),
                                                 identity=carol)).status == 200 and r, 10,
                     message="certificate principal allowed to register")
    assert "id" in reply.json()
    erin = broker.tls.client("erin")
    reply = registry.http("POST", "/subjects/labs-value/versions", schema("Lab"), identity=erin)
    assert reply.status == 403 and reply.json()["error_code"] == 40301


def test_grants_apply_soon_and_revocations_within_the_refresh_interval(broker, registry):
    dave = "dave:dave-secret"
    assert registry.http("POST", "/subjects/inventory-value/versions", schema("Item"), basic=dave).status == 403
    grant(broker, "User:dave", "inventory")
    wait_for(lambda: registry.http("POST", "/subjects/inventory-value/versions", schema("Item"),
                                   basic=dave).status == 200, 5, message="the grant to take effect")
    revoke(broker, "User:dave", "inventory")
    revoked = time.monotonic()
    wait_for(lambda: registry.http("GET", "/subjects/inventory-value/versions", basic=dave).status in (403, 404),
             5, message="the revocation to take effect")
    assert time.monotonic() - revoked <= REFRESH_MS / 1000 + 1.0
    reply = registry.http("POST", "/subjects/inventory-value/versions", schema("Item"), basic=dave)
    assert reply.status == 403


def test_passwords_never_reach_the_logs(registry, broker):
    for secret in ("alice-secret", "bob-secret", "dave-secret"):
        assert secret not in registry.log_text()
