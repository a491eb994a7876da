"""ListOffsets, DeleteRecords and OffsetForLeaderEpoch: questions about where a partition's log starts,
ends, and holds a timestamp or a leader epoch.

On a single node the high watermark is the log end offset, so the latest offset includes every
acknowledged record at once; with no transactions the last stable offset equals it too. Without tiered
storage the earliest local offset (-4) is the earliest offset and no offset is tiered (-5 answers -1).

Authorization as in Kafka, decided per topic before the topic is looked up, so an unauthorized caller
gets the same TOPIC_AUTHORIZATION_FAILED for a topic that exists and one that does not: ListOffsets
needs Describe, OffsetForLeaderEpoch Describe (or ClusterAction on the cluster, for followers),
DeleteRecords Delete. A tenant's session never gets the follower's ClusterAction shortcut.
"""

import os
import time

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.handlers.topics import INTERNAL_TOPICS
from keystream.broker.protocol.messages.delete_records_request import DeleteRecordsRequest
from keystream.broker.protocol.messages.delete_records_response import (
    DeleteRecordsPartitionResult,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)
from keystream.broker.protocol.messages.list_offsets_request import ListOffsetsRequest
from keystream.broker.protocol.messages.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from keystream.broker.protocol.messages.offset_for_leader_epoch_request import OffsetForLeaderEpochRequest
from keystream.broker.protocol.messages.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
# The first ListOffsets version that understands each special timestamp (Kafka's ReplicaManager table).
SPECIAL_SINCE = {EARLIEST: 1, LATEST: 1, MAX_TIMESTAMP: 7, EARLIEST_LOCAL: 8, LATEST_TIERED: 9}
CONSUMER_REPLICA_ID = -1
NO_EPOCH = -1
READ_UNCOMMITTED, READ_COMMITTED = 0, 1


def _allowed(ctx, op: Operation, name: str) -> bool:
    return ctx.allowed(op, ResourceType.TOPIC, name)


def _partition(logs, name: str, index: int):
    """The partition log, or KafkaError(UNKNOWN_TOPIC_OR_PARTITION)."""
    topic = logs.topics.get(name)
    if topic is None or not 0 <= index < len(topic.partitions):
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
    return topic.partitions[index]


def _check_epoch(plog, current_leader_epoch: int) -> None:
    """Kafka's fencing: -1 skips the check, an older epoch is fenced, a newer one is not known yet."""
    if current_leader_epoch == NO_EPOCH:
        return
    if current_leader_epoch < plog.leader_epoch:
        raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
    if current_leader_epoch > plog.leader_epoch:
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)


def _epoch_at(plog, offset: int) -> int:
    """The leader epoch that wrote `offset`, from the partition's leader epoch cache."""
    epoch = NO_EPOCH
    for e, start in plog.epochs.entries:
        if start > offset:
            break
        epoch = e
    return epoch


# ---------------------------------------------------------------------------- ListOffsets v1+

def _lookup(plog, timestamp: int, last_fetchable: int) -> tuple[int, int, int]:
    """(timestamp, offset, leader epoch) for one partition, Kafka's UnifiedLog.fetchOffsetByTimestamp."""
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        entries = plog.epochs.entries
        start = plog.log_start_offset
        epoch = entries[0][0] if entries and entries[0][1] <= start else NO_EPOCH
        return -1, start, epoch
    if timestamp == LATEST:
        return -1, last_fetchable, plog.leader_epoch
    if timestamp == LATEST_TIERED:
        return -1, -1, NO_EPOCH
    found = plog.max_timestamp() if timestamp == MAX_TIMESTAMP else plog.offset_for_timestamp(timestamp)
    if found is None or found[0] < 0 or found[0] >= last_fetchable:
        return -1, -1, NO_EPOCH
    offset, ts = found
    return ts, offset, _epoch_at(plog, offset)


def _list_offset(ctx, req: ListOffsetsRequest, name: str, p) -> ListOffsetsPartitionResponse:
    if p.timestamp < 0 and ctx.version < SPECIAL_SINCE.get(p.timestamp, 1 << 15):
        raise KafkaError(ErrorCode.UNSUPPORTED_VERSION)
    plog = _partition(ctx.broker.logs, name, p.partition_index)
    _check_epoch(plog, p.current_leader_epoch)
    if req.replica_id != CONSUMER_REPLICA_ID:
        last_fetchable = plog.log_end_offset
    elif req.isolation_level in (READ_UNCOMMITTED, READ_COMMITTED):
        last_fetchable = plog.high_watermark  # the last stable offset, too: there are no transactions
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST)
    ts, offset, epoch = _lookup(plog, p.timestamp, last_fetchable)
    return ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=0, timestamp=ts,
                                        offset=offset, leader_epoch=epoch if ctx.version >= 4 else NO_EPOCH)


def _by_topic(topics) -> dict[str, list]:
    """Partitions grouped by topic name in request order (a topic may be listed more than once)."""
    grouped: dict[str, list] = {}
    for t in topics:
        grouped.setdefault(t.name, []).extend(t.partitions)
    return grouped


def _list_offsets(ctx, req: ListOffsetsRequest) -> list[ListOffsetsTopicResponse]:
    out = []
    for name, parts in _by_topic(req.topics).items():
        if not _allowed(ctx, Operation.DESCRIBE, name):
            out.append(ListOffsetsTopicResponse(name=name, partitions=[
                ListOffsetsPartitionResponse(partition_index=p.partition_index,
                                             error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                for p in parts]))
            continue
        counts: dict[int, int] = {}
        for p in parts:
            counts[p.partition_index] = counts.get(p.partition_index, 0) + 1
        answered: set[int] = set()
        results = []
        for p in parts:
            if p.partition_index in answered:
                continue
            answered.add(p.partition_index)
            try:
                if counts[p.partition_index] > 1:
                    raise KafkaError(ErrorCode.INVALID_REQUEST)
                results.append(_list_offset(ctx, req, name, p))
            except KafkaError as e:
                results.append(ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=e.code))
        out.append(ListOffsetsTopicResponse(name=name, partitions=results))
    return out


