"""The tenant model and store (auth/tenants.py) and the Authorizer's tenant rule, with real AclBindings.

The store runs on a real metadata log in a temporary directory; the rule is asked of a real
Authorizer over the same log. Tenants: `acme` (User:alice, Group:acme-devs; admin User:ann) and
`globex` (User:gina). `User:admin` is the only super user.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from keystream.auth.acl import (
    ANY_FILTER,
    AclBinding,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from keystream.auth.acl.authorizer import TENANT_IMPLICIT, tenant_acl_scope
from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import (
    KEY_PREFIX,
    InvalidTenant,
    Tenant,
    TenantConflict,
    TenantExists,
    TenantNotFound,
    TenantStore,
)
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import MetadataLog

Op, R, P = Operation, ResourceType, PatternType
CLUSTER = "kafka-cluster"


def session(principal: str, *groups: str, host: str = "10.0.0.1") -> Session:
    return Session(Principal.parse(principal), host, groups=tuple(Principal.parse(g) for g in groups))


ALICE, ANN, GINA, BOB = session("User:alice"), session("User:ann"), session("User:gina"), session("User:bob")
DEV = session("User:dora", "Group:acme-devs")  # in acme through an LDAP / static group only
ADMIN = session("User:admin")

ACME = Tenant("acme", frozenset({"User:alice", "Group:acme-devs"}), frozenset({"User:ann"}),
              {"producer_byte_rate": 10_000_000}, max_partitions=200, max_storage_bytes=50 << 30)
GLOBEX = Tenant("globex", frozenset({"User:gina"}))


def acl(principal: str, op: Operation, rtype: ResourceType, name: str, pattern: PatternType = P.LITERAL,
        permission: Permission = Permission.ALLOW, host: str = "*") -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, permission)


class World:
    """A metadata log, a TenantStore and an Authorizer over it, as the Broker wires them."""

    def __init__(self, tmp_path, **config):
        self.path = tmp_path / "data"
        self.manager = LogManager([str(self.path)], {})
        self.manager.load()
        self.meta = MetadataLog(self.manager)
        self.tenants = TenantStore(self.meta)
        self.tenants.load()
        self.authorizer = Authorizer({"super.users": "User:admin", **config}, self.meta, self.tenants)
        self.authorizer.load()

    def acls(self, *bindings: AclBinding) -> None:
        assert self.authorizer.create(list(bindings)) == [None] * len(bindings)

    def allowed(self, who: Session, op: Operation, rtype: ResourceType, name: str) -> bool:
        return self.authorizer.authorize(who, op, rtype, name)

    def close(self) -> None:
        self.meta.close()
        self.manager.close()


@pytest.fixture
def world(tmp_path):
    made = []

    def make(**config) -> World:
        w = World(tmp_path, **config)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def two(world):
    w = world()
    w.tenants.put(ACME)
    w.tenants.put(GLOBEX)
    return w


# ---------------------------------------------------------------------------- the model

def test_tenant_normalises_admins_into_members_and_has_a_dotted_prefix():
    assert ACME.prefix == "acme."
    assert ACME.members == {"User:alice", "Group:acme-devs", "User:ann"}
    assert ACME.admins == {"User:ann"}
    assert dict(ACME.quotas) == {"producer_byte_rate": 10_000_000.0}
    with pytest.raises(TypeError):
        ACME.quotas["consumer_byte_rate"] = 1  # read-only, like the rest of the frozen tenant
    assert ACME.owns("acme.orders") and ACME.owns("acme.") and ACME.owns("acme..x")
    for name in ("acme", "ACME.orders", "Acme.orders", "acme2.orders", "acme-x.orders", "acmeorders", ".acme.x",
                 " acme.x"):
        assert not ACME.owns(name), name


@pytest.mark.parametrize("name", ["", "Acme", "ACME", "acme.", "a.b", "-acme", "acme_x", "acme x", "a" * 64,
                                  "é", None, 7])
def test_tenant_names_are_lower_case_words_without_dots(name):
    with pytest.raises(InvalidTenant):
        Tenant(name)


def test_tenant_name_limits():
    assert Tenant("a" * 63).prefix == "a" * 63 + "."
    assert Tenant("0-a").name == "0-a"


@pytest.mark.parametrize("kwargs", [
    {"members": frozenset({"alice"})},
    {"members": frozenset({"User:*"})},  # a wildcard would put every user in the tenant
    {"admins": frozenset({"User:"})},
    {"members": "User:alice"},  # a string is not a collection of principals
    {"quotas": {"bytes": 1}},
    {"quotas": {"producer_byte_rate": 0}},
    {"quotas": {"producer_byte_rate": -5}},
    {"quotas": {"consumer_byte_rate": float("inf")}},
    {"quotas": {"request_percentage": True}},
    {"quotas": {"producer_byte_rate": 0.5}},  # byte rates are LONGs, as SetQuotas and Kafka have them
    {"quotas": {"consumer_byte_rate": 1e19}},  # past a LONG
    {"max_partitions": -1},
    {"max_partitions": 1.5},
    {"max_storage_bytes": True},
])
def test_tenant_refuses_bad_principals_quotas_and_limits(kwargs):
    with pytest.raises(InvalidTenant):
        Tenant("acme", **kwargs)


def test_tenant_quotas_follow_the_client_quota_rule():
    with pytest.raises(InvalidTenant, match="producer_byte_rate cannot be a fractional value"):
        Tenant("acme", quotas={"producer_byte_rate": 1024.5})
    ok = Tenant("acme", quotas={"producer_byte_rate": 1024, "request_percentage": 0.5})
    assert dict(ok.quotas) == {"producer_byte_rate": 1024.0, "request_percentage": 0.5}


def test_has_user_names_the_scram_users_among_the_members():
    assert ACME.has_user("alice") and ACME.has_user("ann")
    for name in ("acme-devs", "gina", "Alice", "User:alice", ""):
        assert not ACME.has_user(name), name


def test_tenant_json_round_trip():
    assert Tenant.from_json("acme", ACME.to_json()) == ACME
    assert Tenant.from_json("globex", GLOBEX.to_json()) == GLOBEX


# ---------------------------------------------------------------------------- the store

def test_store_put_get_all_remove(world):
    w = world()
    assert w.tenants.all() == [] and w.tenants.get("acme") is None
    w.tenants.put(GLOBEX)
    w.tenants.put(ACME)
    assert [t.name for t in w.tenants.all()] == ["acme", "globex"]
    assert w.tenants.get("acme") == ACME
    assert w.tenants.remove("acme") == ACME
    assert w.tenants.remove("acme") is None
    assert w.tenants.get("acme") is None and w.tenants.of(ALICE) is None
    assert dict(w.meta.replay(KEY_PREFIX)).keys() == {b"tenant\0globex"}


def test_a_principal_belongs_to_at_most_one_tenant(world):
    w = world()
    w.tenants.put(ACME)
    for principal in ("User:alice", "User:ann", "Group:acme-devs"):
        with pytest.raises(TenantConflict, match="already belongs to tenant acme"):
            w.tenants.put(Tenant("globex", frozenset({principal})))
    assert w.tenants.get("globex") is None
    assert b"tenant\0globex" not in dict(w.meta.replay(KEY_PREFIX))  # nothing was written
    # replacing acme itself is fine, and frees the principals it no longer names
    w.tenants.put(Tenant("acme", frozenset({"User:alice"})))
    w.tenants.put(Tenant("globex", frozenset({"User:ann", "Group:acme-devs"})))
    assert w.tenants.of(ANN).name == "globex" and w.tenants.of(DEV).name == "globex"


def test_create_refuses_a_taken_name_or_principal(world):
    w = world()
    w.tenants.create(ACME)
    with pytest.raises(TenantExists, match="tenant acme already exists"):
        w.tenants.create(Tenant("acme", frozenset({"User:zoe"})))
    with pytest.raises(TenantConflict):
        w.tenants.create(Tenant("initech", frozenset({"User:alice"})))
    assert w.tenants.all() == [ACME]


def test_update_answers_before_and_after_and_writes_nothing_on_failure(world):
    w = world()
    w.tenants.create(ACME)
    w.tenants.create(GLOBEX)
    before, after = w.tenants.update("acme", lambda t: dataclasses.replace(t, max_partitions=5))
    assert (before, after.max_partitions, w.tenants.get("acme")) == (ACME, 5, after)
    with pytest.raises(TenantNotFound, match="tenant nosuch does not exist"):
        w.tenants.update("nosuch", lambda t: t)
    for change, error in [(lambda t: dataclasses.replace(t, members=t.members | {"User:gina"}), TenantConflict),
                          (lambda t: Tenant("acme2"), ValueError),
                          (lambda t: dataclasses.replace(t, quotas={"producer_byte_rate": 0.5}), InvalidTenant)]:
        with pytest.raises(error):
            w.tenants.update("acme", change)
    assert w.tenants.get("acme") == after and w.tenants.get("acme2") is None
    assert world().tenants.all() == [after, GLOBEX]  # what the log holds


def _together(n: int, fn) -> list:
    """fn(0) .. fn(n-1) in n threads released at once; their results or exceptions."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_concurrent_creates_of_one_name_store_exactly_one(world):
    w = world()
    results = _together(8, lambda i: w.tenants.create(Tenant("acme", frozenset({f"User:u{i}"}))))
    winners = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, TenantExists) for i, r in enumerate(results) if i not in winners)
    assert w.tenants.get("acme").members == {f"User:u{winners[0]}"}
    assert world().tenants.get("acme").members == {f"User:u{winners[0]}"}


