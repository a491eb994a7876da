"""ACL model and matching: validation of new bindings, Kafka's filter semantics (ANY, MATCH,
LITERAL, PREFIXED, null wildcards), the resource index, and the store's key encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystream.auth.acl import (
    AclBinding,
    AclBindingFilter,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    parse_super_users,
)
from keystream.auth.acl.matching import AclIndex, filter_matches, pattern_matches
from keystream.auth.acl.store import decode_key, encode_key

T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED


def b(name="foo", pattern=LIT, rtype=T, principal="User:alice", host="*", op=Operation.READ, perm=Permission.ALLOW):
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def test_wire_codes_become_enums_and_unknown_codes_unknown():
    acl = AclBinding(2, "foo", 3, "User:a", "*", 3, 3)
    assert acl == b(principal="User:a")
    assert acl.resource_type is T and acl.operation is Operation.READ
    f = AclBindingFilter(resource_type=99, pattern_type=42, operation=-1, permission=7)
    assert (f.resource_type, f.pattern_type, f.operation, f.permission) == (0, 0, 0, 0)


@pytest.mark.parametrize("binding, message", [
    (b(rtype=ResourceType.ANY), "resourceType"),
    (b(rtype=ResourceType.UNKNOWN), "resourceType"),
    (b(pattern=PatternType.MATCH), "patternType"),
    (b(pattern=PatternType.ANY), "patternType"),
    (b(pattern=PatternType.UNKNOWN), "patternType"),
    (b(op=Operation.ANY), "operation"),
    (b(op=Operation.UNKNOWN), "operation"),
    (b(perm=Permission.ANY), "permission"),
    (b(perm=Permission.UNKNOWN), "permission"),
    (b(name=""), "empty resource name"),
    (b(rtype=C, name="other"), "kafka-cluster"),
    (b(principal=""), "principal"),
    (b(principal="alice"), "principalType:principalName"),
    (b(principal="User:"), "principalType:principalName"),
    (b(principal=":alice"), "principalType:principalName"),
    (b(host=""), "host"),
])
def test_invalid_bindings(binding, message):
    with pytest.raises(InvalidAcl, match=message):
        binding.validate()


@pytest.mark.parametrize("binding", [
    b(), b(pattern=PRE), b(name="*"), b(principal="User:*"), b(principal="Group:devs"),
    b(rtype=C, name="kafka-cluster", op=Operation.ALTER), b(perm=Permission.DENY, op=Operation.ALL),
    b(principal="User:CN=alice,O=acme,C=US", host="10.0.0.1"),
])
def test_valid_bindings(binding):
    assert binding.validate() is binding


LIT_FOO, PRE_FO, STAR, LIT_BAR = b("foo"), b("fo", PRE), b("*"), b("bar")
GROUP_FOO = b("foo", rtype=G)
ALL = [LIT_FOO, PRE_FO, STAR, LIT_BAR, GROUP_FOO]


@pytest.mark.parametrize("f, expected", [
    (AclBindingFilter(), ALL),
    (AclBindingFilter(resource_type=T), [LIT_FOO, PRE_FO, STAR, LIT_BAR]),
    (AclBindingFilter(resource_type=G), [GROUP_FOO]),
    (AclBindingFilter(pattern_type=LIT), [LIT_FOO, STAR, LIT_BAR, GROUP_FOO]),
    (AclBindingFilter(pattern_type=PRE), [PRE_FO]),
    (AclBindingFilter(resource_type=T, name="foo", pattern_type=PatternType.ANY), [LIT_FOO]),
    (AclBindingFilter(resource_type=T, name="foo", pattern_type=LIT), [LIT_FOO]),
    (AclBindingFilter(resource_type=T, name="fo", pattern_type=PRE), [PRE_FO]),
    (AclBindingFilter(resource_type=T, name="foo", pattern_type=PRE), []),
    # MATCH: every ACL that would apply to the resource `foo`
    (AclBindingFilter(resource_type=T, name="foo", pattern_type=PatternType.MATCH), [LIT_FOO, PRE_FO, STAR]),
    (AclBindingFilter(resource_type=T, name="bar", pattern_type=PatternType.MATCH), [STAR, LIT_BAR]),
    (AclBindingFilter(resource_type=ResourceType.ANY, name="foo", pattern_type=PatternType.MATCH),
     [LIT_FOO, PRE_FO, STAR, GROUP_FOO]),
    (AclBindingFilter(resource_type=T, name=None, pattern_type=PatternType.MATCH), [LIT_FOO, PRE_FO, STAR, LIT_BAR]),
    # the `*` name is literal in a LITERAL/ANY filter
    (AclBindingFilter(resource_type=T, name="*", pattern_type=LIT), [STAR]),
    (AclBindingFilter(resource_type=T, name="*", pattern_type=PatternType.ANY), [STAR]),
])
def test_pattern_filters(f, expected):
    assert [acl for acl in ALL if filter_matches(f, acl)] == expected


def test_entry_filters():
    deny_bob = b(principal="User:bob", host="10.0.0.1", op=Operation.WRITE, perm=Permission.DENY)
    acls = [b(), deny_bob]
    assert [a for a in acls if filter_matches(AclBindingFilter(principal="User:bob"), a)] == [deny_bob]
    assert [a for a in acls if filter_matches(AclBindingFilter(host="10.0.0.1"), a)] == [deny_bob]
    assert [a for a in acls if filter_matches(AclBindingFilter(host="*"), a)] == [acls[0]]
    assert [a for a in acls if filter_matches(AclBindingFilter(operation=Operation.WRITE), a)] == [deny_bob]
    assert [a for a in acls if filter_matches(AclBindingFilter(permission=Permission.ALLOW), a)] == [acls[0]]
    # principal filters compare strings: User:* in a filter is not a wildcard
    assert not any(filter_matches(AclBindingFilter(principal="User:*"), a) for a in acls)
    # ALL in a filter matches only ALL bindings (ANY is the filter wildcard)
    assert not any(filter_matches(AclBindingFilter(operation=Operation.ALL), a) for a in acls)


@pytest.mark.parametrize("f", [
    AclBindingFilter(resource_type=ResourceType.UNKNOWN), AclBindingFilter(pattern_type=PatternType.UNKNOWN),
    AclBindingFilter(operation=Operation.UNKNOWN), AclBindingFilter(permission=Permission.UNKNOWN),
])
def test_unknown_filters_are_invalid(f):
    with pytest.raises(InvalidAcl):
        f.validate()


def test_index_lookup_and_removal():
    index = AclIndex(ALL + [b("f", PRE), b("foobar", PRE)])
    assert set(index.for_resource(T, "foo")) == {LIT_FOO, PRE_FO, STAR, b("f", PRE)}
    assert set(index.for_resource(T, "*")) == {STAR}
    assert set(index.for_resource(G, "foo")) == {GROUP_FOO}
    assert index.remove(PRE_FO) and not index.remove(PRE_FO)
    assert set(index.for_resource(T, "foo")) == {LIT_FOO, STAR, b("f", PRE)}
    assert index.remove(b("f", PRE))
    assert set(index.for_resource(T, "foo")) == {LIT_FOO, STAR}
    assert not index.add(LIT_FOO)
    assert len(index) == 5


@pytest.mark.parametrize("binding", [b(), b("naïve:topic\0x", PRE, principal='User:CN="a,b"', host="::1"), GROUP_FOO])
def test_key_roundtrip(binding):
    key = encode_key(binding)
    assert key.startswith(b"acl\0")
    assert decode_key(key) == binding


def test_super_users_parsing():
    assert parse_super_users(None) == frozenset()
    assert parse_super_users("User:a; User:b ;;") == {"User:a", "User:b"}


# ---------------------------------------------------------------- the index against a brute-force reference



NAMES = st.sampled_from(["a", "ab", "abc", "b", "*", "ba"])
BINDINGS = st.builds(
    AclBinding, st.sampled_from([T, G]), NAMES, st.sampled_from([LIT, PRE]), st.just("User:a"), st.just("*"),
    st.just(Operation.READ), st.just(Permission.ALLOW))


@given(st.lists(BINDINGS, max_size=12), st.lists(BINDINGS, max_size=6), st.sampled_from([T, G]),
       st.sampled_from(["a", "ab", "abc", "abcd", "b", "ba", "*", "c"]))
def test_index_agrees_with_match_filters(added, removed, rtype, name):
    index = AclIndex()
    for acl in added:
        index.add(acl)
    for acl in removed:
        index.remove(acl)
    live = set(added) - set(removed)
    expected = {acl for acl in live
                if pattern_matches(AclBindingFilter(resource_type=rtype, name=name,
                                                    pattern_type=PatternType.MATCH), acl)}
    assert set(index.for_resource(rtype, name)) == expected
    assert set(index) == live
