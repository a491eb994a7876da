"""Offset APIs: OffsetCommit, OffsetFetch (v8+ batches groups) and OffsetDelete.

As in Kafka's request handling, partitions of topics this broker does not have are answered with
UNKNOWN_TOPIC_OR_PARTITION here and never reach the coordinator.

Authorization as in Kafka, the group first, then each topic before it is looked up (so refusals do
not depend on whether the group or topic exists): OffsetCommit needs Read on the group and on each
topic; OffsetFetch Describe on the group, and returns offsets only of topics the caller may Describe
(a named one it may not is answered TOPIC_AUTHORIZATION_FAILED, "all topics" leaves it out);
OffsetDelete needs Delete on the group and Read on each topic.
"""

from __future__ import annotations

from keystream.auth.acl import Operation, ResourceType
from keystream.broker.errors import ErrorCode
from keystream.broker.groups.results import CommitRequestPartition, FetchedOffset
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.offset_commit_request import OffsetCommitRequest
from keystream.broker.protocol.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)
from keystream.broker.protocol.messages.offset_delete_request import OffsetDeleteRequest
from keystream.broker.protocol.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)
from keystream.broker.protocol.messages.offset_fetch_request import OffsetFetchRequest
from keystream.broker.protocol.messages.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

DEFAULT_RETENTION = -1


def _group_allowed(ctx, op: Operation, group_id: str) -> bool:
    return ctx.allowed(op, ResourceType.GROUP, group_id)


def _topics_allowed(ctx, op: Operation, names) -> set[str]:
    """The names among `names` the caller may `op`, each asked once."""
    return {n for n in dict.fromkeys(names) if ctx.allowed(op, ResourceType.TOPIC, n)}


# ---------------------------------------------------------------- OffsetCommit