def test_concurrent_updates_never_undo_each_other(world):
    w = world()
    w.tenants.create(Tenant("acme", frozenset(f"User:u{i}" for i in range(16))))
    results = _together(16, lambda i: w.tenants.update(
        "acme", lambda t: dataclasses.replace(t, members=t.members - {f"User:u{i}"})))
    assert not [r for r in results if isinstance(r, Exception)]
    assert w.tenants.get("acme").members == frozenset()
    assert world().tenants.get("acme").members == frozenset()


def test_an_update_racing_a_remove_never_brings_the_tenant_back(world):
    w = world()
    for _ in range(10):
        w.tenants.create(ACME)
        removed, updated = _together(2, lambda i: w.tenants.remove("acme") if i == 0 else w.tenants.update(
            "acme", lambda t: dataclasses.replace(t, members=t.members | {"User:zoe"})))
        assert removed is not None and w.tenants.get("acme") is None
        assert isinstance(updated, TenantNotFound) or removed == updated[1]  # the update came first
    assert world().tenants.get("acme") is None


def test_store_survives_a_fresh_broker_without_a_clean_close(world, tmp_path):
    w = world()
    w.tenants.put(ACME)
    w.tenants.put(GLOBEX)
    w.tenants.put(Tenant("initech", frozenset({"User:ivan"})))
    w.tenants.remove("initech")
    again = world()  # the first never closed, as after kill -9
    assert again.tenants.all() == [ACME, GLOBEX]
    assert again.tenants.of(ALICE) == ACME


