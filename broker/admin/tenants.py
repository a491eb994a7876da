"""TenantService over the broker's TenantStore (auth/tenants.py).

Creating, updating and deleting tenants needs Cluster ALTER; reading them Cluster DESCRIBE; both
only for callers of no tenant (base.Caller.cluster_allowed). A tenant admin reads its own tenant
only (GetTenant of another tenant is NOT_FOUND for it, as for a tenant that does not exist, and
ListTenants lists its own): changing members, quotas or limits would let a tenant admin grow its own
share, so that stays with the cluster's admins.

Writes read, change and write the tenant under the store's write lock (`TenantStore.create` and
`update`), so concurrent calls never undo each other. A principal that leaves a tenant (removed, or
its tenant deleted) loses the ACLs a tenant admin could have made for it (`tenant_acl_scope`): out
of the tenant they would apply as ordinary ACLs that no tenant admin sees any more.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from functools import partial

import grpc

from keystream.auth.acl import AclBindingFilter, Operation
from keystream.auth.acl.authorizer import tenant_acl_scope
from keystream.auth.principal import Principal
from keystream.auth.tenants import (
    QUOTA_KEYS,
    InvalidTenant,
    Tenant,
    TenantConflict,
    TenantExists,
    TenantNotFound,
)
from keystream.broker.admin.base import (
    AdminError,
    Caller,
    Service,
    blocking,
    check_count,
    check_text,
    denied,
    invalid,
    not_found,
    rpc,
)
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc
from keystream.broker.tenant_usage import UsageSnapshot

log = logging.getLogger("keystream.admin")

_MASK_FIELDS = ("members", "admins", "quotas", "max_partitions", "max_storage_bytes")


def _principals(values, field: str) -> frozenset[str]:
    check_count(values, field)
    return frozenset(check_text(v, field) for v in values)


def from_message(m: pb.Tenant) -> Tenant:
    """A validated Tenant (INVALID_ARGUMENT naming the problem otherwise)."""
    check_text(m.name, "tenant.name", 63)
    try:
        return Tenant(m.name, _principals(m.members, "tenant.members"), _principals(m.admins, "tenant.admins"),
                      dict(m.quotas),
                      m.max_partitions if m.HasField("max_partitions") else None,
                      m.max_storage_bytes if m.HasField("max_storage_bytes") else None)
    except InvalidTenant as exc:
        raise invalid(str(exc)) from None


def _usage_message(now: UsageSnapshot, topics: int) -> pb.TenantUsage:
    return pb.TenantUsage(topics=topics, partitions=now.partitions, storage_bytes=now.storage_bytes,
                          bytes_in=now.bytes_in, bytes_out=now.bytes_out, throttle_ms=now.throttle_ms,
                          rejected_requests=now.rejected_requests)


def usage(broker, tenant: Tenant) -> pb.TenantUsage:
    """Counters and sizes from the broker's per-tenant usage (the metrics' source) plus the topic count."""
    topics = sum(1 for name in list(broker.logs.topics) if tenant.owns(name))
    return _usage_message(broker.tenant_usage.snapshot(tenant.name), topics)


def usages(broker) -> dict[str, pb.TenantUsage]:
    """Every tenant's usage; topics counted in one pass over the topic table (tenant names hold no
    dot, so a topic's tenant is the name before its first dot)."""
    topics = Counter(owner for owner, dot, _ in (n.partition(".") for n in list(broker.logs.topics)) if dot)
    return {name: _usage_message(now, topics[name]) for name, now in broker.tenant_usage.snapshots().items()}


def to_message(tenant: Tenant, usage_: pb.TenantUsage | None = None) -> pb.Tenant:
    m = pb.Tenant(name=tenant.name, members=sorted(tenant.members), admins=sorted(tenant.admins),
                  quotas=dict(tenant.quotas))
    if tenant.max_partitions is not None:
        m.max_partitions = tenant.max_partitions
    if tenant.max_storage_bytes is not None:
        m.max_storage_bytes = tenant.max_storage_bytes
    if usage_ is not None:
        m.usage.CopyFrom(usage_)
    return m


