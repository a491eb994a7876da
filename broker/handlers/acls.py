"""CreateAcls, DescribeAcls and DeleteAcls over the broker's Authorizer, as Kafka's AclApis answers.

The APIs themselves need Cluster Alter (create, delete) or Cluster Describe (describe), else
CLUSTER_AUTHORIZATION_FAILED. Bad bindings and filters fail one by one with INVALID_REQUEST and a
message; wire codes a newer client may send are read as UNKNOWN (Kafka's fromCode) and refused.
Before v1 the pattern type is not on the wire and is LITERAL, so older clients see only literal ACLs.
"""

from __future__ import annotations

from collections import defaultdict

from keystream.auth.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclBindingFilter,
    InvalidAcl,
    Operation,
    ResourceType,
)
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


@api(CreateAclsRequest)
async def create_acls(ctx, req: CreateAclsRequest) -> CreateAclsResponse:
    if not _cluster_allowed(ctx, Operation.ALTER):
        return CreateAclsResponse(0, [AclCreationResult(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE)
                                      for _ in req.creations])
    bindings = [AclBinding(c.resource_type, c.resource_name, c.resource_pattern_type, c.principal, c.host,
                           c.operation, c.permission_type) for c in req.creations]
    results = []
    for outcome in ctx.broker.authorizer.create(bindings):
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
    if not _cluster_allowed(ctx, Operation.DESCRIBE):
        return DescribeAclsResponse(0, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE, [])
    try:
        found = ctx.broker.authorizer.describe(_filter(req))
    except InvalidAcl as exc:
        return DescribeAclsResponse(0, *_error(exc), [])
    return DescribeAclsResponse(0, 0, None, _describe_resources(found))


def _deleted(b: AclBinding) -> DeleteAclsMatchingAcl:
    return DeleteAclsMatchingAcl(0, None, b.resource_type, b.name, b.pattern_type, b.principal, b.host,
                                 b.operation, b.permission)


@api(DeleteAclsRequest)
async def delete_acls(ctx, req: DeleteAclsRequest) -> DeleteAclsResponse:
    if not _cluster_allowed(ctx, Operation.ALTER):
        return DeleteAclsResponse(0, [DeleteAclsFilterResult(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                                             CLUSTER_AUTH_MESSAGE, []) for _ in req.filters])
    results = []
    for outcome in ctx.broker.authorizer.delete([_filter(f) for f in req.filters]):
        if isinstance(outcome, Exception):
            results.append(DeleteAclsFilterResult(*_error(outcome), []))
        else:
            results.append(DeleteAclsFilterResult(0, None, [_deleted(b) for b in sorted(outcome, key=_order)]))
    return DeleteAclsResponse(0, results)