def test_store_survives_compaction(world):
    w = world()
    for i in range(5):
        w.tenants.put(Tenant("acme", frozenset({f"User:u{i}"})))
        w.tenants.put(Tenant("gone"))
        w.tenants.remove("gone")
    w.meta._partition().roll()
    w.meta.compact(int(time.time() * 1000) + 1)
    w.tenants.load()
    assert w.tenants.all() == [Tenant("acme", frozenset({"User:u4"}))]


def test_unreadable_records_are_skipped(world):
    w = world()
    w.tenants.put(ACME)
    w.meta.append(b"tenant\0bad", b"{not json")
    w.meta.append(b"tenant\0Bad-Name", b"{}")
    w.meta.append(b"tenant\0quota", b'{"quotas": {"nonsense": 1}}')
    w.tenants.load()
    assert w.tenants.all() == [ACME]


def test_of_resolves_the_principal_first_then_its_groups(two):
    t = two.tenants
    assert t.of(ALICE).name == "acme" and t.of(ANN).name == "acme" and t.of(GINA).name == "globex"
    assert t.of(DEV).name == "acme"
    assert t.of(BOB) is None and t.of(session("User:Alice")) is None  # principals are case-sensitive
    assert t.of(session("User:acme-devs")) is None  # a user named like a group is not that group
    # the principal's own tenant wins over its groups'
    assert t.of(session("User:gina", "Group:acme-devs")).name == "globex"
    # groups of two tenants: confined to one of them (the first by name), never to none
    t.put(Tenant("globex", frozenset({"User:gina", "Group:globex-devs"})))
    both = session("User:zed", "Group:globex-devs", "Group:acme-devs")
    assert t.of(both).name == "acme"
    assert t.of(session("User:zed", "Group:other", "Group:globex-devs")).name == "globex"


