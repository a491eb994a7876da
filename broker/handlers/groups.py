"""Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
DescribeGroups and DeleteGroups, translated between wire versions and the GroupCoordinator.

Version rules live here (which fields exist, what an older client expects in their place); the
coordinator answers in version-free results.

Authorization as in Kafka, checked before the coordinator sees the group, so an unauthorized caller
gets GROUP_AUTHORIZATION_FAILED whether the group exists or not: FindCoordinator needs Describe on
the group (or the transactional id), JoinGroup / SyncGroup / Heartbeat / LeaveGroup Read,
DescribeGroups Describe, DeleteGroups Delete. ListGroups lists every group with Describe on the
cluster, else only the groups the caller may Describe.
"""

from __future__ import annotations

import logging

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode
from keystream.broker.groups.results import JoinResult, LeaveResult
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.delete_groups_request import DeleteGroupsRequest
from keystream.broker.protocol.messages.delete_groups_response import (
    DeletableGroupResult,
    DeleteGroupsResponse,
)
from keystream.broker.protocol.messages.describe_groups_request import DescribeGroupsRequest
from keystream.broker.protocol.messages.describe_groups_response import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsResponse,
)
from keystream.broker.protocol.messages.find_coordinator_request import FindCoordinatorRequest
from keystream.broker.protocol.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse
from keystream.broker.protocol.messages.heartbeat_request import HeartbeatRequest
from keystream.broker.protocol.messages.heartbeat_response import HeartbeatResponse
from keystream.broker.protocol.messages.join_group_request import JoinGroupRequest
from keystream.broker.protocol.messages.join_group_response import JoinGroupResponse, JoinGroupResponseMember
from keystream.broker.protocol.messages.leave_group_request import LeaveGroupRequest
from keystream.broker.protocol.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from keystream.broker.protocol.messages.list_groups_response import ListedGroup, ListGroupsResponse
from keystream.broker.protocol.messages.sync_group_request import SyncGroupRequest
from keystream.broker.protocol.messages.sync_group_response import SyncGroupResponse

log = logging.getLogger("keystream.groups")

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
OPS_NOT_REQUESTED = -2147483648
GROUP_AUTHORIZATION_MESSAGE = "Group authorization failed."
TRANSACTIONAL_ID_AUTHORIZATION_MESSAGE = "Transactional Id authorization failed."
DENIED = ErrorCode.GROUP_AUTHORIZATION_FAILED


def group_allowed(ctx, op: Operation, group_id: str) -> bool:
    return ctx.allowed(op, ResourceType.GROUP, group_id)


def client_host(ctx) -> str:
    """Kafka reports the client address as InetAddress.toString(): "/127.0.0.1"."""
    host = ctx.client_host or ""
    return host if host.startswith("/") else f"/{host}"


# ---------------------------------------------------------------- FindCoordinator


