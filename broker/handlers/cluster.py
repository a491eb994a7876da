"""DescribeCluster: this node is the only broker and answers as the controller too.

Keystream serves broker endpoints only, so a request for controller endpoints (v1, KIP-919) is
answered with MISMATCHED_ENDPOINT_TYPE, as a Kafka broker does (INVALID_REQUEST on v0).

Authorization as in Kafka: the answer itself needs no permission (Metadata gives the same brokers
and cluster id to anyone); the cluster's authorized-operations bitfield, when asked for, is the
caller's real one, and 0 without Describe on the cluster.
"""

from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.metadata import OPS_NOT_REQUESTED, cluster_operations
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.describe_cluster_request import DescribeClusterRequest
from keystream.broker.protocol.messages.describe_cluster_response import (
    DescribeClusterBroker,
    DescribeClusterResponse,
)

ENDPOINT_TYPES = {1: "BROKER", 2: "CONTROLLER"}
BROKER_ENDPOINTS = 1


def _endpoint_error(ctx, req: DescribeClusterRequest) -> DescribeClusterResponse | None:
    wanted = req.endpoint_type
    if wanted == BROKER_ENDPOINTS:
        return None
    if wanted not in ENDPOINT_TYPES:
        code, message = ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, f"Unsupported endpoint type {wanted}"
    else:
        code = ErrorCode.MISMATCHED_ENDPOINT_TYPE
        message = (f"The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type "
                   f"{ENDPOINT_TYPES[wanted]}")
    if ctx.version == 0:
        code = ErrorCode.INVALID_REQUEST
    return DescribeClusterResponse(throttle_time_ms=0, error_code=code, error_message=message)


@api(DescribeClusterRequest)
async def describe_cluster(ctx, req: DescribeClusterRequest) -> DescribeClusterResponse:
    error = _endpoint_error(ctx, req)
    if error is not None:
        return error
    broker = ctx.broker
    return DescribeClusterResponse(
        throttle_time_ms=0,
        error_code=0,
        error_message=None,
        endpoint_type=BROKER_ENDPOINTS,
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        brokers=[DescribeClusterBroker(broker.node_id, *broker.endpoint(ctx.session.listener), None)],
        cluster_authorized_operations=cluster_operations(ctx) if req.include_cluster_authorized_operations
        else OPS_NOT_REQUESTED,
    )