# ---------------------------------------------------------------------------- the rule: namespaces

@pytest.mark.parametrize("rtype", sorted(TENANT_IMPLICIT))
def test_members_have_the_implicit_permissions_inside_their_prefix_only(two, rtype):
    for who in (ALICE, ANN, DEV):
        for op in TENANT_IMPLICIT[rtype]:
            assert two.allowed(who, op, rtype, "acme.thing"), (who, op, rtype)
            assert not two.allowed(who, op, rtype, "globex.thing")
            assert not two.allowed(who, op, rtype, "thing")
    for op in TENANT_IMPLICIT[rtype]:
        assert two.allowed(GINA, op, rtype, "globex.thing") and not two.allowed(GINA, op, rtype, "acme.thing")
        assert not two.allowed(BOB, op, rtype, "acme.thing")  # a principal of no tenant: plain ACLs, none here


def test_implicit_permissions_are_exactly_the_contract():
    expected = {
        R.TOPIC: {Op.CREATE, Op.DESCRIBE, Op.READ, Op.WRITE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.DELETE,
                  Op.ALTER},
        R.GROUP: {Op.READ, Op.DESCRIBE, Op.DELETE},
        R.TRANSACTIONAL_ID: {Op.WRITE, Op.DESCRIBE},
    }
    assert expected == TENANT_IMPLICIT


@pytest.mark.parametrize("name", ["acme", "ACME.orders", "Acme.orders", "aCme.orders", "acme2.orders",
                                  "acme-x.orders", "acmeorders", "globex.orders", "orders", "", "*", ".acme.x",
                                  "__consumer_offsets", "__keystream_metadata"])
def test_names_outside_the_prefix_are_denied_whatever_the_acls(two, name):
    two.acls(
        acl("User:alice", Op.ALL, R.TOPIC, "*"),
        acl("User:alice", Op.ALL, R.TOPIC, "acme", P.PREFIXED),  # spans acme. and acme2. and acme-x.
        acl("User:alice", Op.ALL, R.TOPIC, "a", P.PREFIXED),
        acl("User:*", Op.ALL, R.TOPIC, "*"),
        acl("Group:acme-devs", Op.ALL, R.TOPIC, "*"),
        acl("User:alice", Op.ALL, R.GROUP, "*"),
        acl("User:alice", Op.ALL, R.TRANSACTIONAL_ID, "*"),
    )
    if name:
        two.acls(acl("User:alice", Op.ALL, R.TOPIC, name), acl("User:alice", Op.READ, R.TOPIC, name))
    for who in (ALICE, DEV):
        for rtype in (R.TOPIC, R.GROUP, R.TRANSACTIONAL_ID):
            for op in (Op.READ, Op.WRITE, Op.DESCRIBE, Op.CREATE, Op.DELETE, Op.ALTER, Op.ALTER_CONFIGS,
                       Op.DESCRIBE_CONFIGS, Op.ALL):
                assert not two.allowed(who, op, rtype, name), (who.principal, op, rtype, name)
        assert two.authorizer.authorized_operations(who, R.TOPIC, name) == 0
    # the same ACLs do what Kafka says for a principal of no tenant
    two.acls(acl("User:bob", Op.READ, R.TOPIC, "acme", P.PREFIXED))
    assert two.allowed(BOB, Op.READ, R.TOPIC, "acme2.orders")


def test_explicit_allow_adds_to_the_implicit_permissions_inside(two):
    assert not two.allowed(ALICE, Op.ALTER_CONFIGS, R.GROUP, "acme.g")  # not implicit
    assert not two.allowed(ALICE, Op.DESCRIBE_CONFIGS, R.GROUP, "acme.g")
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "acme.g1"),
             acl("Group:acme-devs", Op.DESCRIBE_CONFIGS, R.GROUP, "acme.", P.PREFIXED))
    assert two.allowed(ALICE, Op.ALTER_CONFIGS, R.GROUP, "acme.g1")
    assert not two.allowed(ALICE, Op.ALTER_CONFIGS, R.GROUP, "acme.other")
    assert two.allowed(DEV, Op.DESCRIBE_CONFIGS, R.GROUP, "acme.g")
    assert not two.allowed(ALICE, Op.DESCRIBE_CONFIGS, R.GROUP, "acme.g")  # alice is not in acme-devs


