"""TenantService over the broker's TenantStore (auth/tenants.py).

Creating, updating and deleting tenants needs Cluster ALTER; reading them Cluster DESCRIBE. A
tenant admin without those reads its own tenant only (GetTenant of another tenant is NOT_FOUND for
it, as for a tenant that does not exist, and ListTenants lists its own): changing members, quotas
or limits would let a tenant admin grow its own share, so that stays with the cluster's admins.
"""

from __future__ import annotations

import logging

import grpc

from keystream.auth.acl import Operation
from keystream.auth.principal import Principal
from keystream.auth.tenants import QUOTA_KEYS, InvalidTenant, Tenant, TenantConflict
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
from keystream.broker.tenant_usage import TenantUsage

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


def usage(broker, tenant: Tenant) -> pb.TenantUsage:
    """Counters and sizes from the broker's per-tenant usage (the metrics' source) plus the topic count."""
    now = TenantUsage.of(broker).snapshot(tenant.name)
    topics = sum(1 for name in list(broker.logs.topics) if tenant.owns(name))
    return pb.TenantUsage(topics=topics, partitions=now.partitions, storage_bytes=now.storage_bytes,
                          bytes_in=now.bytes_in, bytes_out=now.bytes_out, throttle_ms=now.throttle_ms,
                          rejected_requests=now.rejected_requests)


def to_message(tenant: Tenant, broker=None) -> pb.Tenant:
    m = pb.Tenant(name=tenant.name, members=sorted(tenant.members), admins=sorted(tenant.admins),
                  quotas=dict(tenant.quotas))
    if tenant.max_partitions is not None:
        m.max_partitions = tenant.max_partitions
    if tenant.max_storage_bytes is not None:
        m.max_storage_bytes = tenant.max_storage_bytes
    if broker is not None:
        m.usage.CopyFrom(usage(broker, tenant))
    return m


def _conflict(exc: TenantConflict) -> AdminError:
    return AdminError(grpc.StatusCode.FAILED_PRECONDITION, str(exc))


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


def _merge(current: Tenant, request: pb.UpdateTenantRequest) -> Tenant:
    """`current` with the masked fields taken from the request's tenant, then its add/remove lists
    applied (validated as a whole by Tenant)."""
    update, paths = request.tenant, list(request.update_mask.paths)
    edits = any((request.add_members, request.remove_members, request.add_admins, request.remove_admins))
    members, admins = set(current.members), set(current.admins)
    quotas = dict(current.quotas)
    limits = {"max_partitions": current.max_partitions, "max_storage_bytes": current.max_storage_bytes}
    for path in paths or ([] if edits else _MASK_FIELDS):
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
        if self.store.get(tenant.name) is not None:
            raise AdminError(grpc.StatusCode.ALREADY_EXISTS, f"tenant {tenant.name} already exists")
        try:
            await blocking(self.store.put, tenant)
        except TenantConflict as exc:
            raise _conflict(exc) from None
        log.info("%s created tenant %s", caller.session.principal, tenant.name)
        return to_message(tenant, self.broker)

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
        return to_message(self._readable(caller, request.name), self.broker)

    @rpc
    async def ListTenants(self, request: pb.ListTenantsRequest, caller: Caller) -> pb.ListTenantsResponse:
        if caller.cluster_allowed(Operation.DESCRIBE):
            tenants = self.store.all()
        else:
            own = caller.administered_tenant()
            if own is None:
                raise denied()
            tenants = [own]
        return pb.ListTenantsResponse(tenants=[to_message(t, self.broker) for t in tenants])

    @rpc
    async def UpdateTenant(self, request: pb.UpdateTenantRequest, caller: Caller) -> pb.Tenant:
        caller.require_cluster(Operation.ALTER)
        name = check_text(request.tenant.name, "tenant.name", 63)
        paths = list(request.update_mask.paths)
        check_count(paths, "update_mask.paths", 16)
        current = self.store.get(name)
        if current is None:
            raise not_found(f"tenant {name} does not exist")
        tenant = _merge(current, request)
        try:
            await blocking(self.store.put, tenant)
        except TenantConflict as exc:
            raise _conflict(exc) from None
        log.info("%s updated tenant %s (%s)", caller.session.principal, name, ",".join(paths) or "all fields")
        return to_message(tenant, self.broker)

    @rpc
    async def DeleteTenant(self, request: pb.DeleteTenantRequest, caller: Caller) -> pb.DeleteTenantResponse:
        caller.require_cluster(Operation.ALTER)
        name = check_text(request.name, "name", 63)
        if not await blocking(self.store.remove, name):
            raise not_found(f"tenant {name} does not exist")
        log.info("%s deleted tenant %s", caller.session.principal, name)
        return pb.DeleteTenantResponse()
