"""The one Authorizer every handler asks, with the semantics of Apache Kafka's StandardAuthorizer.

Decision order for `authorize`: super users are allowed everything; otherwise the ACLs whose
pattern covers the resource (literal name, literal `*`, or a prefix) are considered for the
session's principals (the principal, its LDAP groups, and `User:*`) and host (exact or `*`).
A matching DENY (same operation or ALL) wins; then a matching ALLOW (same operation, ALL, or one
that implies it); a resource with no ACL at all is allowed only with
`allow.everyone.if.no.acl.found=true`; everything else is denied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from keystream.auth.acl.matching import AclIndex
from keystream.auth.acl.model import (
    IMPLIED_BY,
    SUPPORTED_OPERATIONS,
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    WILDCARD_RESOURCE,
    AclBinding,
    AclBindingFilter,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from keystream.auth.acl.store import AclStore
from keystream.auth.principal import Session

log = logging.getLogger("keystream.authorizer")


def parse_super_users(value: str | Iterable[str] | None) -> frozenset[str]:
    """`super.users`: `;`-separated principals (Kafka's format); blanks are ignored."""
    if value is None:
        return frozenset()
    items = value.split(";") if isinstance(value, str) else value
    return frozenset(p.strip() for p in items if p.strip())


class Authorizer:
    """ACL checks plus ACL management, over an AclStore kept in the broker's metadata log."""

    def __init__(self, config: Mapping[str, Any], metadata_log):
        self.super_users = parse_super_users(config.get("super.users"))
        self.allow_if_no_acl = bool(config.get("allow.everyone.if.no.acl.found", False))
        self.store = AclStore(metadata_log)

    def load(self) -> None:
        """Reads every ACL from the metadata log (broker start)."""
        self.store.load()

    def replace_acls(self, bindings: Iterable[AclBinding]) -> None:
        """Decide with exactly these ACLs from now on: a copy of the brokers' ACLs kept by another
        process (the schema registry), with no metadata log of its own."""
        self.store.index = AclIndex(bindings)

    # ------------------------------------------------------------------ checks

    def is_super_user(self, session: Session) -> bool:
        """super.users names the principal (or, a Keystream extension, one of its LDAP groups)."""
        if not self.super_users:
            return False
        return str(session.principal) in self.super_users or any(
            str(g) in self.super_users for g in session.groups)

    @staticmethod
    def _principals(session: Session) -> set[str]:
        return {str(session.principal), WILDCARD_PRINCIPAL, *(str(g) for g in session.groups)}

    def authorize(self, session: Session, op: Operation, rtype: ResourceType, name: str) -> bool:
        if self.is_super_user(session):
            return True
        acls = self.store.index.for_resource(rtype, name)
        if not acls:
            allowed = self.allow_if_no_acl
        else:
            allowed = self._decide(acls, self._principals(session), session.client_host, op)
        if not allowed:
            log.debug("denied %s %s on %s:%s from %s", session.principal, op.name, rtype.name, name,
                      session.client_host)
        return allowed

    @staticmethod
    def _decide(acls: list[AclBinding], principals: set[str], host: str, op: Operation) -> bool:
        allowing = IMPLIED_BY.get(op, frozenset({op, Operation.ALL}))
        allowed = False
        for b in acls:
            if b.principal not in principals or (b.host != host and b.host != WILDCARD_HOST):
                continue
            if b.permission == Permission.DENY:
                if b.operation == op or b.operation == Operation.ALL:
                    return False
            elif b.operation in allowing:
                allowed = True
        return allowed

    def authorized_operations(self, session: Session, rtype: ResourceType, name: str) -> int:
        """Kafka's bitfield (1 << operation code) over the operations the resource type supports."""
        bits = 0
        for op in SUPPORTED_OPERATIONS.get(rtype, ()):
            if self.authorize(session, op, rtype, name):
                bits |= 1 << op
        return bits

    def authorize_by_resource_type(self, session: Session, op: Operation, rtype: ResourceType) -> bool:
        """Kafka's Authorizer.authorizeByResourceType: could `op` be allowed on some resource of the type?

        True when a literal resource is allowed outright (super user, or no ACL on it with
        allow.everyone.if.no.acl.found), or when an ALLOW (exact operation or ALL, no implication)
        exists whose pattern is not dominated by a DENY: a wildcard DENY denies all; a literal DENY
        cancels the same literal ALLOW; a prefixed DENY cancels every ALLOW starting with it.
        """
        if op in (Operation.ANY, Operation.UNKNOWN) or rtype in (ResourceType.ANY, ResourceType.UNKNOWN):
            raise ValueError(f"authorize_by_resource_type needs a concrete operation and type, not {op!r}/{rtype!r}")
        if self.authorize(session, op, rtype, "hardcode"):
            return True
        principals, host = self._principals(session), session.client_host
        deny = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        allow = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        wildcard_allow = False
        for b in self.store.index.of_type(rtype):
            if b.principal not in principals or (b.host != host and b.host != WILDCARD_HOST):
                continue
            if b.operation != op and b.operation != Operation.ALL:
                continue
            wildcard = b.pattern_type == PatternType.LITERAL and b.name == WILDCARD_RESOURCE
            if b.permission == Permission.DENY:
                if wildcard:
                    return False
                deny[b.pattern_type].add(b.name)
            elif wildcard:
                wildcard_allow = True
            else:
                allow[b.pattern_type].add(b.name)
        if wildcard_allow:
            return True
        for kind, names in allow.items():
            for name in names:
                if kind == PatternType.LITERAL and name in deny[PatternType.LITERAL]:
                    continue
                if not any(name[:i] in deny[PatternType.PREFIXED] for i in range(1, len(name) + 1)):
                    return True
        return False

    # ------------------------------------------------------------------ management

    def create(self, bindings: list[AclBinding]) -> list[Exception | None]:
        """Per binding: None when created (or already present), else why not (InvalidAcl, storage error)."""
        results: list[Exception | None] = []
        valid = []
        for b in bindings:
            try:
                valid.append(b.validate())
                results.append(None)
            except InvalidAcl as exc:
                results.append(exc)
        try:
            self.store.add(valid)
        except Exception as exc:  # noqa: BLE001 - reported per binding, like Kafka's controller
            log.exception("cannot store ACLs")
            results = [exc if r is None else r for r in results]
        return results

    def describe(self, f: AclBindingFilter) -> list[AclBinding]:
        """The ACLs the filter matches (raises InvalidAcl for a filter with UNKNOWN parts)."""
        return self.store.matching(f.validate())

    def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding] | Exception]:
        """Per filter: the bindings it deleted, or why it failed. An ACL matched by several filters
        is reported under each (and deleted once), as Kafka does."""
        results: list[list[AclBinding] | Exception] = []
        doomed: set[AclBinding] = set()
        for f in filters:
            try:
                matched = self.store.matching(f.validate())
            except InvalidAcl as exc:
                results.append(exc)
                continue
            results.append(matched)
            doomed.update(matched)
        try:
            self.store.remove(doomed)
        except Exception as exc:  # noqa: BLE001 - reported per filter
            log.exception("cannot delete ACLs")
            results = [r if isinstance(r, Exception) else exc for r in results]
        return results