def test_explicit_deny_wins_inside_the_prefix(two):
    two.acls(
        acl("User:alice", Op.READ, R.TOPIC, "acme.secret", permission=Permission.DENY),
        acl("User:alice", Op.ALL, R.TOPIC, "acme.locked", permission=Permission.DENY),
        acl("Group:acme-devs", Op.WRITE, R.TOPIC, "acme.ro", P.PREFIXED, Permission.DENY),
        acl("User:*", Op.DELETE, R.GROUP, "acme.", P.PREFIXED, Permission.DENY),
        acl("User:alice", Op.WRITE, R.TRANSACTIONAL_ID, "acme.tx", permission=Permission.DENY, host="10.0.0.1"),
        acl("User:alice", Op.READ, R.TOPIC, "acme.secret"),  # an ALLOW beside the DENY changes nothing
    )
    assert not two.allowed(ALICE, Op.READ, R.TOPIC, "acme.secret")
    assert two.allowed(ALICE, Op.DESCRIBE, R.TOPIC, "acme.secret")  # a DENY of Read is not a DENY of Describe
    assert two.allowed(ANN, Op.READ, R.TOPIC, "acme.secret")
    for op in TENANT_IMPLICIT[R.TOPIC]:
        assert not two.allowed(ALICE, op, R.TOPIC, "acme.locked")
    assert not two.allowed(DEV, Op.WRITE, R.TOPIC, "acme.ro.events")
    assert two.allowed(ALICE, Op.WRITE, R.TOPIC, "acme.ro.events")
    for who in (ALICE, ANN, DEV):
        assert not two.allowed(who, Op.DELETE, R.GROUP, "acme.g")
        assert two.allowed(who, Op.READ, R.GROUP, "acme.g")
    assert not two.allowed(ALICE, Op.WRITE, R.TRANSACTIONAL_ID, "acme.tx")
    assert two.allowed(session("User:alice", host="10.0.0.2"), Op.WRITE, R.TRANSACTIONAL_ID, "acme.tx")


def test_a_deny_pattern_spanning_tenants_denies_inside_too(two):
    two.acls(acl("User:*", Op.ALL, R.TOPIC, "acme", P.PREFIXED, Permission.DENY))
    assert not two.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")
    assert two.allowed(GINA, Op.READ, R.TOPIC, "globex.orders")
    two.acls(acl("User:*", Op.WRITE, R.TOPIC, "*", permission=Permission.DENY))
    assert not two.allowed(GINA, Op.WRITE, R.TOPIC, "globex.orders")
    assert two.allowed(GINA, Op.READ, R.TOPIC, "globex.orders")


# ---------------------------------------------------------------------------- the rule: everything else

def test_cluster_operations_come_only_from_acls(two):
    for op in (Op.DESCRIBE, Op.ALTER, Op.CREATE, Op.IDEMPOTENT_WRITE, Op.DESCRIBE_CONFIGS, Op.CLUSTER_ACTION):
        assert not two.allowed(ALICE, op, R.CLUSTER, CLUSTER)
        assert not two.allowed(ANN, op, R.CLUSTER, CLUSTER)  # being a tenant admin grants no cluster operation
    assert two.authorizer.authorized_operations(ANN, R.CLUSTER, CLUSTER) == 0
    two.acls(acl("User:alice", Op.DESCRIBE, R.CLUSTER, CLUSTER),
             acl("Group:acme-devs", Op.IDEMPOTENT_WRITE, R.CLUSTER, CLUSTER),
             acl("User:alice", Op.CREATE, R.CLUSTER, CLUSTER), acl("User:alice", Op.ALL, R.CLUSTER, CLUSTER))
    assert two.allowed(ALICE, Op.DESCRIBE, R.CLUSTER, CLUSTER)
    assert two.allowed(DEV, Op.IDEMPOTENT_WRITE, R.CLUSTER, CLUSTER)
    # Cluster Create, Delete and ClusterAction reach every topic (create anywhere, delete any topic, read
    # any partition as a follower): never, whatever the ACLs
    for op in (Op.CREATE, Op.DELETE, Op.CLUSTER_ACTION):
        assert not two.allowed(ALICE, op, R.CLUSTER, CLUSTER)
        assert not two.authorizer.authorize_by_resource_type(ALICE, op, R.CLUSTER)
    assert two.allowed(ALICE, Op.CREATE, R.TOPIC, "acme.new")