def _conflict(exc: TenantConflict) -> AdminError:
    return AdminError(grpc.StatusCode.FAILED_PRECONDITION, str(exc))


def _drop_acls(caller: Caller, tenant: Tenant, principals: Iterable[str]) -> int:
    """Deletes the ACLs of `principals`, who are leaving `tenant`, that lie in its scope (those its
    admins manage); answers how many. On the event loop, as every ACL change."""
    filters = [AclBindingFilter(principal=p) for p in sorted(principals)]
    if not filters:
        return 0
    deleted = set()
    for outcome in caller.authorizer.delete(filters, partial(tenant_acl_scope, tenant)):
        if isinstance(outcome, Exception):
            raise outcome
        deleted.update(outcome)
    return len(deleted)


def _listed(principals: Iterable[str], most: int = 5) -> str:
    names = sorted(principals)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _changes(before: Tenant, after: Tenant) -> str:
    """What an update changed, for the log."""
    out = []
    for field in ("members", "admins"):
        old, new = getattr(before, field), getattr(after, field)
        if new - old:
            out.append(f"{field} +[{_listed(new - old)}]")
        if old - new:
            out.append(f"{field} -[{_listed(old - new)}]")
    if dict(before.quotas) != dict(after.quotas):
        out.append(f"quotas {dict(sorted(after.quotas.items()))}")
    for limit in ("max_partitions", "max_storage_bytes"):
        if getattr(before, limit) != getattr(after, limit):
            out.append(f"{limit}={getattr(after, limit)}")
    return "; ".join(out) or "nothing changed"


def _principal(text: str, field: str) -> str:
    try:
        return str(Principal.parse(check_text(text, field)))
    except ValueError:
        raise invalid(f"{field}: {text[:100]!r} is not of the form Type:name") from None


def _edit(request: pb.UpdateTenantRequest, members: set[str], admins: set[str]) -> None:
    """The add_*/remove_* lists, in that order: members, then admins."""
    for field in ("add_members", "remove_members", "add_admins", "remove_admins"):
        check_count(getattr(request, field), field)
    members.update(_principal(p, "add_members") for p in request.add_members)
    for p in (_principal(p, "remove_members") for p in request.remove_members):
        if p not in members:
            raise invalid(f"remove_members: {p} is not a member of tenant {request.tenant.name}")
        members.discard(p)
        admins.discard(p)
    admins.update(_principal(p, "add_admins") for p in request.add_admins)
    for p in (_principal(p, "remove_admins") for p in request.remove_admins):
        if p not in admins:
            raise invalid(f"remove_admins: {p} is not an admin of tenant {request.tenant.name}")
        admins.discard(p)  # still a member


def _paths(request: pb.UpdateTenantRequest) -> list[str]:
    """The update mask; without one (no paths), the fields set in the request's tenant (AIP-134's
    implied mask), so an update naming only some fields, or only add/remove lists, keeps the rest."""
    paths = list(request.update_mask.paths)
    check_count(paths, "update_mask.paths", 16)
    if paths:
        return paths
    t = request.tenant
    return [f for f in ("members", "admins", "quotas") if getattr(t, f)] + \
        [f for f in ("max_partitions", "max_storage_bytes") if t.HasField(f)]


def _merge(request: pb.UpdateTenantRequest, paths: list[str], current: Tenant) -> Tenant:
    """`current` with the `paths` fields taken from the request's tenant, then its add/remove lists
    applied (validated as a whole by Tenant). Runs under the store's write lock."""
    update = request.tenant
    members, admins = set(current.members), set(current.admins)
    quotas = dict(current.quotas)
    limits = {"max_partitions": current.max_partitions, "max_storage_bytes": current.max_storage_bytes}
    for path in paths:
        field, _, key = path.partition(".")
        if field == "members" and not key:
            members = set(_principals(update.members, "tenant.members"))
        elif field == "admins" and not key:
            admins = set(_principals(update.admins, "tenant.admins"))
        elif field == "quotas" and not key:
            quotas = dict(update.quotas)
        elif field == "quotas" and key in QUOTA_KEYS:
            if key in update.quotas:
                quotas[key] = update.quotas[key]
            else:
                quotas.pop(key, None)
        elif field in limits and not key:
            limits[field] = getattr(update, field) if update.HasField(field) else None
        else:
            raise invalid(f"update_mask path {path[:100]!r} is not one of {', '.join(_MASK_FIELDS)}, quotas.<key>"
                          f" ({', '.join(sorted(QUOTA_KEYS))})")
    _edit(request, members, admins)
    try:
        return Tenant(current.name, frozenset(members), frozenset(admins), quotas, **limits)
    except InvalidTenant as exc:
        raise invalid(str(exc)) from None


