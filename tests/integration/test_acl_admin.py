"""The ACL lifecycle through the standard Admin API: confluent-kafka's AdminClient, kafka-python's
KafkaAdminClient, and `keystream acl add|list|remove`, against a real broker (PLAINTEXT, where the
client is User:ANONYMOUS, a super user in the fixture's default config)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType

from tests.fixtures.wire import unique_name
from tests.integration.test_cli import ks, ok

TIMEOUT = 30


def key(b) -> tuple:
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


@pytest.fixture(scope="module")
def admin(shared_broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": shared_broker.bootstrap})


def test_confluent_kafka_lifecycle(admin):
    p = unique_name("svc")
    principal = f"User:{p}"
    literal = AclBinding(ResourceType.TOPIC, f"{p}.orders", ResourcePatternType.LITERAL, principal, "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    prefixed = AclBinding(ResourceType.TOPIC, f"{p}.", ResourcePatternType.PREFIXED, principal, "10.0.0.1",
                          AclOperation.WRITE, AclPermissionType.DENY)
    group = AclBinding(ResourceType.GROUP, f"{p}-app", ResourcePatternType.LITERAL, principal, "*",
                       AclOperation.READ, AclPermissionType.ALLOW)
    cluster = AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, principal, "*",
                         AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW)
    for f in admin.create_acls([literal, prefixed, group, cluster], request_timeout=TIMEOUT).values():
        assert f.result() is None

    def describe(**kw):
        base = dict(restype=ResourceType.ANY, name=None, resource_pattern_type=ResourcePatternType.ANY,
                    principal=principal, host=None, operation=AclOperation.ANY, permission_type=AclPermissionType.ANY)
        return {key(b) for b in admin.describe_acls(AclBindingFilter(**{**base, **kw}),
                                                    request_timeout=TIMEOUT).result()}

    assert describe() == {key(literal), key(prefixed), key(group), key(cluster)}
    assert describe(restype=ResourceType.TOPIC) == {key(literal), key(prefixed)}
    assert describe(restype=ResourceType.TOPIC, name=f"{p}.orders",
                    resource_pattern_type=ResourcePatternType.MATCH) == {key(literal), key(prefixed)}
    assert describe(resource_pattern_type=ResourcePatternType.PREFIXED) == {key(prefixed)}
    assert describe(resource_pattern_type=ResourcePatternType.LITERAL, restype=ResourceType.GROUP) == {key(group)}
    assert describe(permission_type=AclPermissionType.DENY) == {key(prefixed)}
    assert describe(host="10.0.0.1") == {key(prefixed)}
    assert describe(operation=AclOperation.IDEMPOTENT_WRITE) == {key(cluster)}

    deny_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                                   AclOperation.ANY, AclPermissionType.DENY)
    topic_filter = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, principal, None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    results = admin.delete_acls([deny_filter, topic_filter], request_timeout=TIMEOUT)
    assert {key(b) for b in results[deny_filter].result()} == {key(prefixed)}
    assert {key(b) for b in results[topic_filter].result()} == {key(literal), key(prefixed)}
    assert describe() == {key(group), key(cluster)}


def test_confluent_kafka_rejects_bad_binding(admin):
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:x", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    (future,) = admin.create_acls([bad], request_timeout=TIMEOUT).values()
    with pytest.raises(Exception, match="kafka-cluster"):
        future.result()


def test_kafka_python_lifecycle(shared_broker):
    client = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=TIMEOUT * 1000)
    try:
        p = unique_name("kp")
        principal = f"User:{p}"
        read = ACL(principal, "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                   ResourcePattern(KpResourceType.TOPIC, f"{p}-t"))
        pref = ACL(principal, "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW,
                   ResourcePattern(KpResourceType.TOPIC, p, ACLResourcePatternType.PREFIXED))
        result = client.create_acls([read, pref])
        assert len(result["succeeded"]) == 2 and not result["failed"]

        acls, error = client.describe_acls(ACLFilter(principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                     ResourcePatternFilter(KpResourceType.ANY, None,
                                                                           ACLResourcePatternType.ANY)))
        assert error.errno == 0
        assert {(a.resource_pattern.resource_name, a.operation) for a in acls} == {
            (f"{p}-t", ACLOperation.READ), (p, ACLOperation.DESCRIBE)}
        acls, _ = client.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                 ResourcePatternFilter(KpResourceType.TOPIC, f"{p}-t",
                                                                       ACLResourcePatternType.MATCH)))
        assert {(a.resource_pattern.resource_name, a.principal) for a in acls} == {(f"{p}-t", principal),
                                                                                   (p, principal)}
        ((_, deleted, error),) = client.delete_acls([ACLFilter(principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                               ResourcePatternFilter(KpResourceType.ANY, None,
                                                                                     ACLResourcePatternType.ANY))])
        assert error.errno == 0
        assert {a.resource_pattern.resource_name for a in deleted} == {f"{p}-t", p}
    finally:
        client.close()


def test_cli_add_list_remove(shared_broker):
    bs = ["--bootstrap-server", shared_broker.bootstrap]
    p = unique_name("cli")
    principal = f"User:{p}"
    out = ok(ks("acl", "add", "--allow-principal", principal, "--operation", "Read", "--operation", "describe",
                "--topic", f"{p}-t", "--group", f"{p}-g", *bs))
    assert "Adding ACLs" in out
    ok(ks("acl", "add", "--deny-principal", principal, "--deny-host", "10.1.1.1", "--operation", "Write",
          "--topic", f"{p}-", "--resource-pattern-type", "prefixed", *bs))
    ok(ks("acl", "add", "--allow-principal", principal, "--producer", "--topic", f"{p}-out", "--idempotent",
          "--transactional-id", f"{p}-tx", *bs))

    listed = ok(ks("acl", "list", "--principal", principal, *bs))
    assert f"ResourcePattern(resourceType=TOPIC, name={p}-t, patternType=LITERAL)" in listed
    assert f"ResourcePattern(resourceType=GROUP, name={p}-g, patternType=LITERAL)" in listed
    assert f"ResourcePattern(resourceType=TOPIC, name={p}-, patternType=PREFIXED)" in listed
    assert f"(principal={principal}, host=10.1.1.1, operation=WRITE, permissionType=DENY)" in listed
    assert f"ResourcePattern(resourceType=TRANSACTIONAL_ID, name={p}-tx, patternType=LITERAL)" in listed
    assert "operation=IDEMPOTENT_WRITE" in listed
    assert listed.count(f"principal={principal}") == 2 * 2 + 1 + 3 + 2 + 1

    matched = ok(ks("acl", "list", "--topic", f"{p}-t", "--resource-pattern-type", "match", *bs))
    assert f"name={p}-t, patternType=LITERAL" in matched and f"name={p}-, patternType=PREFIXED" in matched
    assert f"name={p}-g" not in matched
    literal = ok(ks("acl", "list", "--topic", f"{p}-t", *bs))  # kafka-acls' default: literal
    assert f"name={p}-t, patternType=LITERAL" in literal and "PREFIXED" not in literal

    removed = ok(ks("acl", "remove", "--topic", f"{p}-t", "--force", *bs))
    assert "Removed 2 ACL(s)" in removed
    removed = ok(ks("acl", "remove", "--allow-principal", principal, "--operation", "Read", "--group", f"{p}-g",
                    "--force", *bs))
    assert "Removed 1 ACL(s)" in removed
    listed = ok(ks("acl", "list", "--principal", principal, *bs))
    assert f"name={p}-t," not in listed and f"name={p}-out," in listed
    group_acls = listed.split(f"name={p}-g,")[1].split("Current ACLs")[0]
    assert "operation=DESCRIBE" in group_acls and "operation=READ" not in group_acls


def test_cli_usage_errors(shared_broker):
    bs = ["--bootstrap-server", shared_broker.bootstrap]
    proc = ks("acl", "add", "--allow-principal", "User:x", "--operation", "Fly", "--topic", "t", *bs)
    assert proc.returncode == 2 and b"unknown operation" in proc.stderr
    proc = ks("acl", "add", "--allow-principal", "User:x", "--operation", "IdempotentWrite", "--topic", "t", *bs)
    assert proc.returncode == 2 and b"only supports" in proc.stderr
    proc = ks("acl", "add", "--operation", "Read", "--topic", "t", *bs)
    assert proc.returncode == 2
    proc = ks("acl", "add", "--allow-principal", "nocolon", "--topic", "t", *bs)
    assert proc.returncode == 1 and b"INVALID_REQUEST" in proc.stderr


def test_cli_non_super_user_is_refused(broker_factory):
    broker = broker_factory(**{"super.users": "User:admin"})
    proc = ks("acl", "add", "--allow-principal", "User:x", "--topic", "t", "--bootstrap-server", broker.bootstrap)
    assert proc.returncode == 1 and b"CLUSTER_AUTHORIZATION_FAILED" in proc.stderr
    # librdkafka (2.16) drops DescribeAcls' top-level error code, so check the answer with kafka-python
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT * 1000)
    try:
        with pytest.raises(Exception, match="ClusterAuthorizationFailed"):
            client.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                           ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY)))
    finally:
        client.close()
