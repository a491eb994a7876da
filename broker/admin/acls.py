"""AclService over the broker's Authorizer, with the rights of Kafka's CreateAcls/DescribeAcls/
DeleteAcls (broker/handlers/acls.py): Cluster ALTER to create and delete, Cluster DESCRIBE to list,
for a caller of no tenant. A tenant admin, or a tenant's session holding that Cluster right through
an ACL, creates, sees and deletes only LITERAL/PREFIXED patterns inside its tenant's prefix for its
tenant's principals (`tenant_acl_scope`). A creation outside that scope is PERMISSION_DENIED with
the same message as a caller without the Cluster right.

Unlike the Kafka API, CreateAcls is all or nothing: every binding is validated (INVALID_ARGUMENT
naming the first bad one) and authorized before any is stored. ACL changes run on the event loop,
as the Kafka handlers do, because authorization reads the ACL index there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from keystream.auth.acl import WILDCARD_HOST, AclBinding, AclBindingFilter, InvalidAcl, Operation
from keystream.auth.acl.authorizer import tenant_acl_scope
from keystream.broker.admin.base import Caller, Service, check_count, check_text, denied, invalid, rpc
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc

log = logging.getLogger("keystream.admin")

Scope = Callable[[AclBinding], bool]


def _access(caller: Caller, op: Operation) -> Scope | None:
    """The bindings the caller may manage (None: all); PERMISSION_DENIED when it may use none."""
    tenant = caller.tenant_scope(op)
    if tenant is not None:
        return partial(tenant_acl_scope, tenant)
    caller.require_cluster(op)
    return None


def binding(m: pb.AclBinding, where: str) -> AclBinding:
    b = AclBinding(m.resource_type, check_text(m.resource_name, f"{where}.resource_name"), m.pattern_type,
                   check_text(m.principal, f"{where}.principal"),
                   check_text(m.host, f"{where}.host", empty_ok=True) or WILDCARD_HOST, m.operation, m.permission)
    try:
        return b.validate()
    except InvalidAcl as exc:
        raise invalid(f"{where}: {exc}") from None


def to_message(b: AclBinding) -> pb.AclBinding:
    return pb.AclBinding(resource_type=int(b.resource_type), resource_name=b.name, pattern_type=int(b.pattern_type),
                         principal=b.principal, host=b.host, operation=int(b.operation), permission=int(b.permission))


def _optional(m, field: str, where: str) -> str | None:
    return check_text(getattr(m, field), f"{where}.{field}", empty_ok=True) if m.HasField(field) else None


def binding_filter(m: pb.AclBindingFilter, where: str) -> AclBindingFilter:
    f = AclBindingFilter(m.resource_type, _optional(m, "resource_name", where), m.pattern_type,
                         _optional(m, "principal", where), _optional(m, "host", where), m.operation, m.permission)
    try:
        return f.validate()
    except InvalidAcl as exc:
        raise invalid(f"{where}: {exc} (use the ..._ANY values to match everything)") from None


def _order(b: AclBinding) -> tuple:
    return (b.resource_type, b.name, b.pattern_type, b.principal, b.host, b.operation, b.permission)


class AclService(Service, admin_pb2_grpc.AclServiceServicer):
    @rpc
    async def CreateAcls(self, request: pb.CreateAclsRequest, caller: Caller) -> pb.CreateAclsResponse:
        scope = _access(caller, Operation.ALTER)
        check_count(request.bindings, "bindings")
        bindings = [binding(m, f"bindings[{i}]") for i, m in enumerate(request.bindings)]
        if scope is not None and not all(scope(b) for b in bindings):
            raise denied()
        errors = [e for e in caller.authorizer.create(bindings) if e is not None]
        if errors:
            raise errors[0]
        log.info("%s created %d ACLs", caller.session.principal, len(bindings))
        return pb.CreateAclsResponse()

    @rpc
    async def DeleteAcls(self, request: pb.DeleteAclsRequest, caller: Caller) -> pb.DeleteAclsResponse:
        scope = _access(caller, Operation.ALTER)
        check_count(request.filters, "filters")
        filters = [binding_filter(m, f"filters[{i}]") for i, m in enumerate(request.filters)]
        deleted: set[AclBinding] = set()
        for outcome in caller.authorizer.delete(filters, scope):
            if isinstance(outcome, Exception):
                raise outcome
            deleted.update(outcome)
        log.info("%s deleted %d ACLs", caller.session.principal, len(deleted))
        return pb.DeleteAclsResponse(deleted=[to_message(b) for b in sorted(deleted, key=_order)])

    @rpc
    async def ListAcls(self, request: pb.ListAclsRequest, caller: Caller) -> pb.ListAclsResponse:
        scope = _access(caller, Operation.DESCRIBE)
        f = binding_filter(request.filter, "filter") if request.HasField("filter") else AclBindingFilter()
        found = caller.authorizer.describe(f, scope)
        return pb.ListAclsResponse(bindings=[to_message(b) for b in sorted(found, key=_order)])