class TenantService(Service, admin_pb2_grpc.TenantServiceServicer):
    @property
    def store(self):
        return self.broker.tenants

    @rpc
    async def CreateTenant(self, request: pb.CreateTenantRequest, caller: Caller) -> pb.Tenant:
        caller.require_cluster(Operation.ALTER)
        tenant = from_message(request.tenant)
        try:
            await blocking(self.store.create, tenant)
        except TenantExists as exc:
            raise AdminError(grpc.StatusCode.ALREADY_EXISTS, str(exc)) from None
        except TenantConflict as exc:
            raise _conflict(exc) from None
        log.info("%s created tenant %s", caller.session.principal, tenant.name)
        return to_message(tenant, usage(self.broker, tenant))

    def _readable(self, caller: Caller, name: str) -> Tenant:
        check_text(name, "name", 63)
        if caller.cluster_allowed(Operation.DESCRIBE):
            tenant = self.store.get(name)
        else:
            own = caller.administered_tenant()
            if own is None:
                raise denied()
            tenant = own if own.name == name else None
        if tenant is None:
            raise not_found(f"tenant {name} does not exist")
        return tenant

    @rpc
    async def GetTenant(self, request: pb.GetTenantRequest, caller: Caller) -> pb.Tenant:
        tenant = self._readable(caller, request.name)
        return to_message(tenant, usage(self.broker, tenant))

    @rpc
    async def ListTenants(self, request: pb.ListTenantsRequest, caller: Caller) -> pb.ListTenantsResponse:
        if caller.cluster_allowed(Operation.DESCRIBE):
            tenants = self.store.all()
            found = await blocking(usages, self.broker) if request.include_usage else {}
        else:
            own = caller.administered_tenant()
            if own is None:
                raise denied()
            tenants = [own]
            found = {own.name: usage(self.broker, own)} if request.include_usage else {}
        return pb.ListTenantsResponse(tenants=[to_message(t, found.get(t.name)) for t in tenants])

    @rpc
    async def UpdateTenant(self, request: pb.UpdateTenantRequest, caller: Caller) -> pb.Tenant:
        caller.require_cluster(Operation.ALTER)
        name = check_text(request.tenant.name, "tenant.name", 63)
        try:
            before, after = await blocking(self.store.update, name, partial(_merge, request, _paths(request)))
        except TenantNotFound as exc:
            raise not_found(str(exc)) from None
        except TenantConflict as exc:
            raise _conflict(exc) from None
        dropped = _drop_acls(caller, before, before.members - after.members)
        log.info("%s updated tenant %s: %s (%d ACLs of removed members deleted)", caller.session.principal, name,
                 _changes(before, after), dropped)
        return to_message(after, usage(self.broker, after))

    @rpc
    async def DeleteTenant(self, request: pb.DeleteTenantRequest, caller: Caller) -> pb.DeleteTenantResponse:
        caller.require_cluster(Operation.ALTER)
        name = check_text(request.name, "name", 63)
        tenant = await blocking(self.store.remove, name)
        if tenant is None:
            raise not_found(f"tenant {name} does not exist")
        dropped = _drop_acls(caller, tenant, tenant.members)
        log.info("%s deleted tenant %s (%d ACLs of its members deleted)", caller.session.principal, name, dropped)
        return pb.DeleteTenantResponse()
