"""The one Authorizer every handler asks, with the semantics of Apache Kafka's StandardAuthorizer.

Decision order for `authorize`: super users are allowed everything; otherwise the ACLs whose
pattern covers the resource (literal name, literal `*`, or a prefix) are considered for the
session's principals (the principal, its LDAP groups, and `User:*`) and host (exact or `*`).
A matching DENY (same operation or ALL) wins; then a matching ALLOW (same operation, ALL, or one
that implies it); a resource with no ACL at all is allowed only with
`allow.everyone.if.no.acl.found=true`; everything else is denied.

Tenants (auth/tenants.py) narrow this for a session whose principal (or group) belongs to one,
after the super-user check (super users belong to no tenant):
- TOPIC, GROUP and TRANSACTIONAL_ID names outside the tenant's prefix (`acme.`, case-sensitive) are
  denied whatever the ACLs say; callers already answer as for a missing resource where Kafka hides
  existence.
- Inside the prefix a matching DENY wins; else the tenant's implicit permissions allow (TENANT_IMPLICIT);
  else the ACLs, which must ALLOW explicitly.
- Every other resource (CLUSTER, ...) gets only what ACLs grant explicitly, never CLUSTER CREATE,
  DELETE or CLUSTER_ACTION (TENANT_NEVER_ON_CLUSTER): each reaches every topic (create anywhere,
  delete any topic, read any partition as a follower); inside the namespace CREATE and DELETE are
  implicit anyway. For tenant sessions
  `allow.everyone.if.no.acl.found` never applies: it would hand the cluster to every tenant. Nor does
  it apply to a TOPIC, GROUP or TRANSACTIONAL_ID name inside an existing tenant's namespace, for anyone:
  those names normally carry no ACL, and it would open them to every principal of no tenant.
`tenant_of` is the one place a session's tenant is resolved (quotas and usage ask it too).
Being a tenant admin grants nothing here; the ACL handlers and the admin API check that role
themselves, and scope what an admin manages to the tenant (`tenant_acl_scope`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
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
from keystream.auth.tenants import Tenant, TenantStore

log = logging.getLogger("keystream.authorizer")


# What a tenant's members may do inside its namespace without any ACL (an explicit DENY still wins).
TENANT_IMPLICIT: dict[ResourceType, frozenset[Operation]] = {
    ResourceType.TOPIC: frozenset({Operation.CREATE, Operation.DESCRIBE, Operation.READ, Operation.WRITE,
                                   Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS, Operation.DELETE,
                                   Operation.ALTER}),  # ALTER: CreatePartitions, within max_partitions
    ResourceType.GROUP: frozenset({Operation.READ, Operation.DESCRIBE, Operation.DELETE}),
    ResourceType.TRANSACTIONAL_ID: frozenset({Operation.WRITE, Operation.DESCRIBE}),
}
NAMESPACED = frozenset(TENANT_IMPLICIT)
TENANT_NEVER_ON_CLUSTER = frozenset({Operation.CREATE, Operation.DELETE, Operation.CLUSTER_ACTION})


def tenant_acl_scope(tenant: Tenant, b: AclBinding) -> bool:
    """Whether a tenant admin may create, see or delete the binding: a LITERAL or PREFIXED pattern on
    a namespaced resource inside the tenant's prefix, for one of the tenant's own principals."""
    return (b.resource_type in NAMESPACED
            and b.pattern_type in (PatternType.LITERAL, PatternType.PREFIXED)
            and tenant.owns(b.name)
            and b.principal in tenant.members)


def parse_super_users(value: str | Iterable[str] | None) -> frozenset[str]:
    """`super.users`: `;`-separated principals (Kafka's format); blanks are ignored."""
    if value is None:
        return frozenset()
    items = value.split(";") if isinstance(value, str) else value
    return frozenset(p.strip() for p in items if p.strip())


class Authorizer:
    """ACL checks plus ACL management, over an AclStore kept in the broker's metadata log."""

    def __init__(self, config: Mapping[str, Any], metadata_log, tenants: TenantStore | None = None):
        self.super_users = parse_super_users(config.get("super.users"))
        self.allow_if_no_acl = bool(config.get("allow.everyone.if.no.acl.found", False))
        self.store = AclStore(metadata_log)
        self.tenants = tenants
        # Called with (session, tenant) when a tenant's session is denied (the broker's TenantUsage
        # counts refusals); bitfields of authorized operations are not refusals and do not call it.
        self.on_tenant_denial: Callable[[Session, Tenant], None] | None = None

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

    def tenant_of(self, session: Session) -> Tenant | None:
        """The tenant whose rules bind the session: None for super users and principals of no tenant."""
        if self.tenants is None or self.is_super_user(session):
            return None
        return self.tenants.of(session)

    def authorize(self, session: Session, op: Operation, rtype: ResourceType, name: str) -> bool:
        return self._authorize(session, op, rtype, name, self.on_tenant_denial)

    def _authorize(self, session: Session, op: Operation, rtype: ResourceType, name: str, on_denial) -> bool:
        if self.is_super_user(session):
            return True
        tenant = self.tenant_of(session)
        if tenant is not None:
            allowed = self._tenant_decide(tenant, session, op, rtype, name)
            if not allowed and on_denial is not None:
                on_denial(session, tenant)
        else:
            acls = self.store.index.for_resource(rtype, name)
            if not acls:
                allowed = self.allow_if_no_acl and not self._in_a_namespace(rtype, name)
            else:
                allowed = self._decide(acls, self._principals(session), session.client_host, op)
        if not allowed:
            log.debug("denied %s %s on %s:%s from %s", session.principal, op.name, rtype.name, name,
                      session.client_host)
        return allowed

    def _in_a_namespace(self, rtype: ResourceType, name: str) -> bool:
        """A TOPIC/GROUP/TRANSACTIONAL_ID name inside an existing tenant's namespace (tenant names hold
        no dot): such a name never gets the no-ACL allowance, which would open it to every principal."""
        if self.tenants is None or rtype not in NAMESPACED:
            return False
        dot = name.find(".")
        return dot > 0 and self.tenants.get(name[:dot]) is not None

    def _tenant_decide(self, tenant: Tenant, session: Session, op: Operation, rtype: ResourceType,
                       name: str) -> bool:
        if rtype in NAMESPACED:
            if not tenant.owns(name):
                return False
            acls = self.store.index.for_resource(rtype, name)
            principals, host = self._principals(session), session.client_host
            if op in TENANT_IMPLICIT[rtype]:
                return not self._denied(acls, principals, host, op)
            return self._decide(acls, principals, host, op)
        if rtype is ResourceType.CLUSTER and op in TENANT_NEVER_ON_CLUSTER:
            return False
        return self._decide(self.store.index.for_resource(rtype, name), self._principals(session),
                            session.client_host, op)

    @staticmethod
    def _denied(acls: list[AclBinding], principals: set[str], host: str, op: Operation) -> bool:
        return any(b.permission == Permission.DENY and (b.operation == op or b.operation == Operation.ALL)
                   and b.principal in principals and (b.host == host or b.host == WILDCARD_HOST) for b in acls)

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
            if self._authorize(session, op, rtype, name, None):
                bits |= 1 << op
        return bits

    def authorize_by_resource_type(self, session: Session, op: Operation, rtype: ResourceType) -> bool:
        """Kafka's Authorizer.authorizeByResourceType: could `op` be allowed on some resource of the type?

        True when a literal resource is allowed outright (super user, or no ACL on it with
        allow.everyone.if.no.acl.found), or when an ALLOW (exact operation or ALL, no implication)
        exists whose pattern is not dominated by a DENY: a wildcard DENY denies all; a literal DENY
        cancels the same literal ALLOW; a prefixed DENY cancels every ALLOW starting with it.
        For a tenant's session only the parts of ALLOW patterns inside its namespace count, its
        implicit operations count unless a DENY covers the whole namespace, and TENANT_NEVER_ON_CLUSTER
        is never allowed (as in `authorize`).
        """
        if op in (Operation.ANY, Operation.UNKNOWN) or rtype in (ResourceType.ANY, ResourceType.UNKNOWN):
            raise ValueError(f"authorize_by_resource_type needs a concrete operation and type, not {op!r}/{rtype!r}")
        tenant = self.tenant_of(session)
        if tenant is None and self.authorize(session, op, rtype, "hardcode"):
            return True
        if tenant is not None and rtype is ResourceType.CLUSTER and op in TENANT_NEVER_ON_CLUSTER:
            return False
        namespaced = tenant is not None and rtype in NAMESPACED
        principals, host = self._principals(session), session.client_host
        deny = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        allow = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        wildcard_allow = False
        for b in self.store.index.of_type(rtype):
            if b.principal not in principals or (b.host != host and b.host != WILDCARD_HOST):
                continue
            if b.operation != op and b.operation != Operation.ALL:
                continue
            kind, name = b.pattern_type, b.name
            wildcard = kind == PatternType.LITERAL and name == WILDCARD_RESOURCE
            if b.permission == Permission.DENY:
                if wildcard:
                    return False
                deny[kind].add(name)
            elif namespaced:  # only the part of the pattern inside the tenant's namespace counts
                if wildcard or (kind == PatternType.PREFIXED and tenant.prefix.startswith(name)):
                    allow[PatternType.PREFIXED].add(tenant.prefix)
                elif tenant.owns(name):
                    allow[kind].add(name)
            elif wildcard:
                wildcard_allow = True
            else:
                allow[kind].add(name)
        if namespaced and op in TENANT_IMPLICIT[rtype]:  # allowed on the whole namespace unless a DENY covers it
            return not any(tenant.prefix.startswith(p) for p in deny[PatternType.PREFIXED])
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

    def describe(self, f: AclBindingFilter, scope: Callable[[AclBinding], bool] | None = None) -> list[AclBinding]:
        """The ACLs the filter matches (raises InvalidAcl for a filter with UNKNOWN parts), only those
        `scope` accepts when given (a tenant admin's view)."""
        found = self.store.matching(f.validate())
        return found if scope is None else [b for b in found if scope(b)]

    def delete(self, filters: list[AclBindingFilter],
               scope: Callable[[AclBinding], bool] | None = None) -> list[list[AclBinding] | Exception]:
        """Per filter: the bindings it deleted, or why it failed. An ACL matched by several filters
        is reported under each (and deleted once), as Kafka does. With `scope`, only the bindings it
        accepts are matched at all (a tenant admin deletes inside its tenant only)."""
        results: list[list[AclBinding] | Exception] = []
        doomed: set[AclBinding] = set()
        for f in filters:
            try:
                matched = self.describe(f, scope)
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
