"""Produce: validate batch headers, assign offsets in place, append; no per-record work.

Versions 0-2 carry the pre-0.11 message formats (magic 0/1), which Keystream does not store, so
Produce starts at v3 (as in Apache Kafka 4.0).

Authorization as in Kafka: Write on each topic, checked before the topic is looked up (so an
unauthorized partition answers TOPIC_AUTHORIZATION_FAILED whether the topic exists or not), and
Write on the transactional id when the batches are transactional. Idempotent batches need nothing
more: since Kafka 3.0 Write on the topic implies IdempotentWrite.

Tenant storage limit (Tenant.max_storage_bytes, broker/tenant_usage.py): a partition of a topic in a
tenant's namespace is refused with POLICY_VIOLATION, nothing appended, once the tenant's storage is at
or over the limit, whoever produces (super users too: the limit belongs to the namespace). A request
that crosses the limit is accepted; the next one is refused until retention, DeleteRecords or
DeleteTopics frees space.
"""

import asyncio
import time

from keystream.auth.acl import Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.produce_request import ProduceRequest
from keystream.broker.protocol.messages.produce_response import (
    BatchIndexAndErrorMessage,
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)
from keystream.broker.quotas import PRODUCE
from keystream.broker.records import validate_batches

_MAGIC_AT, _ATTRIBUTES_AT = 16, 21  # RecordBatch header: magic byte, then CRC, then attributes (int16)
_TRANSACTIONAL = 0x10


def _error(index: int, e: KafkaError) -> PartitionProduceResponse:
    return PartitionProduceResponse(index=index, error_code=e.code, base_offset=-1, log_append_time_ms=-1,
                                    log_start_offset=-1, error_message=e.message,
                                    record_errors=[BatchIndexAndErrorMessage(i, m) for i, m in e.record_errors])


def _check(topic, index: int, records, now_ms: int):
    """Checks one partition's batch headers; returns them."""
    if topic is None or not 0 <= index < len(topic.partitions):
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
    if topic.is_internal:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Cannot append to internal topic {topic.name}")
    if records is None or len(records) == 0:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "Produce request carries no record batch")
    cfg = topic.config
    batches = validate_batches(
        records, max_message_bytes=cfg.max_message_bytes, timestamp_type=cfg.message_timestamp_type,
        before_max_ms=cfg.timestamp_before_max_ms, after_max_ms=cfg.timestamp_after_max_ms,
        now_ms=now_ms,
    )
    for b in batches:
        if b.is_transactional or b.is_control:
            raise KafkaError(ErrorCode.INVALID_RECORD, "Transactional and control batches are not supported yet")
    return batches


async def _validate(broker, topic, records, batches) -> None:
    """Schema validation (confluent.{key,value}.schema.validation): the whole batch or nothing."""
    if broker.schema_validator is None:
        raise KafkaError(ErrorCode.INVALID_RECORD, f"topic {topic.name} requires schema validation, but this "
                                                   "broker has no confluent.schema.registry.url")
    await broker.schema_validator.validate(topic.name, topic.config, records, batches)
    if broker.logs.topic(topic.name) is not topic:  # deleted (or re-created) while the registry answered
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")


def _append(topic, index: int, records, batches, now_ms: int):
    """Appends one partition's checked batches; returns (response, log)."""
    plog = topic.partitions[index]
    res = plog.append(records, batches, now_ms=now_ms)
    return PartitionProduceResponse(index=index, error_code=0, base_offset=res.base_offset,
                                    log_append_time_ms=res.log_append_time_ms,
                                    log_start_offset=res.log_start_offset), plog


async def _wait_for_disk(commits, due: list) -> None:
    """acks=-1 under a flush policy that asks for an fsync: answer once the records are on disk.

    A failed fsync fails its partition with KAFKA_STORAGE_ERROR (the records may be lost).
    """
    if len(due) == 1:  # the common case, without gather's task per partition
        plog, resp = due[0]
        try:
            await commits.flush(plog)
        except KafkaError as e:
            _fail(resp, e)
        return
    results = await asyncio.gather(*(commits.flush(plog) for plog, _ in due), return_exceptions=True)
    for (_, resp), result in zip(due, results, strict=True):
        if isinstance(result, KafkaError):
            _fail(resp, result)
        elif isinstance(result, BaseException):
            raise result


