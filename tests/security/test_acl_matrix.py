"""The ACL decision matrix: each case's expected outcome is Apache Kafka's documented behaviour
(StandardAuthorizer / kafka-acls docs), checked through the real Authorizer over a real metadata
log with real Session and Principal objects.

ACLs are written as "ALLOW|DENY <principal> <host> <operation> <resource type> LITERAL|PREFIXED <name>".
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from keystream.auth.acl import AclBinding, Authorizer, Operation, PatternType, Permission, ResourceType
from keystream.auth.principal import Principal, Session
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import MetadataLog

T, G, C, X, D, U = (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER,
                    ResourceType.TRANSACTIONAL_ID, ResourceType.DELEGATION_TOKEN, ResourceType.USER)
Op = Operation
CLUSTER = "kafka-cluster"
HOST, OTHER_HOST = "10.0.0.1", "10.0.0.2"


def acl(text: str) -> AclBinding:
    perm, principal, host, op, rtype, pattern, name = text.split(" ")
    return AclBinding(ResourceType[rtype], name, PatternType[pattern], principal, host, Operation[op],
                      Permission[perm])


def session(principal: str = "User:alice", host: str = HOST, groups: tuple[str, ...] = ()) -> Session:
    return Session(Principal.parse(principal), host, groups=tuple(Principal.parse(g) for g in groups))


@pytest.fixture
def make_authorizer(tmp_path):
    managers = []

    def make(acls: list[str], **config) -> Authorizer:
        logs = LogManager([str(tmp_path / f"d{len(managers)}")], {})
        logs.load()
        managers.append(logs)
        meta = MetadataLog(logs)
        meta.open()
        authorizer = Authorizer({k.replace("_", "."): v for k, v in config.items()}, meta)
        authorizer.load()
        assert authorizer.create([acl(a) for a in acls]) == [None] * len(acls)
        return authorizer

    yield make
    for logs in managers:
        logs.close()


class Case(NamedTuple):
    id: str
    acls: list[str]
    op: Operation
    rtype: ResourceType
    name: str
    expected: bool
    who: str = "User:alice"
    host: str = HOST
    groups: tuple[str, ...] = ()
    config: dict = {}


ALICE_READ_FOO = ["ALLOW User:alice * READ TOPIC LITERAL foo"]
EVERYONE = {"allow_everyone_if_no_acl_found": True}

CASES = [
    # -- defaults and allow.everyone.if.no.acl.found
    Case("no-acl-denied-by-default", [], Op.READ, T, "foo", False),
    Case("no-acl-allow-everyone", [], Op.READ, T, "foo", True, config=EVERYONE),
    Case("allow-everyone-ignored-when-resource-has-acl-of-other-principal",
         ["ALLOW User:bob * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False, config=EVERYONE),
    Case("allow-everyone-applies-to-resource-without-acl",
         ["ALLOW User:bob * READ TOPIC LITERAL bar"], Op.READ, T, "foo", True, config=EVERYONE),
    Case("allow-everyone-prefixed-acl-counts-as-acl",
         ["ALLOW User:bob * READ TOPIC PREFIXED fo"], Op.READ, T, "foo", False, config=EVERYONE),
    Case("allow-everyone-wildcard-acl-counts-as-acl",
         ["DENY User:bob * READ TOPIC LITERAL *"], Op.READ, T, "foo", False, config=EVERYONE),
    Case("allow-everyone-other-resource-type-does-not-count",
         ["ALLOW User:bob * READ GROUP LITERAL foo"], Op.READ, T, "foo", True, config=EVERYONE),
    Case("allow-everyone-false-explicit", [], Op.WRITE, T, "foo", False,
         config={"allow_everyone_if_no_acl_found": False}),
    # -- literal allow and principal/operation mismatch
    Case("literal-allow", ALICE_READ_FOO, Op.READ, T, "foo", True),
    Case("literal-other-principal", ALICE_READ_FOO, Op.READ, T, "foo", False, who="User:bob"),
    Case("literal-other-operation", ALICE_READ_FOO, Op.WRITE, T, "foo", False),
    Case("literal-other-name", ALICE_READ_FOO, Op.READ, T, "foo2", False),
    Case("literal-is-not-a-prefix", ALICE_READ_FOO, Op.READ, T, "fo", False),
    Case("principal-case-sensitive", ["ALLOW User:Alice * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False),
    Case("principal-type-matters", ["ALLOW Group:alice * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False),
    Case("dn-principal", ["ALLOW User:CN=alice,O=acme * READ TOPIC LITERAL foo"], Op.READ, T, "foo", True,
         who="User:CN=alice,O=acme"),
    # -- operation implications
    Case("read-implies-describe", ALICE_READ_FOO, Op.DESCRIBE, T, "foo", True),
    Case("write-implies-describe", ["ALLOW User:alice * WRITE TOPIC LITERAL foo"], Op.DESCRIBE, T, "foo", True),
    Case("delete-implies-describe", ["ALLOW User:alice * DELETE TOPIC LITERAL foo"], Op.DESCRIBE, T, "foo", True),
    Case("alter-implies-describe", ["ALLOW User:alice * ALTER TOPIC LITERAL foo"], Op.DESCRIBE, T, "foo", True),
    Case("create-does-not-imply-describe", ["ALLOW User:alice * CREATE TOPIC LITERAL foo"],
         Op.DESCRIBE, T, "foo", False),
    Case("alter-configs-implies-describe-configs", ["ALLOW User:alice * ALTER_CONFIGS TOPIC LITERAL foo"],
         Op.DESCRIBE_CONFIGS, T, "foo", True),
    Case("alter-configs-does-not-imply-describe", ["ALLOW User:alice * ALTER_CONFIGS TOPIC LITERAL foo"],
         Op.DESCRIBE, T, "foo", False),
    Case("describe-configs-does-not-imply-alter-configs",
         ["ALLOW User:alice * DESCRIBE_CONFIGS TOPIC LITERAL foo"], Op.ALTER_CONFIGS, T, "foo", False),
    Case("describe-does-not-imply-read", ["ALLOW User:alice * DESCRIBE TOPIC LITERAL foo"], Op.READ, T, "foo", False),
    Case("read-does-not-imply-describe-configs", ALICE_READ_FOO, Op.DESCRIBE_CONFIGS, T, "foo", False),
    Case("alter-does-not-imply-alter-configs", ["ALLOW User:alice * ALTER TOPIC LITERAL foo"],
         Op.ALTER_CONFIGS, T, "foo", False),
    Case("all-allows-write", ["ALLOW User:alice * ALL TOPIC LITERAL foo"], Op.WRITE, T, "foo", True),
    Case("all-allows-alter-configs", ["ALLOW User:alice * ALL TOPIC LITERAL foo"], Op.ALTER_CONFIGS, T, "foo", True),
    Case("all-allows-describe", ["ALLOW User:alice * ALL TOPIC LITERAL foo"], Op.DESCRIBE, T, "foo", True),
    # -- deny wins
    Case("deny-beats-allow-same", ["ALLOW User:alice * READ TOPIC LITERAL foo", "DENY User:alice * READ TOPIC LITERAL foo"],
         Op.READ, T, "foo", False),
    Case("deny-read-allow-all-read", ["ALLOW User:alice * ALL TOPIC LITERAL foo", "DENY User:alice * READ TOPIC LITERAL foo"],
         Op.READ, T, "foo", False),
    Case("deny-read-allow-all-write", ["ALLOW User:alice * ALL TOPIC LITERAL foo", "DENY User:alice * READ TOPIC LITERAL foo"],
         Op.WRITE, T, "foo", True),
    Case("deny-read-does-not-deny-describe", ["ALLOW User:alice * DESCRIBE TOPIC LITERAL foo",
                                             "DENY User:alice * READ TOPIC LITERAL foo"], Op.DESCRIBE, T, "foo", True),
    Case("deny-describe-does-not-deny-read", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                             "DENY User:alice * DESCRIBE TOPIC LITERAL foo"], Op.READ, T, "foo", True),
    Case("deny-describe-beats-implied-describe", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                                 "DENY User:alice * DESCRIBE TOPIC LITERAL foo"],
         Op.DESCRIBE, T, "foo", False),
    Case("deny-all-beats-allow", ["ALLOW User:alice * READ TOPIC LITERAL foo", "DENY User:alice * ALL TOPIC LITERAL foo"],
         Op.READ, T, "foo", False),
    Case("deny-prefix-beats-literal-allow", ["ALLOW User:alice * READ TOPIC LITERAL fin.pay",
                                            "DENY User:alice * READ TOPIC PREFIXED fin."], Op.READ, T, "fin.pay", False),
    Case("deny-wildcard-beats-literal-allow", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                              "DENY User:alice * READ TOPIC LITERAL *"], Op.READ, T, "foo", False),
    Case("deny-literal-inside-allowed-prefix", ["ALLOW User:alice * READ TOPIC PREFIXED fin.",
                                               "DENY User:alice * READ TOPIC LITERAL fin.secret"],
         Op.READ, T, "fin.secret", False),
    Case("allowed-prefix-beside-denied-literal", ["ALLOW User:alice * READ TOPIC PREFIXED fin.",
                                                 "DENY User:alice * READ TOPIC LITERAL fin.secret"],
         Op.READ, T, "fin.open", True),
    Case("deny-for-other-principal-irrelevant", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                                "DENY User:bob * READ TOPIC LITERAL foo"], Op.READ, T, "foo", True),
    # -- patterns
    Case("prefixed-allow-match", ["ALLOW User:alice * READ TOPIC PREFIXED fin."], Op.READ, T, "fin.payments", True),
    Case("prefixed-allow-exact-prefix", ["ALLOW User:alice * READ TOPIC PREFIXED fin."], Op.READ, T, "fin.", True),
    Case("prefixed-allow-no-match", ["ALLOW User:alice * READ TOPIC PREFIXED fin."], Op.READ, T, "finance", False),
    Case("prefixed-longer-than-name", ["ALLOW User:alice * READ TOPIC PREFIXED foobar"], Op.READ, T, "foo", False),
    Case("prefixed-star-is-not-wildcard", ["ALLOW User:alice * READ TOPIC PREFIXED *"], Op.READ, T, "foo", False),
    Case("literal-wildcard-matches-any-topic", ["ALLOW User:alice * READ TOPIC LITERAL *"], Op.READ, T, "any.thing", True),
    Case("literal-glob-is-not-wildcard", ["ALLOW User:alice * READ TOPIC LITERAL fin.*"], Op.READ, T, "fin.x", False),
    Case("resource-type-isolation", ["ALLOW User:alice * READ TOPIC LITERAL foo"], Op.READ, G, "foo", False),
    Case("wildcard-type-isolation", ["ALLOW User:alice * ALL TOPIC LITERAL *"], Op.READ, G, "g1", False),
    # -- wildcard principal and groups
    Case("wildcard-principal-allows-anyone", ["ALLOW User:* * READ TOPIC LITERAL foo"], Op.READ, T, "foo", True,
         who="User:bob"),
    Case("wildcard-principal-allows-anonymous", ["ALLOW User:* * READ TOPIC LITERAL foo"], Op.READ, T, "foo", True,
         who="User:ANONYMOUS"),
    Case("wildcard-principal-deny-beats-own-allow", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                                    "DENY User:* * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False),
    Case("group-principal-allow", ["ALLOW Group:devs * READ TOPIC LITERAL foo"], Op.READ, T, "foo", True,
         groups=("Group:devs",)),
    Case("group-principal-not-member", ["ALLOW Group:devs * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False,
         groups=("Group:ops",)),
    Case("group-principal-deny-beats-user-allow", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                                  "DENY Group:contractors * READ TOPIC LITERAL foo"],
         Op.READ, T, "foo", False, groups=("Group:contractors",)),
    # -- hosts
    Case("host-exact-allow", ["ALLOW User:alice 10.0.0.1 READ TOPIC LITERAL foo"], Op.READ, T, "foo", True),
    Case("host-exact-other-host", ["ALLOW User:alice 10.0.0.1 READ TOPIC LITERAL foo"], Op.READ, T, "foo", False,
         host=OTHER_HOST),
    Case("host-deny-one-host", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                               "DENY User:alice 10.0.0.2 READ TOPIC LITERAL foo"], Op.READ, T, "foo", False,
         host=OTHER_HOST),
    Case("host-deny-other-host-irrelevant", ["ALLOW User:alice * READ TOPIC LITERAL foo",
                                            "DENY User:alice 10.0.0.2 READ TOPIC LITERAL foo"], Op.READ, T, "foo", True),
    Case("host-wildcard-deny-beats-host-allow", ["ALLOW User:alice 10.0.0.1 READ TOPIC LITERAL foo",
                                                "DENY User:alice * READ TOPIC LITERAL foo"], Op.READ, T, "foo", False),
    Case("wildcard-principal-and-host", ["ALLOW User:* * WRITE TOPIC LITERAL *"], Op.WRITE, T, "x", True,
         who="User:eve", host="192.168.1.9"),
    # -- super users
    Case("super-user-no-acl", [], Op.ALTER, C, CLUSTER, True, who="User:admin", config={"super_users": "User:admin"}),
    Case("super-user-beats-deny", ["DENY User:* * ALL TOPIC LITERAL *"], Op.READ, T, "foo", True, who="User:admin",
         config={"super_users": "User:admin"}),
    Case("super-users-list", [], Op.WRITE, T, "foo", True, who="User:b", config={"super_users": "User:a;User:b"}),
    Case("super-users-list-spaces", [], Op.WRITE, T, "foo", True, who="User:b", config={"super_users": "User:a; User:b "}),
    Case("not-a-super-user", [], Op.WRITE, T, "foo", False, who="User:c", config={"super_users": "User:a;User:b"}),
    Case("super-user-type-matters", [], Op.WRITE, T, "foo", False, who="Group:admin", config={"super_users": "User:admin"}),
    # -- groups (consumer groups)
    Case("group-read", ["ALLOW User:alice * READ GROUP LITERAL g1"], Op.READ, G, "g1", True),
    Case("group-read-implies-describe", ["ALLOW User:alice * READ GROUP LITERAL g1"], Op.DESCRIBE, G, "g1", True),
    Case("group-read-not-delete", ["ALLOW User:alice * READ GROUP LITERAL g1"], Op.DELETE, G, "g1", False),
    Case("group-prefixed", ["ALLOW User:alice * READ GROUP PREFIXED app-"], Op.READ, G, "app-orders", True),
    # -- cluster
    Case("cluster-action", ["ALLOW User:broker * CLUSTER_ACTION CLUSTER LITERAL kafka-cluster"],
         Op.CLUSTER_ACTION, C, CLUSTER, True, who="User:broker"),
    Case("cluster-alter-implies-describe", ["ALLOW User:alice * ALTER CLUSTER LITERAL kafka-cluster"],
         Op.DESCRIBE, C, CLUSTER, True),
    Case("cluster-alter-not-alter-configs", ["ALLOW User:alice * ALTER CLUSTER LITERAL kafka-cluster"],
         Op.ALTER_CONFIGS, C, CLUSTER, False),
    Case("cluster-idempotent-write", ["ALLOW User:alice * IDEMPOTENT_WRITE CLUSTER LITERAL kafka-cluster"],
         Op.IDEMPOTENT_WRITE, C, CLUSTER, True),
    Case("cluster-create", ["ALLOW User:alice * CREATE CLUSTER LITERAL kafka-cluster"], Op.CREATE, C, CLUSTER, True),
    Case("cluster-describe-not-alter", ["ALLOW User:alice * DESCRIBE CLUSTER LITERAL kafka-cluster"],
         Op.ALTER, C, CLUSTER, False),
    # -- transactional ids, delegation tokens, users
    Case("txn-write", ["ALLOW User:alice * WRITE TRANSACTIONAL_ID LITERAL tx-1"], Op.WRITE, X, "tx-1", True),
    Case("txn-write-implies-describe", ["ALLOW User:alice * WRITE TRANSACTIONAL_ID LITERAL tx-1"],
         Op.DESCRIBE, X, "tx-1", True),
    Case("txn-prefixed-describe-not-write", ["ALLOW User:alice * DESCRIBE TRANSACTIONAL_ID PREFIXED tx-"],
         Op.WRITE, X, "tx-9", False),
    Case("delegation-token-describe", ["ALLOW User:alice * DESCRIBE DELEGATION_TOKEN LITERAL tok1"],
         Op.DESCRIBE, D, "tok1", True),
    Case("user-create-tokens", ["ALLOW User:alice * CREATE_TOKENS USER LITERAL User:bob"],
         Op.CREATE_TOKENS, U, "User:bob", True),
    Case("user-create-not-describe-tokens", ["ALLOW User:alice * CREATE_TOKENS USER LITERAL User:bob"],
         Op.DESCRIBE_TOKENS, U, "User:bob", False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_authorize(make_authorizer, case: Case):
    authorizer = make_authorizer(case.acls, **case.config)
    s = session(case.who, case.host, case.groups)
    assert authorizer.authorize(s, case.op, case.rtype, case.name) is case.expected


def test_matrix_is_large_enough():
    assert len(CASES) >= 60
    assert {c.rtype for c in CASES} == {T, G, C, X, D, U}


def bits(*ops: Operation) -> int:
    return sum(1 << op for op in ops)


TOPIC_OPS = (Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS)
BITFIELD_CASES = [
    ("read", ALICE_READ_FOO, {}, T, "foo", bits(Op.READ, Op.DESCRIBE)),
    ("all", ["ALLOW User:alice * ALL TOPIC LITERAL foo"], {}, T, "foo", bits(*TOPIC_OPS)),
    ("all-minus-denied-write", ["ALLOW User:alice * ALL TOPIC LITERAL foo", "DENY User:alice * WRITE TOPIC LITERAL foo"],
     {}, T, "foo", bits(*TOPIC_OPS) & ~bits(Op.WRITE)),
    ("alter-configs", ["ALLOW User:alice * ALTER_CONFIGS TOPIC LITERAL foo"], {}, T, "foo",
     bits(Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS)),
    ("super-user-cluster", [], {"super_users": "User:alice"}, C, CLUSTER,
     bits(Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE, Op.ALTER, Op.DESCRIBE)),
    ("none", [], {}, G, "g1", 0),
    ("group-read", ["ALLOW User:alice * READ GROUP LITERAL g1"], {}, G, "g1", bits(Op.READ, Op.DESCRIBE)),
    ("everyone-no-acl-txn", [], EVERYONE, X, "t", bits(Op.DESCRIBE, Op.WRITE)),
]


@pytest.mark.parametrize("case", BITFIELD_CASES, ids=[c[0] for c in BITFIELD_CASES])
def test_authorized_operations(make_authorizer, case):
    _, acls, config, rtype, name, expected = case
    authorizer = make_authorizer(acls, **config)
    assert authorizer.authorized_operations(session(), rtype, name) == expected


BY_TYPE_CASES = [
    ("no-acl", [], {}, Op.WRITE, False),
    ("no-acl-allow-everyone", [], EVERYONE, Op.WRITE, True),
    ("super-user", ["DENY User:* * ALL TOPIC LITERAL *"], {"super_users": "User:alice"}, Op.WRITE, True),
    ("literal-allow", ["ALLOW User:alice * WRITE TOPIC LITERAL foo"], {}, Op.WRITE, True),
    ("literal-allow-other-principal", ["ALLOW User:bob * WRITE TOPIC LITERAL foo"], {}, Op.WRITE, False),
    ("literal-allow-other-host", ["ALLOW User:alice 10.9.9.9 WRITE TOPIC LITERAL foo"], {}, Op.WRITE, False),
    ("literal-allow-and-deny-same", ["ALLOW User:alice * WRITE TOPIC LITERAL foo",
                                     "DENY User:alice * WRITE TOPIC LITERAL foo"], {}, Op.WRITE, False),
    ("literal-allow-deny-other-literal", ["ALLOW User:alice * WRITE TOPIC LITERAL a",
                                          "DENY User:alice * WRITE TOPIC LITERAL b"], {}, Op.WRITE, True),
    ("prefix-allow-shorter-prefix-deny", ["ALLOW User:alice * WRITE TOPIC PREFIXED fin.",
                                          "DENY User:alice * WRITE TOPIC PREFIXED fi"], {}, Op.WRITE, False),
    ("prefix-allow-longer-prefix-deny", ["ALLOW User:alice * WRITE TOPIC PREFIXED fin.",
                                         "DENY User:alice * WRITE TOPIC PREFIXED fin.x"], {}, Op.WRITE, True),
    ("literal-allow-prefix-deny", ["ALLOW User:alice * WRITE TOPIC LITERAL fin.x",
                                   "DENY User:alice * WRITE TOPIC PREFIXED fin."], {}, Op.WRITE, False),
    ("wildcard-deny", ["ALLOW User:alice * WRITE TOPIC PREFIXED a", "DENY User:alice * WRITE TOPIC LITERAL *"],
     {}, Op.WRITE, False),
    ("wildcard-allow", ["ALLOW User:alice * WRITE TOPIC LITERAL *"], {}, Op.WRITE, True),
    ("no-implication", ["ALLOW User:alice * READ TOPIC LITERAL foo"], {}, Op.DESCRIBE, False),
    ("all-counts", ["ALLOW User:alice * ALL TOPIC LITERAL foo"], {}, Op.WRITE, True),
    ("other-type-ignored", ["ALLOW User:alice * WRITE GROUP LITERAL foo"], {}, Op.WRITE, False),
    ("wildcard-principal", ["ALLOW User:* * WRITE TOPIC PREFIXED x"], {}, Op.WRITE, True),
]


@pytest.mark.parametrize("case", BY_TYPE_CASES, ids=[c[0] for c in BY_TYPE_CASES])
def test_authorize_by_resource_type(make_authorizer, case):
    _, acls, config, op, expected = case
    authorizer = make_authorizer(acls, **config)
    assert authorizer.authorize_by_resource_type(session(), op, T) is expected


def test_changes_apply_to_the_next_check(make_authorizer):
    from keystream.auth.acl import AclBindingFilter

    authorizer = make_authorizer([])
    s = session()
    assert not authorizer.authorize(s, Op.READ, T, "foo")
    authorizer.create([acl("ALLOW User:alice * READ TOPIC LITERAL foo")])
    assert authorizer.authorize(s, Op.READ, T, "foo")
    authorizer.create([acl("DENY User:alice * READ TOPIC PREFIXED f")])
    assert not authorizer.authorize(s, Op.READ, T, "foo")
    authorizer.delete([AclBindingFilter(permission=Permission.DENY)])
    assert authorizer.authorize(s, Op.READ, T, "foo")
