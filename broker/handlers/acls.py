"""CreateAcls, DescribeAcls and DeleteAcls over the broker's Authorizer, as Kafka's AclApis answers.

The APIs themselves need Cluster Alter (create, delete) or Cluster Describe (describe), else
CLUSTER_AUTHORIZATION_FAILED. Bad bindings and filters fail one by one with INVALID_REQUEST and a
message; wire codes a newer client may send are read as UNKNOWN (Kafka's fromCode) and refused.
Before v1 the pattern type is not on the wire and is LITERAL, so older clients see only literal ACLs.

Tenants: a session of a tenant (auth/tenants.py) may use these APIs when it is a tenant admin (or its
ACLs grant the Cluster operation), and then only inside its tenant, whatever its ACLs say: it creates,
sees and deletes only LITERAL or PREFIXED topic/group/transactional-id patterns inside the tenant's
prefix for the tenant's own principals (`tenant_acl_scope`). A creation outside that is refused with
CLUSTER_AUTHORIZATION_FAILED and the same message as a caller without Cluster Alter, so the answer
says nothing about what exists outside; ACLs outside are neither listed nor deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import partial

from keystream.auth.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclBindingFilter,
    InvalidAcl,
    Operation,
    ResourceType,
)
from keystream.auth.acl.authorizer import tenant_acl_scope
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.create_acls_request import CreateAclsRequest
from keystream.broker.protocol.messages.create_acls_response import AclCreationResult, CreateAclsResponse
from keystream.broker.protocol.messages.delete_acls_request import DeleteAclsRequest
from keystream.broker.protocol.messages.delete_acls_response import (
    DeleteAclsFilterResult,
    DeleteAclsMatchingAcl,
    DeleteAclsResponse,
)
from keystream.broker.protocol.messages.describe_acls_request import DescribeAclsRequest
from keystream.broker.protocol.messages.describe_acls_response import (
    AclDescription,
    DescribeAclsResource,
    DescribeAclsResponse,
)

CLUSTER_AUTH_MESSAGE = "Cluster authorization failed."


def _error(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, InvalidAcl):
        return ErrorCode.INVALID_REQUEST, str(exc)
    if isinstance(exc, KafkaError):
        return exc.code, exc.message or exc.code.name
    return ErrorCode.UNKNOWN_SERVER_ERROR, "The server experienced an unexpected error when processing the request."


def _filter(f) -> AclBindingFilter:
    return AclBindingFilter(f.resource_type_filter, f.resource_name_filter, f.pattern_type_filter,
                            f.principal_filter, f.host_filter, f.operation, f.permission_type)


def _cluster_allowed(ctx, op: Operation) -> bool:
    return ctx.allowed(op, ResourceType.CLUSTER, CLUSTER_NAME)


Scope = Callable[[AclBinding], bool]


def _access(ctx, op: Operation) -> tuple[bool, Scope | None]:
    """(may use the API, the bindings it may manage: None for all)."""
    tenant = ctx.broker.authorizer.tenant_of(ctx.session)
    if tenant is None:
        return _cluster_allowed(ctx, op), None
    return tenant.is_admin(ctx.session) or _cluster_allowed(ctx, op), partial(tenant_acl_scope, tenant)


def _out_of_scope(b: AclBinding, scope: Scope) -> Exception | None:
    """Why a tenant admin may not create `b`: INVALID_REQUEST for a malformed binding (as anyone
    gets), else CLUSTER_AUTHORIZATION_FAILED when it lies outside the tenant."""
    try:
        b.validate()
    except InvalidAcl as exc:
        return exc
    return None if scope(b) else KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE)


@api(CreateAclsRequest)
async def create_acls(ctx, req: CreateAclsRequest) -> CreateAclsResponse:
    allowed, scope = _access(ctx, Operation.ALTER)
    if not allowed:
        return CreateAclsResponse(0, [AclCreationResult(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE)
                                      for _ in req.creations])
    bindings = [AclBinding(c.resource_type, c.resource_name, c.resource_pattern_type, c.principal, c.host,
                           c.operation, c.permission_type) for c in req.creations]
    refused = [None if scope is None else _out_of_scope(b, scope) for b in bindings]
    created = iter(ctx.broker.authorizer.create([b for b, r in zip(bindings, refused, strict=True) if r is None]))
    results = []
    for refusal in refused:
        outcome = refusal if refusal is not None else next(created)
        results.append(AclCreationResult(0, None) if outcome is None else AclCreationResult(*_error(outcome)))
    return CreateAclsResponse(0, results)


def _describe_resources(bindings: list[AclBinding]) -> list[DescribeAclsResource]:
    """Bindings grouped by resource pattern, as Kafka's DescribeAclsResponse.aclsResources."""
    grouped: dict[tuple, list[AclDescription]] = defaultdict(list)
    for b in sorted(bindings, key=_order):
        grouped[(b.resource_type, b.name, b.pattern_type)].append(
            AclDescription(b.principal, b.host, b.operation, b.permission))
    return [DescribeAclsResource(rt, name, pt, acls) for (rt, name, pt), acls in grouped.items()]


def _order(b: AclBinding) -> tuple:
    return (b.resource_type, b.name, b.pattern_type, b.principal, b.host, b.operation, b.permission)


@api(DescribeAclsRequest)
async def describe_acls(ctx, req: DescribeAclsRequest) -> DescribeAclsResponse:
    allowed, scope = _access(ctx, Operation.DESCRIBE)
    if not allowed:
        return DescribeAclsResponse(0, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE, [])
    try:
        found = ctx.broker.authorizer.describe(_filter(req), scope)
    except InvalidAcl as exc:
        return DescribeAclsResponse(0, *_error(exc), [])
    return DescribeAclsResponse(0, 0, None, _describe_resources(found))


def _deleted(b: AclBinding) -> DeleteAclsMatchingAcl:
    return DeleteAclsMatchingAcl(0, None, b.resource_type, b.name, b.pattern_type, b.principal, b.host,
                                 b.operation, b.permission)


@api(DeleteAclsRequest)
async def delete_acls(ctx, req: DeleteAclsRequest) -> DeleteAclsResponse:
    allowed, scope = _access(ctx, Operation.ALTER)
    if not allowed:
        return DeleteAclsResponse(0, [DeleteAclsFilterResult(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                                             CLUSTER_AUTH_MESSAGE, []) for _ in req.filters])
    results = []
    for outcome in ctx.broker.authorizer.delete([_filter(f) for f in req.filters], scope):
        if isinstance(outcome, Exception):
            results.append(DeleteAclsFilterResult(*_error(outcome), []))
        else:
            results.append(DeleteAclsFilterResult(0, None, [_deleted(b) for b in sorted(outcome, key=_order)]))
    return DeleteAclsResponse(0, results)