def _fail(resp: PartitionProduceResponse, e: KafkaError) -> None:
    resp.error_code, resp.error_message = e.code, e.message
    resp.base_offset = resp.log_append_time_ms = resp.log_start_offset = -1


def _transactional(records) -> bool:
    """Kafka's RequestUtils.hasTransactionalRecords: the first batch's transactional bit (v2 format)."""
    if records is None or len(records) < _ATTRIBUTES_AT + 2 or records[_MAGIC_AT] < 2:
        return False
    return bool(records[_ATTRIBUTES_AT + 1] & _TRANSACTIONAL)


def _all_failed(req: ProduceRequest, code: ErrorCode) -> ProduceResponse:
    return ProduceResponse(throttle_time_ms=0, responses=[
        TopicProduceResponse(td.name, [_error(pd.index, KafkaError(code)) for pd in td.partition_data])
        for td in req.topic_data
    ])


@api(ProduceRequest, min_version=3)
async def produce(ctx, req: ProduceRequest) -> ProduceResponse | None:
    broker = ctx.broker
    if any(_transactional(pd.records) for td in req.topic_data for pd in td.partition_data):
        tid = req.transactional_id
        if tid is None or not ctx.allowed(Operation.WRITE, ResourceType.TRANSACTIONAL_ID, tid):
            return None if req.acks == 0 else _all_failed(req, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    now_ms = int(time.time() * 1000)
    acks_valid = req.acks in (0, 1, -1)
    writable: dict[str, bool] = {}
    responses, appended = [], []
    usage = broker.tenant_usage
    tenants = usage.active()
    accepted = 0  # batch bytes appended, for the producing session's tenant
    for td in req.topic_data:
        if td.name not in writable:
            writable[td.name] = ctx.allowed(Operation.WRITE, ResourceType.TOPIC, td.name)
        topic = broker.logs.topic(td.name) if writable[td.name] else None
        owner = usage.topic_tenant(td.name) if tenants and topic is not None else None
        parts = []
        for pd in td.partition_data:
            try:
                if not writable[td.name]:
                    raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                if not acks_valid:
                    raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be 0, 1 or -1, not {req.acks}")
                batches = _check(topic, pd.index, pd.records, now_ms)
                if owner is not None and owner.max_storage_bytes is not None:
                    usage.check_storage(owner)
                cfg = topic.config
                if cfg.confluent_value_schema_validation or cfg.confluent_key_schema_validation:
                    await _validate(broker, topic, pd.records, batches)
                resp, plog = _append(topic, pd.index, pd.records, batches, now_ms)
                appended.append((plog, resp))
                broker.notify_append(td.name, pd.index)
                if tenants:
                    accepted += len(pd.records)
                    if owner is not None:
                        usage.appended(owner.name, len(pd.records))
            except KafkaError as e:
                resp = _error(pd.index, e)
            parts.append(resp)
        responses.append(TopicProduceResponse(td.name, parts))
    if req.acks == -1:
        due = [(plog, resp) for plog, resp in appended if plog.flush_due()]
        if due:
            await _wait_for_disk(broker.group_commits, due)
    if accepted and (producer := usage.session_tenant(ctx.session)) is not None:
        usage.bytes_in(producer, accepted)
    throttle_ms = _quota_throttle(ctx, req)
    if req.acks == 0:
        ctx.throttle_ms = throttle_ms
        return None
    return ProduceResponse(responses=responses, throttle_time_ms=throttle_ms)


def _quota_throttle(ctx, req: ProduceRequest) -> int:
    """producer_byte_rate (broker/quotas.py): the request's record bytes, recorded whether or not they
    were appended, as Kafka does; the records are kept either way, the client is only slowed down."""
    quotas = ctx.broker.quotas
    if not quotas.enabled(PRODUCE, ctx.session):
        return 0
    size = sum(len(pd.records) for td in req.topic_data for pd in td.partition_data if pd.records is not None)
    return quotas.record(PRODUCE, ctx.session, ctx.client_id, size)