def test_allow_everyone_if_no_acl_found_never_applies_to_tenants(world):
    w = world(**{"allow.everyone.if.no.acl.found": True})
    w.tenants.put(ACME)
    assert w.allowed(BOB, Op.ALTER, R.CLUSTER, CLUSTER) and w.allowed(BOB, Op.READ, R.TOPIC, "plain")
    # nor to names in a tenant's namespace, for anyone: they carry no ACL and would be open to all
    for rtype in (R.TOPIC, R.GROUP, R.TRANSACTIONAL_ID):
        assert not w.allowed(BOB, Op.READ, rtype, "acme.orders") and w.allowed(BOB, Op.READ, rtype, "acme2.orders")
    w.acls(acl("User:bob", Op.READ, R.TOPIC, "acme.shared"))
    assert w.allowed(BOB, Op.READ, R.TOPIC, "acme.shared")  # an explicit ALLOW still works
    assert not w.allowed(ALICE, Op.ALTER, R.CLUSTER, CLUSTER)
    assert not w.allowed(ALICE, Op.READ, R.TOPIC, "plain")
    assert not w.allowed(ALICE, Op.ALTER_CONFIGS, R.GROUP, "acme.orders")  # not implicit: needs a real ALLOW
    assert w.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")


def test_super_users_belong_to_no_tenant_and_see_everything(world):
    w = world(**{"super.users": "User:admin;User:alice;Group:ops"})
    w.tenants.put(ACME)
    w.tenants.put(Tenant("globex", frozenset({"User:gina", "Group:ops"})))
    w.acls(acl("User:*", Op.ALL, R.TOPIC, "*", permission=Permission.DENY))
    ops_member = session("User:gina", "Group:ops")
    for who in (ADMIN, ALICE, ops_member):
        assert w.authorizer.tenant_of(who) is None
        for name in ("acme.orders", "globex.orders", "plain"):
            assert w.allowed(who, Op.ALL, R.TOPIC, name)
        assert w.allowed(who, Op.CREATE, R.CLUSTER, CLUSTER)
        assert w.authorizer.authorize_by_resource_type(who, Op.WRITE, R.TOPIC)
    assert w.authorizer.tenant_of(ANN).name == "acme"
    assert not w.allowed(session("User:gina"), Op.READ, R.TOPIC, "globex.orders")  # without the group: the DENY


def test_tenants_apply_without_a_restart(world):
    w = world()
    w.acls(acl("User:alice", Op.READ, R.TOPIC, "plain"))
    assert w.allowed(ALICE, Op.READ, R.TOPIC, "plain") and not w.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")
    w.tenants.put(ACME)
    assert not w.allowed(ALICE, Op.READ, R.TOPIC, "plain") and w.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")
    w.tenants.put(Tenant("acme", frozenset({"User:ann"})))  # alice taken out of the tenant
    assert w.allowed(ALICE, Op.READ, R.TOPIC, "plain") and not w.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")
    w.tenants.put(ACME)
    w.tenants.remove("acme")
    assert w.allowed(ALICE, Op.READ, R.TOPIC, "plain") and not w.allowed(ALICE, Op.READ, R.TOPIC, "acme.orders")


def test_authorized_operations_inside_the_prefix(two):
    bits = two.authorizer.authorized_operations(ALICE, R.TOPIC, "acme.orders")
    assert bits == sum(1 << op for op in TENANT_IMPLICIT[R.TOPIC])
    assert two.authorizer.authorized_operations(ALICE, R.GROUP, "acme.g") == sum(
        1 << op for op in TENANT_IMPLICIT[R.GROUP])
    assert two.authorizer.authorized_operations(ALICE, R.GROUP, "globex.g") == 0


# ---------------------------------------------------------------------------- authorize_by_resource_type