def _coordinator(ctx, key_type: int, key: str) -> tuple[ErrorCode, str | None, int, str, int]:
    """(error, message, node id, host, port) for one key; -1/""/-1 is Kafka's "no node"."""
    broker = ctx.broker
    if key_type == KEY_TYPE_GROUP and not group_allowed(ctx, Operation.DESCRIBE, key):
        return DENIED, GROUP_AUTHORIZATION_MESSAGE, -1, "", -1
    if key_type == KEY_TYPE_TRANSACTION and not ctx.allowed(Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
        return (ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_MESSAGE,
                -1, "", -1)
    if key_type == KEY_TYPE_GROUP:
        if not broker.groups.started:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, "The group coordinator is not available.", -1, "", -1
        return ErrorCode.NONE, None, broker.node_id, *broker.endpoint(ctx.session.listener)
    if key_type == KEY_TYPE_TRANSACTION:
        return (ErrorCode.COORDINATOR_NOT_AVAILABLE, "Transactions are not supported yet by this broker.",
                -1, "", -1)
    return ErrorCode.INVALID_REQUEST, f"Unsupported coordinator key type {key_type}.", -1, "", -1


@api(FindCoordinatorRequest)
async def find_coordinator(ctx, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    key_type = req.key_type if ctx.version >= 1 else KEY_TYPE_GROUP
    if ctx.version >= 4:  # KIP-699: a batch of keys
        coordinators = []
        for key in req.coordinator_keys:
            error, message, node, host, port = _coordinator(ctx, key_type, key)
            coordinators.append(Coordinator(key=key, node_id=node, host=host, port=port, error_code=error,
                                            error_message=message))
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=coordinators)
    error, message, node, host, port = _coordinator(ctx, key_type, req.key)
    return FindCoordinatorResponse(throttle_time_ms=0, error_code=error, error_message=message, node_id=node,
                                   host=host, port=port)


# ---------------------------------------------------------------- JoinGroup / SyncGroup / Heartbeat / LeaveGroup


@api(JoinGroupRequest)
async def join_group(ctx, req: JoinGroupRequest) -> JoinGroupResponse:
    v = ctx.version
    instance_id = req.group_instance_id if v >= 5 else None
    if v >= 8 and req.reason:
        log.debug("group %s: join from %r: %s", req.group_id, req.member_id, req.reason)
    if not group_allowed(ctx, Operation.READ, req.group_id):
        return _join_response(v, JoinResult("", DENIED))
    result = await ctx.broker.groups.join_group(
        req.group_id, req.member_id, instance_id,
        protocol_type=req.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in req.protocols],
        session_timeout_ms=req.session_timeout_ms,
        # v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms=req.rebalance_timeout_ms if v >= 1 else req.session_timeout_ms,
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        require_known_member_id=v >= 4 and instance_id is None,  # KIP-394
        supports_skip_assignment=v >= 9,
    )
    return _join_response(v, result)


def _join_response(v: int, result: JoinResult) -> JoinGroupResponse:
    return JoinGroupResponse(
        throttle_time_ms=0,
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        # Before v7 the protocol name is not nullable: Kafka sends "" when there is none.
        protocol_name=result.protocol_name if v >= 7 else (result.protocol_name or ""),
        leader=result.leader_id,
        skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=[JoinGroupResponseMember(member_id=m, group_instance_id=i, metadata=meta)
                 for m, i, meta in result.members],
    )


@api(SyncGroupRequest)
async def sync_group(ctx, req: SyncGroupRequest) -> SyncGroupResponse:
    v = ctx.version
    if not group_allowed(ctx, Operation.READ, req.group_id):
        return SyncGroupResponse(throttle_time_ms=0, error_code=DENIED, protocol_type=None, protocol_name=None,
                                 assignment=b"")
    result = await ctx.broker.groups.sync_group(
        req.group_id, req.generation_id, req.member_id,
        req.group_instance_id if v >= 3 else None,
        protocol_type=req.protocol_type if v >= 5 else None,
        protocol_name=req.protocol_name if v >= 5 else None,
        assignments={a.member_id: bytes(a.assignment) for a in req.assignments},
    )
    return SyncGroupResponse(throttle_time_ms=0, error_code=result.error, protocol_type=result.protocol_type,
                             protocol_name=result.protocol_name, assignment=result.assignment)


@api(HeartbeatRequest)
async def heartbeat(ctx, req: HeartbeatRequest) -> HeartbeatResponse:
    if not group_allowed(ctx, Operation.READ, req.group_id):
        return HeartbeatResponse(throttle_time_ms=0, error_code=DENIED)
    instance_id = req.group_instance_id if ctx.version >= 3 else None
    error = ctx.broker.groups.heartbeat(req.group_id, req.generation_id, req.member_id, instance_id)
    return HeartbeatResponse(throttle_time_ms=0, error_code=error)


