"""How ACLs match: filters against bindings (Kafka's AclBindingFilter.matches) and the in-memory
index the authorizer asks which ACLs cover a resource (literal, `*` wildcard and prefixed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from keystream.auth.acl.model import (
    WILDCARD_RESOURCE,
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)


def pattern_matches(f: AclBindingFilter, b: AclBinding) -> bool:
    """Kafka's ResourcePatternFilter.matches: MATCH treats the filter name as a resource."""
    if f.resource_type is not ResourceType.ANY and f.resource_type != b.resource_type:
        return False
    if f.pattern_type not in (PatternType.ANY, PatternType.MATCH) and f.pattern_type != b.pattern_type:
        return False
    if f.name is None:
        return True
    if f.pattern_type is PatternType.ANY or f.pattern_type == b.pattern_type:
        return f.name == b.name
    if b.pattern_type is PatternType.LITERAL:
        return f.name == b.name or b.name == WILDCARD_RESOURCE
    return f.name.startswith(b.name)


def entry_matches(f: AclBindingFilter, b: AclBinding) -> bool:
    """Kafka's AccessControlEntryFilter.matches: exact strings, ANY enums."""
    return ((f.principal is None or f.principal == b.principal)
            and (f.host is None or f.host == b.host)
            and (f.operation is Operation.ANY or f.operation == b.operation)
            and (f.permission is Permission.ANY or f.permission == b.permission))


def filter_matches(f: AclBindingFilter, b: AclBinding) -> bool:
    return pattern_matches(f, b) and entry_matches(f, b)


class AclIndex:
    """Bindings by resource type, then literal name or prefix, for per-request lookups.

    A prefixed lookup probes only the prefix lengths that exist, so it costs O(distinct lengths).
    """

    def __init__(self, bindings: Iterable[AclBinding] = ()):
        self._all: set[AclBinding] = set()
        self._literal: dict[tuple[ResourceType, str], set[AclBinding]] = {}
        self._prefixed: dict[tuple[ResourceType, str], set[AclBinding]] = {}
        self._prefix_lengths: dict[ResourceType, dict[int, int]] = {}
        for b in bindings:
            self.add(b)

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, b: AclBinding) -> bool:
        return b in self._all

    def __iter__(self) -> Iterator[AclBinding]:
        return iter(list(self._all))

    def add(self, b: AclBinding) -> bool:
        if b in self._all:
            return False
        self._all.add(b)
        key = (b.resource_type, b.name)
        if b.pattern_type is PatternType.PREFIXED:
            self._prefixed.setdefault(key, set()).add(b)
            lengths = self._prefix_lengths.setdefault(b.resource_type, {})
            lengths[len(b.name)] = lengths.get(len(b.name), 0) + 1
        else:
            self._literal.setdefault(key, set()).add(b)
        return True

    def remove(self, b: AclBinding) -> bool:
        if b not in self._all:
            return False
        self._all.discard(b)
        key = (b.resource_type, b.name)
        table = self._prefixed if b.pattern_type is PatternType.PREFIXED else self._literal
        entries = table[key]
        entries.discard(b)
        if not entries:
            del table[key]
        if b.pattern_type is PatternType.PREFIXED:
            lengths = self._prefix_lengths[b.resource_type]
            lengths[len(b.name)] -= 1
            if not lengths[len(b.name)]:
                del lengths[len(b.name)]
        return True

    def for_resource(self, rtype: ResourceType, name: str) -> list[AclBinding]:
        """Every ACL whose pattern covers the resource: literal name, literal `*`, or a prefix of it."""
        found: list[AclBinding] = []
        found += self._literal.get((rtype, name), ())
        if name != WILDCARD_RESOURCE:
            found += self._literal.get((rtype, WILDCARD_RESOURCE), ())
        for length in self._prefix_lengths.get(rtype, {}):
            if length <= len(name):
                found += self._prefixed.get((rtype, name[:length]), ())
        return found

    def of_type(self, rtype: ResourceType) -> list[AclBinding]:
        return [b for b in self._all if b.resource_type == rtype]

    def matching(self, f: AclBindingFilter) -> list[AclBinding]:
        return [b for b in self._all if filter_matches(f, b)]