@api(OffsetCommitRequest)
async def offset_commit(ctx, req: OffsetCommitRequest) -> OffsetCommitResponse:
    v = ctx.version
    groups = ctx.broker.groups
    retention = req.retention_time_ms if 2 <= v <= 4 else DEFAULT_RETENTION
    expire = groups.clock() + retention if retention != DEFAULT_RETENTION else -1
    errors: dict[tuple[str, int], ErrorCode] = {}
    accepted: list[CommitRequestPartition] = []
    if not _group_allowed(ctx, Operation.READ, req.group_id):
        readable: set[str] = set()
        errors = {(t.name, p.partition_index): ErrorCode.GROUP_AUTHORIZATION_FAILED
                  for t in req.topics for p in t.partitions}
    else:
        readable = _topics_allowed(ctx, Operation.READ, (t.name for t in req.topics))
    for topic in req.topics:
        if topic.name not in readable:
            for p in topic.partitions:
                errors.setdefault((topic.name, p.partition_index), ErrorCode.TOPIC_AUTHORIZATION_FAILED)
            continue
        for p in topic.partitions:
            if not groups.has_partition(topic.name, p.partition_index):
                errors[(topic.name, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            accepted.append(CommitRequestPartition(
                topic.name, p.partition_index, p.committed_offset,
                leader_epoch=p.committed_leader_epoch if v >= 6 else -1,
                metadata=p.committed_metadata,
                commit_timestamp=p.commit_timestamp if v == 1 else -1,
                expire_timestamp=expire,
            ))
    if accepted:
        errors.update(await groups.commit_offsets(
            req.group_id,
            req.generation_id_or_member_epoch if v >= 1 else -1,
            req.member_id if v >= 1 else "",
            req.group_instance_id if v >= 7 else None,
            accepted,
            version=v,
        ))
    return OffsetCommitResponse(throttle_time_ms=0, topics=[
        OffsetCommitResponseTopic(name=topic.name, partitions=[
            OffsetCommitResponsePartition(partition_index=p.partition_index,
                                          error_code=errors[(topic.name, p.partition_index)])
            for p in topic.partitions
        ])
        for topic in req.topics
    ])


# ---------------------------------------------------------------- OffsetFetch


def _wanted(topics) -> list[tuple[str, list[int]]] | None:
    return None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]


def _fetch_authorized(ctx, group_id: str, wanted, require_stable: bool):
    """Kafka's checks around the coordinator's fetch_offsets: (error, [(topic, [(partition, offset)])])."""
    if not _group_allowed(ctx, Operation.DESCRIBE, group_id):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, []
    groups = ctx.broker.groups
    if wanted is None:
        error, data = groups.fetch_offsets(group_id, None, require_stable)
        describable = _topics_allowed(ctx, Operation.DESCRIBE, (name for name, _ in data))
        return error, [(name, rows) for name, rows in data if name in describable]
    describable = _topics_allowed(ctx, Operation.DESCRIBE, (name for name, _ in wanted))
    error, data = groups.fetch_offsets(group_id, [(n, parts) for n, parts in wanted if n in describable],
                                       require_stable)
    if error is not ErrorCode.NONE:
        return error, data
    refused = FetchedOffset(error=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    return error, data + [(name, [(p, refused) for p in parts]) for name, parts in wanted if name not in describable]


@api(OffsetFetchRequest)
async def offset_fetch(ctx, req: OffsetFetchRequest) -> OffsetFetchResponse:
    v = ctx.version
    require_stable = req.require_stable if v >= 7 else False
    if v >= 8:
        out = []
        for g in req.groups:
            error, data = _fetch_authorized(ctx, g.group_id, _wanted(g.topics), require_stable)
            topics = [
                OffsetFetchResponseTopics(name=name, partitions=[
                    OffsetFetchResponsePartitions(partition_index=p, committed_offset=o.offset,
                                                  committed_leader_epoch=o.leader_epoch, metadata=o.metadata,
                                                  error_code=o.error)
                    for p, o in rows
                ])
                for name, rows in data
            ]
            out.append(OffsetFetchResponseGroup(group_id=g.group_id, topics=topics, error_code=error))
        return OffsetFetchResponse(throttle_time_ms=0, groups=out)
    wanted = _wanted(req.topics)
    error, data = _fetch_authorized(ctx, req.group_id, wanted, require_stable)
    if error is not ErrorCode.NONE:
        if v >= 2:
            return OffsetFetchResponse(throttle_time_ms=0, error_code=error, topics=[])
        # v0-1 have no group-level error: Kafka repeats it on every requested partition.
        failed = FetchedOffset(error=error)
        data = [(name, [(p, failed) for p in parts]) for name, parts in wanted or []]
    topics = [
        OffsetFetchResponseTopic(name=name, partitions=[
            OffsetFetchResponsePartition(partition_index=p, committed_offset=o.offset,
                                         committed_leader_epoch=o.leader_epoch, metadata=o.metadata,
                                         error_code=o.error)
            for p, o in rows
        ])
        for name, rows in data
    ]
    return OffsetFetchResponse(throttle_time_ms=0, topics=topics, error_code=ErrorCode.NONE)


# ---------------------------------------------------------------- OffsetDelete


@api(OffsetDeleteRequest)
async def offset_delete(ctx, req: OffsetDeleteRequest) -> OffsetDeleteResponse:
    groups = ctx.broker.groups
    if not _group_allowed(ctx, Operation.DELETE, req.group_id):
        return OffsetDeleteResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED, throttle_time_ms=0, topics=[])
    readable = _topics_allowed(ctx, Operation.READ, (t.name for t in req.topics))
    errors: dict[tuple[str, int], ErrorCode] = {}
    known: list[tuple[str, int]] = []
    for topic in req.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if topic.name not in readable:
                errors[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif groups.has_partition(*tp):
                known.append(tp)
            else:
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    group_error, results = await groups.delete_offsets(req.group_id, known)
    if group_error is not ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=group_error, throttle_time_ms=0, topics=[])
    errors.update(results)
    by_topic: dict[str, dict[int, ErrorCode]] = {}
    for topic in req.topics:  # request order, one entry per topic and partition (map keys)
        parts = by_topic.setdefault(topic.name, {})
        for p in topic.partitions:
            parts[p.partition_index] = errors[(topic.name, p.partition_index)]
    return OffsetDeleteResponse(error_code=ErrorCode.NONE, throttle_time_ms=0, topics=[
        OffsetDeleteResponseTopic(name=name, partitions=[
            OffsetDeleteResponsePartition(partition_index=p, error_code=e) for p, e in parts.items()
        ])
        for name, parts in by_topic.items()
    ])