def test_by_resource_type_counts_the_implicit_permissions(two):
    by_type = two.authorizer.authorize_by_resource_type
    assert by_type(ALICE, Op.WRITE, R.TOPIC)  # an idempotent producer inside its namespace
    assert by_type(ALICE, Op.WRITE, R.TRANSACTIONAL_ID)
    assert not by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    assert not by_type(ALICE, Op.CREATE, R.CLUSTER)
    two.acls(acl("User:alice", Op.WRITE, R.TOPIC, "acme.a", P.PREFIXED, Permission.DENY))
    assert by_type(ALICE, Op.WRITE, R.TOPIC)  # acme.b... is still writable
    two.acls(acl("User:alice", Op.WRITE, R.TOPIC, "acme.", P.PREFIXED, Permission.DENY))
    assert not by_type(ALICE, Op.WRITE, R.TOPIC)
    assert by_type(DEV, Op.WRITE, R.TOPIC)
    two.acls(acl("Group:acme-devs", Op.WRITE, R.TOPIC, "ac", P.PREFIXED, Permission.DENY))
    assert not by_type(DEV, Op.WRITE, R.TOPIC)


def test_by_resource_type_counts_only_the_part_of_an_allow_inside_the_namespace(two):
    by_type = two.authorizer.authorize_by_resource_type
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "globex.orders"),
             acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "acme2", P.PREFIXED),
             acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "glob", P.PREFIXED))
    assert not by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "acme.orders"))
    assert by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "acme.orders", permission=Permission.DENY))
    assert not by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "*"))  # counts as the whole namespace
    assert by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    two.acls(acl("User:alice", Op.ALTER_CONFIGS, R.GROUP, "acme.", P.PREFIXED, Permission.DENY))
    assert not by_type(ALICE, Op.ALTER_CONFIGS, R.GROUP)
    two.acls(acl("User:gina", Op.ALTER_CONFIGS, R.GROUP, "a", P.PREFIXED))  # spans acme. from outside
    assert by_type(GINA, Op.ALTER_CONFIGS, R.GROUP) is False
    assert by_type(BOB, Op.ALTER_CONFIGS, R.GROUP) is False


# ---------------------------------------------------------------------------- what a tenant admin manages

@pytest.mark.parametrize("binding, inside", [
    (acl("User:alice", Op.READ, R.TOPIC, "acme.orders"), True),
    (acl("Group:acme-devs", Op.ALL, R.TOPIC, "acme.", P.PREFIXED, Permission.DENY), True),
    (acl("User:ann", Op.WRITE, R.TRANSACTIONAL_ID, "acme.tx", P.PREFIXED), True),
    (acl("User:alice", Op.READ, R.GROUP, "acme.g"), True),
    (acl("User:alice", Op.READ, R.TOPIC, "acme", P.PREFIXED), False),  # spans acme2.
    (acl("User:alice", Op.READ, R.TOPIC, "*"), False),
    (acl("User:alice", Op.READ, R.TOPIC, "globex.orders"), False),
    (acl("User:alice", Op.READ, R.TOPIC, "ACME.orders"), False),
    (acl("User:alice", Op.READ, R.TOPIC, "acme2.orders"), False),
    (acl("User:gina", Op.READ, R.TOPIC, "acme.orders"), False),
    (acl("User:*", Op.READ, R.TOPIC, "acme.orders"), False),
    (acl("User:Alice", Op.READ, R.TOPIC, "acme.orders"), False),
    (acl("User:ann", Op.ALTER, R.CLUSTER, CLUSTER), False),
    (acl("User:ann", Op.CREATE_TOKENS, R.USER, "acme.ann"), False),
])
def test_tenant_acl_scope(binding, inside):
    assert tenant_acl_scope(ACME, binding) is inside


def test_describe_and_delete_honour_a_scope(two):
    mine = acl("User:alice", Op.READ, R.TOPIC, "acme.orders")
    theirs = acl("User:gina", Op.READ, R.TOPIC, "globex.orders")
    spanning = acl("User:alice", Op.READ, R.TOPIC, "acme", P.PREFIXED)
    two.acls(mine, theirs, spanning)

    def scope(b):
        return tenant_acl_scope(ACME, b)

    assert two.authorizer.describe(ANY_FILTER, scope) == [mine]
    assert two.authorizer.delete([ANY_FILTER, ANY_FILTER], scope) == [[mine], [mine]]
    assert set(two.authorizer.describe(ANY_FILTER)) == {theirs, spanning}