# ---------------------------------------------------------------------------- ListOffsets v0

def _legacy_offsets(plog, timestamp: int, max_num: int, from_consumer: bool) -> list[int]:
    """Kafka's pre-0.10.1 answer: segment start offsets (plus the log end) whose files were last
    modified at or before `timestamp`, newest first."""
    segments = plog.segments
    points = [(max(seg.base_offset, plog.log_start_offset), _mtime_ms(seg)) for seg in segments]
    if segments[-1].size > 0:
        points.append((plog.log_end_offset, int(time.time() * 1000)))
    if timestamp == LATEST:
        start = len(points) - 1
    elif timestamp == EARLIEST:
        start = 0
    else:
        start = len(points) - 1
        while start >= 0 and points[start][1] > timestamp:
            start -= 1
    count = max(0, min(max_num, start + 1))
    offsets = sorted((points[start - j][0] for j in range(count)), reverse=True)
    hw = plog.high_watermark
    if from_consumer and any(o > hw for o in offsets):
        offsets = [hw] + [o for o in offsets if o <= hw]
    return offsets


def _mtime_ms(seg) -> int:
    try:
        return int(os.stat(seg.log_path).st_mtime * 1000)
    except OSError:
        return 0


def _list_offsets_v0(ctx, req: ListOffsetsRequest) -> list[ListOffsetsTopicResponse]:
    logs = ctx.broker.logs
    out = []
    for t in req.topics:
        results = []
        allowed = _allowed(ctx, Operation.DESCRIBE, t.name)
        for p in t.partitions:
            try:
                if not allowed:
                    raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                if p.timestamp < EARLIEST:
                    raise KafkaError(ErrorCode.UNSUPPORTED_VERSION)
                plog = _partition(logs, t.name, p.partition_index)
                offsets = _legacy_offsets(plog, p.timestamp, p.max_num_offsets,
                                          req.replica_id == CONSUMER_REPLICA_ID)
                results.append(ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=0,
                                                            old_style_offsets=offsets))
            except KafkaError as e:
                results.append(ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=e.code))
        out.append(ListOffsetsTopicResponse(name=t.name, partitions=results))
    return out


@api(ListOffsetsRequest)
async def list_offsets(ctx, req: ListOffsetsRequest) -> ListOffsetsResponse:
    topics = _list_offsets_v0(ctx, req) if ctx.version == 0 else _list_offsets(ctx, req)
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)


# ---------------------------------------------------------------------------- DeleteRecords

def _delete_records(logs, name: str, index: int, offset: int) -> int:
    """The new low watermark; Kafka's checks: internal topics, the delete policy, the offset range."""
    plog = _partition(logs, name, index)
    topic = logs.topics[name]
    if topic.is_internal or name in INTERNAL_TOPICS:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Cannot delete records of internal topic {name}")
    if not topic.config.delete:
        raise KafkaError(ErrorCode.POLICY_VIOLATION, f"Records of partition {name}-{index} can not be deleted "
                         "due to the configured policy")
    return plog.delete_records(offset)


@api(DeleteRecordsRequest)
async def delete_records(ctx, req: DeleteRecordsRequest) -> DeleteRecordsResponse:
    logs = ctx.broker.logs
    wanted: dict[str, dict[int, int]] = {}
    for t in req.topics:
        for p in t.partitions:
            wanted.setdefault(t.name, {})[p.partition_index] = p.offset  # a repeated partition: the last wins
    topics = []
    for name, parts in wanted.items():
        results = []
        allowed = _allowed(ctx, Operation.DELETE, name)
        for index, offset in parts.items():
            try:
                if not allowed:
                    raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                low, code = _delete_records(logs, name, index, offset), 0
            except KafkaError as e:
                low, code = -1, e.code
            results.append(DeleteRecordsPartitionResult(partition_index=index, low_watermark=low, error_code=code))
        topics.append(DeleteRecordsTopicResult(name=name, partitions=results))
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)


# ---------------------------------------------------------------------------- OffsetForLeaderEpoch

def _epoch_end(logs, topic: str, p) -> EpochEndOffset:
    try:
        plog = _partition(logs, topic, p.partition)
        _check_epoch(plog, p.current_leader_epoch)
    except KafkaError as e:
        return EpochEndOffset(error_code=e.code, partition=p.partition)
    epoch, end = plog.end_offset_for_epoch(p.leader_epoch)
    return EpochEndOffset(error_code=0, partition=p.partition, leader_epoch=epoch, end_offset=end)


@api(OffsetForLeaderEpochRequest)
async def offset_for_leader_epoch(ctx, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse:
    logs = ctx.broker.logs
    # KIP-320: followers ask with ClusterAction, consumers with Describe on the topic. ClusterAction
    # stands for every topic, so it never counts for a tenant's session (brokers belong to no tenant).
    replica = (ctx.broker.authorizer.tenant_of(ctx.session) is None
               and ctx.allowed(Operation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME))
    topics = []
    for t in req.topics:
        if replica or _allowed(ctx, Operation.DESCRIBE, t.topic):
            parts = [_epoch_end(logs, t.topic, p) for p in t.partitions]
        else:
            parts = [EpochEndOffset(error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, partition=p.partition)
                     for p in t.partitions]
        topics.append(OffsetForLeaderTopicResult(topic=t.topic, partitions=parts))
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)
