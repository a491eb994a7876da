"""InitProducerId for idempotent producers; transactions are not available yet.

A null transactional id always gets a fresh producer id with epoch 0, as in Kafka (idempotent clients
that send their current id and epoch, KIP-360, accept a new id). A transactional id is answered
with COORDINATOR_NOT_AVAILABLE, what Kafka answers while no transaction coordinator can serve it; the
response has no message field, so the reason goes to the broker log (once per transactional id).

Authorization as in Kafka, before anything else: a transactional id needs Write on it
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs IdempotentWrite on the cluster
or Write on some topic (Kafka's authorizeByResourceType), else CLUSTER_AUTHORIZATION_FAILED.
"""

import logging

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.init_producer_id_request import InitProducerIdRequest
from keystream.broker.protocol.messages.init_producer_id_response import InitProducerIdResponse

log = logging.getLogger("keystream.broker.producers")

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
_MAX_WARNED = 1000
_warned: set[str] = set()


def _error(code: ErrorCode) -> InitProducerIdResponse:
    return InitProducerIdResponse(throttle_time_ms=0, error_code=code, producer_id=NO_PRODUCER_ID,
                                  producer_epoch=NO_PRODUCER_EPOCH)


def _warn_transactions_unavailable(ctx, transactional_id: str) -> None:
    """Clients retry this answer for a long time: log the reason once per id, not once per retry."""
    if transactional_id in _warned or len(_warned) >= _MAX_WARNED:
        return
    _warned.add(transactional_id)
    log.warning("InitProducerId for transactional.id=%r from client %r (%s): transactions are not supported "
                "yet; answering COORDINATOR_NOT_AVAILABLE", transactional_id, ctx.client_id, ctx.client_host)


@api(InitProducerIdRequest)
async def init_producer_id(ctx, req: InitProducerIdRequest) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        if not ctx.allowed(Operation.WRITE, ResourceType.TRANSACTIONAL_ID, req.transactional_id):
            return _error(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    elif not (ctx.allowed(Operation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER_NAME)
              or ctx.broker.authorizer.authorize_by_resource_type(ctx.session, Operation.WRITE, ResourceType.TOPIC)):
        return _error(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    pid, epoch = req.producer_id, req.producer_epoch
    if (pid == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH):
        return _error(ErrorCode.INVALID_REQUEST)
    if req.transactional_id is not None:
        if req.transactional_id == "":
            return _error(ErrorCode.INVALID_REQUEST)
        _warn_transactions_unavailable(ctx, req.transactional_id)
        return _error(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    return InitProducerIdResponse(throttle_time_ms=0, error_code=0, producer_id=ctx.broker.producer_ids.allocate(),
                                  producer_epoch=0)
