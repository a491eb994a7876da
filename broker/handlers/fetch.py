"""Fetch: whole stored batches sent as file slices, long-polled until min.bytes or max.wait.ms.

A parked fetch is woken by the append itself (Broker.notify_append), not by a timer. Versions 0-3
predate the v2 record format and are not offered (as in Apache Kafka 4.0). Fetch sessions
(KIP-227) are answered with session id 0, which tells clients to send full fetches.

Authorization as in Kafka: a consumer needs Read on each topic (TOPIC_AUTHORIZATION_FAILED per
partition, decided before the partition is looked up); a fetch that claims to come from a follower
needs ClusterAction on the cluster instead. By topic id (v13+) Kafka answers a known id without Read
with TOPIC_AUTHORIZATION_FAILED; Keystream does so only when the caller may Describe the topic, and
otherwise answers UNKNOWN_TOPIC_ID as for an id that does not exist, so ids reveal no topic.
"""

import asyncio

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.fetch_request import FetchRequest
from keystream.broker.protocol.messages.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from keystream.broker.quotas import FETCH, QuotaManager


def _partition_error(index: int, code: ErrorCode) -> PartitionData:
    return PartitionData(partition_index=index, error_code=code, high_watermark=-1, last_stable_offset=-1,
                         log_start_offset=-1, records=b"")


def _denials(ctx, req: FetchRequest) -> list[ErrorCode | None]:
    """Per requested topic, once per request: None if it may be read, else what its partitions answer."""
    follower = (req.replica_state.replica_id if ctx.version >= 15 else req.replica_id) >= 0
    if follower:
        ok = ctx.allowed(Operation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME)
        return [None if ok else ErrorCode.TOPIC_AUTHORIZATION_FAILED] * len(req.topics)
    logs = ctx.broker.logs
    decided: dict[str, ErrorCode | None] = {}
    out: list[ErrorCode | None] = []
    for ft in req.topics:
        if ctx.version >= 13:
            topic = logs.topic_by_id(ft.topic_id)
            if topic is None:
                out.append(None)  # _read answers UNKNOWN_TOPIC_ID
                continue
            name = topic.name
        else:
            name = ft.topic
        if name not in decided:
            if ctx.allowed(Operation.READ, ResourceType.TOPIC, name):
                decided[name] = None
            elif ctx.version < 13 or ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, name):
                decided[name] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            else:
                decided[name] = ErrorCode.UNKNOWN_TOPIC_ID
        out.append(decided[name])
    return out


def _read(ctx, req: FetchRequest, denials: list[ErrorCode | None], quota_cap: float):
    """One pass over the requested partitions: (response topics, bytes read, any error)."""
    logs = ctx.broker.logs
    by_id = ctx.version >= 13
    left = min(req.max_bytes, ctx.broker.config["fetch.max.bytes"])  # Kafka caps a client's ask the same way
    if quota_cap < left:  # consumer_byte_rate: no more than the quota window could take (as Kafka)
        left = max(1, int(quota_cap))
    total = 0
    errors = False
    topics = []
    for ft, denied in zip(req.topics, denials, strict=True):
        if denied is not None:
            errors = True
            parts = [_partition_error(fp.partition, denied) for fp in ft.partitions]
            topics.append(FetchableTopicResponse(topic=ft.topic, topic_id=ft.topic_id, partitions=parts))
            continue
        topic = logs.topic_by_id(ft.topic_id) if by_id else logs.topic(ft.topic)
        parts = []
        for fp in ft.partitions:
            if topic is None or not 0 <= fp.partition < len(topic.partitions):
                errors = True
                missing = ErrorCode.UNKNOWN_TOPIC_ID if by_id and topic is None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                parts.append(_partition_error(fp.partition, missing))
                continue
            plog = topic.partitions[fp.partition]
            if fp.current_leader_epoch > plog.leader_epoch:
                errors = True
                parts.append(_partition_error(fp.partition, ErrorCode.UNKNOWN_LEADER_EPOCH))
                continue
            if 0 <= fp.current_leader_epoch < plog.leader_epoch:
                errors = True
                parts.append(_partition_error(fp.partition, ErrorCode.FENCED_LEADER_EPOCH))
                continue
            try:
                limit = min(fp.partition_max_bytes, left)
                result = plog.read(fp.fetch_offset, limit, min_one=total == 0)
            except KafkaError as e:
                errors = True
                parts.append(_partition_error(fp.partition, e.code))
                continue
            total += result.size
            left = max(0, left - result.size)
            hw = plog.high_watermark
            parts.append(PartitionData(
                partition_index=fp.partition, error_code=0, high_watermark=hw, last_stable_offset=hw,
                log_start_offset=plog.log_start_offset, aborted_transactions=[],
                preferred_read_replica=-1, records=result.chunks,
            ))
        topics.append(FetchableTopicResponse(topic=ft.topic, topic_id=ft.topic_id, partitions=parts))
    return topics, total, errors


@api(FetchRequest, min_version=4)
async def fetch(ctx, req: FetchRequest) -> FetchResponse:
    if req.session_id != 0:
        return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.max_wait_ms / 1000
    broker = ctx.broker
    denials = _denials(ctx, req)
    quotas = _consumer_quotas(ctx, req)
    cap = quotas.max_value_in_window(FETCH, ctx.session, ctx.client_id) if quotas else float("inf")
    while True:
        topics, total, errors = _read(ctx, req, denials, cap)
        remaining = deadline - loop.time()
        if total >= req.min_bytes or errors or remaining <= 0 or not req.topics:
            # consumer_byte_rate: the records go out with the throttle time and the connection is then
            # muted (Kafka answers a throttled fetch empty instead, which never progresses when one
            # batch exceeds what the quota window holds; see broker/quotas.py)
            throttle_ms = quotas.record(FETCH, ctx.session, ctx.client_id, total) if quotas else 0
            if total:
                _count_out(ctx, total)
            return FetchResponse(throttle_time_ms=throttle_ms, error_code=0, session_id=0, responses=topics)
        names = _names(ctx, req)
        tps = [(name, fp.partition) for ft, name in zip(req.topics, names, strict=False) for fp in ft.partitions]
        waiter = broker.data_waiter(tps)
        try:
            await asyncio.wait_for(waiter, remaining)
        except TimeoutError:
            pass
        finally:
            broker.drop_waiter(waiter, tps)


def _consumer_quotas(ctx, req: FetchRequest) -> QuotaManager | None:
    """The quota manager when a consumer_byte_rate applies to this (consumer, not follower) fetch."""
    quotas = ctx.broker.quotas
    follower = (req.replica_state.replica_id if ctx.version >= 15 else req.replica_id) >= 0
    return quotas if not follower and quotas.enabled(FETCH, ctx.session) else None


def _count_out(ctx, nbytes: int) -> None:
    """bytes_out of the fetching session's tenant (broker/tenant_usage.py)."""
    usage = ctx.broker.tenant_usage
    if usage.active() and (tenant := usage.session_tenant(ctx.session)) is not None:
        usage.bytes_out(tenant, nbytes)


def _names(ctx, req: FetchRequest) -> list[str]:
    if ctx.version < 13:
        return [ft.topic for ft in req.topics]
    logs = ctx.broker.logs
    return [t.name if (t := logs.topic_by_id(ft.topic_id)) else "" for ft in req.topics]