@api(LeaveGroupRequest)
async def leave_group(ctx, req: LeaveGroupRequest) -> LeaveGroupResponse:
    v = ctx.version
    if v >= 3:
        leaving = [(m.member_id, m.group_instance_id) for m in req.members]
        for m in req.members:
            if v >= 5 and m.reason:
                log.debug("group %s: member %r leaves: %s", req.group_id, m.member_id, m.reason)
    else:
        leaving = [(req.member_id, None)]
    if group_allowed(ctx, Operation.READ, req.group_id):
        result = ctx.broker.groups.leave_group(req.group_id, leaving)
    else:
        result = LeaveResult(DENIED)
    if v >= 3:
        members = [MemberResponse(member_id=m, group_instance_id=i, error_code=e) for m, i, e in result.members]
        return LeaveGroupResponse(throttle_time_ms=0, error_code=result.error, members=members)
    # v0-2 carry one error: the group's, else the member's (Kafka's LeaveGroupResponse.getError).
    error = result.error
    if error is ErrorCode.NONE:
        error = next((e for _, _, e in result.members if e is not ErrorCode.NONE), ErrorCode.NONE)
    return LeaveGroupResponse(throttle_time_ms=0, error_code=error)


# ---------------------------------------------------------------- ListGroups / DescribeGroups / DeleteGroups


@api(ListGroupsRequest)
async def list_groups(ctx, req: ListGroupsRequest) -> ListGroupsResponse:
    v = ctx.version
    error, groups = ctx.broker.groups.list_groups(req.states_filter if v >= 4 else (),
                                                  req.types_filter if v >= 5 else ())
    # Cluster Describe lists every group (Kafka), except for a tenant's session: only its own, always
    # (groups outside its namespace are skipped unasked: each would count as a refusal in its usage).
    tenant = ctx.broker.authorizer.tenant_of(ctx.session)
    if tenant is not None:
        groups = [g for g in groups if tenant.owns(g.group_id) and group_allowed(ctx, Operation.DESCRIBE, g.group_id)]
    elif not ctx.allowed(Operation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        groups = [g for g in groups if group_allowed(ctx, Operation.DESCRIBE, g.group_id)]
    listed = [ListedGroup(group_id=g.group_id, protocol_type=g.protocol_type, group_state=g.state,
                          group_type=g.group_type) for g in groups]
    return ListGroupsResponse(throttle_time_ms=0, error_code=error, groups=listed)


@api(DescribeGroupsRequest)
async def describe_groups(ctx, req: DescribeGroupsRequest) -> DescribeGroupsResponse:
    want_ops = ctx.version >= 3 and req.include_authorized_operations
    authorizer = ctx.broker.authorizer
    described = []
    for group_id in req.groups:
        if not group_allowed(ctx, Operation.DESCRIBE, group_id):
            described.append(DescribedGroup(error_code=DENIED, group_id=group_id, group_state="", protocol_type="",
                                            protocol_data="", members=[], authorized_operations=OPS_NOT_REQUESTED))
            continue
        s = ctx.broker.groups.describe_group(group_id)
        members = [
            DescribedGroupMember(member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
                                 client_host=m.client_host, member_metadata=m.metadata,
                                 member_assignment=m.assignment)
            for m in s.members
        ]
        ops = OPS_NOT_REQUESTED
        if want_ops and s.error is ErrorCode.NONE:
            ops = authorizer.authorized_operations(ctx.session, ResourceType.GROUP, group_id)
        described.append(DescribedGroup(error_code=s.error, group_id=group_id, group_state=s.state,
                                        protocol_type=s.protocol_type, protocol_data=s.protocol, members=members,
                                        authorized_operations=ops))
    return DescribeGroupsResponse(throttle_time_ms=0, groups=described)


@api(DeleteGroupsRequest)
async def delete_groups(ctx, req: DeleteGroupsRequest) -> DeleteGroupsResponse:
    wanted = list(dict.fromkeys(req.groups_names))
    allowed = [g for g in wanted if group_allowed(ctx, Operation.DELETE, g)]
    results = await ctx.broker.groups.delete_groups(allowed) if allowed else {}
    return DeleteGroupsResponse(throttle_time_ms=0, results=[
        DeletableGroupResult(group_id=group_id, error_code=results.get(group_id, DENIED)) for group_id in wanted
    ])
