"""CreateTopics, DeleteTopics and CreatePartitions, with the checks, order and messages of Kafka's
controller (KRaft), so a request that fails several checks reports the same error Kafka would.

This node is the only broker: replication factors other than 1 (or -1 for the default) and manual
assignments naming other brokers are refused the way Kafka refuses brokers that are not registered.
Where Kafka leaves an error message null, the answer carries Kafka's default text for that code.

Authorization as in Kafka's controller, always before a topic is looked up so that an unauthorized
caller cannot tell an existing topic from a missing one: CreateTopics needs Create on the cluster or
on the topic (and DescribeConfigs on the topic for the v5+ config echo), DeleteTopics Delete on the
cluster or the topic (Describe decides whether a refused topic is named in the answer), and
CreatePartitions Alter on the topic. By id, a topic the caller may not Describe is answered
UNKNOWN_TOPIC_ID like an id that does not exist (Kafka answers TOPIC_AUTHORIZATION_FAILED there).
The topic permission is asked before the cluster one (same answer): a tenant's session is never
granted the cluster permission, and asking it first would count every request as a refusal.

Tenant partition limits (Tenant.max_partitions, broker/tenant_usage.py) are checked after Kafka's own
checks, as Kafka runs its CreateTopicPolicy, and answer POLICY_VIOLATION; validate_only answers the
same, counting the partitions its earlier topics would have created. So is a name outside every tenant
that could collide with a tenant's namespace (`acme_x` while tenant `acme` exists). Checking and creating happen with
no await in between, so concurrent requests on the event loop cannot both pass the limit.
"""

from collections import Counter

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.log.config import build_log_config, describe_config, validate_overrides
from keystream.broker.log.topic_meta import collides, validate_topic_name
from keystream.broker.protocol.codec import ZERO_UUID
from keystream.broker.protocol.messages.create_partitions_request import CreatePartitionsRequest
from keystream.broker.protocol.messages.create_partitions_response import (
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)
from keystream.broker.protocol.messages.create_topics_request import CreateTopicsRequest
from keystream.broker.protocol.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest
from keystream.broker.protocol.messages.delete_topics_response import (
    DeletableTopicResult,
    DeleteTopicsResponse,
)
from keystream.broker.tenant_usage import TenantUsage

# Kafka's Topic.isInternal names: created as internal topics, never deleted or grown by clients.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
CLUSTER_METADATA_TOPIC = "__cluster_metadata"
UNKNOWN_TOPIC_MESSAGE = "This server does not host this topic-partition."
UNKNOWN_TOPIC_ID_MESSAGE = "This server does not host this topic ID."
DELETION_DISABLED_MESSAGE = "Topic deletion is disabled."
TOPIC_AUTHORIZATION_MESSAGE = "Topic authorization failed."
BROKER_COUNT = 1


def _error(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(code, message)


# ---------------------------------------------------------------------------- replica assignments

def _check_assignment(broker_ids, replication_factor: int | None, node_id: int) -> None:
    """Kafka's validateManualPartitionAssignment, with this node as the only registered broker."""
    if not broker_ids:
        raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                     "The manual partition assignment includes an empty replica list.")
    prev = None
    for b in sorted(broker_ids):
        if b != node_id:
            raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"The manual partition assignment includes broker {b}, but no such broker is registered.")
        if b == prev:
            raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"The manual partition assignment includes the broker {prev} more than once.")
        prev = b
    if replication_factor is not None and len(broker_ids) != replication_factor:
        raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                     f"The manual partition assignment includes a partition with {len(broker_ids)} replica(s), "
                     f"but this is not consistent with previous partitions, which have {replication_factor} "
                     "replica(s).")


def _check_placeable(replication_factor: int) -> None:
    """Kafka's replica placer on a one-broker cluster."""
    if replication_factor <= 0:
        reason = f"Invalid replication factor {replication_factor}: the replication factor must be positive."
    elif replication_factor > BROKER_COUNT:
        reason = (f"The target replication factor of {replication_factor} cannot be reached because only "
                  f"{BROKER_COUNT} broker(s) are registered.")
    else:
        return
    raise _error(ErrorCode.INVALID_REPLICATION_FACTOR,
                 f"Unable to replicate the partition {replication_factor} time(s): {reason}")


def _manual_partition_count(t, node_id: int) -> int:
    if t.replication_factor != -1:
        raise _error(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but replication "
                     "factor was not set to -1.")
    if t.num_partitions != -1:
        raise _error(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but numPartitions "
                     "was not set to -1.")
    seen: set[int] = set()
    replication_factor = None
    for a in t.assignments:
        if a.partition_index in seen:
            raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"Found multiple manual partition assignments for partition {a.partition_index}")
        _check_assignment(a.broker_ids, replication_factor, node_id)
        replication_factor = len(a.broker_ids)
        seen.add(a.partition_index)
    if seen != set(range(len(seen))):
        raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence")
    return len(seen)


def _partition_count(broker, t) -> int:
    """The new topic's partition count, after Kafka's assignment / replication / partition checks."""
    if t.assignments:
        return _manual_partition_count(t, broker.node_id)
    if t.replication_factor < -1 or t.replication_factor == 0:
        raise _error(ErrorCode.INVALID_REPLICATION_FACTOR,
                     "Replication factor must be larger than 0, or -1 to use the default value.")
    if t.num_partitions < -1 or t.num_partitions == 0:
        raise _error(ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.")
    rf = t.replication_factor if t.replication_factor != -1 else broker.config["default.replication.factor"]
    _check_placeable(rf)
    return t.num_partitions if t.num_partitions != -1 else broker.config["num.partitions"]


# ---------------------------------------------------------------------------- CreateTopics

def _creation_overrides(logs, configs) -> dict[str, str]:
    nulls = [c.name for c in configs if c.value is None]
    if nulls:
        raise _error(ErrorCode.INVALID_CONFIG, "Null value not supported for topic configs: " + ",".join(nulls))
    overrides = validate_overrides({c.name: c.value for c in configs})
    build_log_config(logs.broker_defaults, overrides)  # cross-config rules (compaction lags)
    return overrides


def _topic_allowed(ctx, op: Operation, name: str) -> bool:
    return ctx.allowed(op, ResourceType.TOPIC, name)


def _cluster_allowed(ctx, op: Operation) -> bool:
    return ctx.allowed(op, ResourceType.CLUSTER, CLUSTER_NAME)


class _ClusterPermission:
    """The cluster permission, asked at most once per request and only when a topic's is refused."""

    __slots__ = ("ctx", "op", "_answer")

    def __init__(self, ctx, op: Operation):
        self.ctx, self.op, self._answer = ctx, op, None

    def __bool__(self) -> bool:
        if self._answer is None:
            self._answer = _cluster_allowed(self.ctx, self.op)
        return self._answer


def check_new_topic(broker, name: str, partitions: int, pending: dict[str, int] | None = None) -> None:
    """The tenant policy on a new topic, after Kafka's own checks (as Kafka runs CreateTopicPolicy):
    no name that could collide with a tenant's namespace, and the tenant's partition limit."""
    usage = broker.tenant_usage
    usage.check_name(name)
    usage.check_partitions(name, partitions, pending)


def _create(ctx, t, validate_only: bool, pending: dict[str, int]) -> CreatableTopicResult:
    broker = ctx.broker
    logs = broker.logs
    validate_topic_name(t.name)
    if t.name in logs.topics:
        raise _error(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{t.name}' already exists.")
    clash = next((name for name in logs.topics if collides(t.name, name)), None)
    if clash is not None:  # a tenant's session is not told the name of a topic outside its namespace
        tenant = broker.authorizer.tenant_of(ctx.session)
        shown = f": {clash}" if tenant is None or tenant.owns(clash) else "."
        raise _error(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic '{t.name}' collides with existing topic{shown}")
    overrides = _creation_overrides(logs, t.configs)
    count = _partition_count(broker, t)
    internal = t.name in INTERNAL_TOPICS
    topic = logs.create_topic(t.name, count, overrides, validate_only=True, internal=internal)  # Kafka's checks
    check_new_topic(broker, t.name, count, pending if validate_only else None)  # then the tenant policy
    if not validate_only:
        topic = logs.create_topic(t.name, count, overrides, internal=internal)
    result = CreatableTopicResult(name=t.name, topic_id=topic.topic_id, error_code=0, error_message=None)
    if ctx.version >= 5 and not _topic_allowed(ctx, Operation.DESCRIBE_CONFIGS, t.name):
        # Created, but the caller may not see its configs: Kafka says so in the config error field.
        result.topic_config_error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
    elif ctx.version >= 5:
        entries = describe_config(topic.overrides, logs.broker_defaults, include_synonyms=False)
        result.num_partitions = count
        result.replication_factor = BROKER_COUNT
        result.configs = [
            CreatableTopicConfigs(name=e.name, value=None if e.sensitive else e.value, read_only=e.read_only,
                                  config_source=int(e.source), is_sensitive=e.sensitive)
            for e in sorted(entries, key=lambda e: e.name)
        ]
    return result


def _create_failed(name: str, e: KafkaError) -> CreatableTopicResult:
    return CreatableTopicResult(name=name, error_code=e.code, error_message=e.message)


@api(CreateTopicsRequest)
async def create_topics(ctx, req: CreateTopicsRequest) -> CreateTopicsResponse:
    counts = Counter(t.name for t in req.topics)
    duplicates = [name for name, n in counts.items() if n > 1]
    results = []
    cluster_create = _ClusterPermission(ctx, Operation.CREATE)
    pending: dict[str, int] = {}  # validate_only: partitions per tenant the request would have created
    for t in req.topics:
        if counts[t.name] > 1:
            continue
        if t.name == CLUSTER_METADATA_TOPIC:
            results.append(_create_failed(t.name, _error(
                ErrorCode.INVALID_REQUEST, f"Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited.")))
            continue
        if not (_topic_allowed(ctx, Operation.CREATE, t.name) or cluster_create):
            results.append(_create_failed(t.name, _error(ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                                         "Authorization failed.")))
            continue
        try:
            results.append(_create(ctx, t, req.validate_only, pending))
        except KafkaError as e:
            results.append(_create_failed(t.name, e))
    results += [_create_failed(name, _error(ErrorCode.INVALID_REQUEST, "Duplicate topic name."))
                for name in duplicates]
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


# ---------------------------------------------------------------------------- DeleteTopics

def _deleted(name, topic_id, code=ErrorCode.NONE, message=None) -> DeletableTopicResult:
    return DeletableTopicResult(name=name, topic_id=topic_id, error_code=code, error_message=message)


def _requested(ctx, req: DeleteTopicsRequest) -> list[tuple[str | None, bytes]]:
    if ctx.version >= 6:
        return [(t.name, bytes(t.topic_id)) for t in req.topics]
    return [(name, ZERO_UUID) for name in req.topic_names]


def _resolve(ctx, requested):
    """Kafka's checks on names and ids, authorization included: (topics to delete as {id: topic}, errors)."""
    logs = ctx.broker.logs
    cluster_delete = _ClusterPermission(ctx, Operation.DELETE)

    def may(op: Operation, name: str) -> bool:
        return _topic_allowed(ctx, op, name) or bool(cluster_delete)

    errors = []
    names = Counter(n for n, i in requested if n is not None and i == ZERO_UUID)
    ids = Counter(i for n, i in requested if n is None and i != ZERO_UUID)
    by_id: dict[bytes, object] = {}
    for name, topic_id in requested:
        if name is None and topic_id == ZERO_UUID:
            errors.append(_deleted(None, ZERO_UUID, ErrorCode.INVALID_REQUEST,
                                   "Neither topic name nor id were specified."))
        elif name is not None and topic_id != ZERO_UUID:
            errors.append(_deleted(name, topic_id, ErrorCode.INVALID_REQUEST,
                                   "You may not specify both topic name and topic id."))
    errors += [_deleted(n, ZERO_UUID, ErrorCode.INVALID_REQUEST, "Duplicate topic name.") for n, c in names.items()
               if c > 1]
    errors += [_deleted(None, i, ErrorCode.INVALID_REQUEST, "Duplicate topic id.") for i, c in ids.items() if c > 1]
    for topic_id in (i for i, c in ids.items() if c == 1):
        topic = logs.topic_by_id(topic_id)
        if topic is None or not may(Operation.DESCRIBE, topic.name):
            errors.append(_deleted(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_ID_MESSAGE))
        elif not may(Operation.DELETE, topic.name):
            errors.append(_deleted(topic.name, topic_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                   TOPIC_AUTHORIZATION_MESSAGE))
        else:
            by_id[topic_id] = topic
    for name in (n for n, c in names.items() if c == 1):
        if not may(Operation.DESCRIBE, name):
            errors.append(_deleted(name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_MESSAGE))
            continue
        topic = logs.topics.get(name)
        if topic is None:
            errors.append(_deleted(name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_MESSAGE))
        elif not may(Operation.DELETE, name):
            errors.append(_deleted(name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_MESSAGE))
        elif topic.topic_id in by_id or ids.get(topic.topic_id, 0) > 1:
            # Named and also given by id: Kafka answers the name and drops the id without an answer.
            by_id.pop(topic.topic_id, None)
            errors.append(_deleted(name, topic.topic_id, ErrorCode.INVALID_REQUEST,
                                   "The provided topic name maps to an ID that was already supplied."))
        else:
            by_id[topic.topic_id] = topic
    return by_id, errors


def _delete_one(logs, usage: TenantUsage, topic) -> DeletableTopicResult:
    if topic.is_internal or topic.name in INTERNAL_TOPICS:
        return _deleted(topic.name, topic.topic_id, ErrorCode.INVALID_TOPIC_EXCEPTION,
                        f"Topic {topic.name} is an internal topic and is not allowed to be marked for deletion.")
    try:
        logs.delete_topic(topic.name)
    except KafkaError as e:
        return _deleted(topic.name, topic.topic_id, e.code, e.message)
    tenant = usage.topic_tenant(topic.name)
    if tenant is not None:  # its storage is free now, not at the next recount
        usage.invalidate(tenant.name)
    return _deleted(topic.name, topic.topic_id)


@api(DeleteTopicsRequest)
async def delete_topics(ctx, req: DeleteTopicsRequest) -> DeleteTopicsResponse:
    requested = _requested(ctx, req)
    if not ctx.broker.config["delete.topic.enable"]:
        code = ErrorCode.TOPIC_DELETION_DISABLED if ctx.version >= 3 else ErrorCode.INVALID_REQUEST
        return DeleteTopicsResponse(throttle_time_ms=0, responses=[
            _deleted(name, topic_id, code, DELETION_DISABLED_MESSAGE) for name, topic_id in requested])
    logs = ctx.broker.logs
    to_delete, results = _resolve(ctx, requested)
    usage = ctx.broker.tenant_usage
    results += [_delete_one(logs, usage, topic) for topic in to_delete.values()]
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


# ---------------------------------------------------------------------------- CreatePartitions

def _grow(logs, usage: TenantUsage, node_id: int, t, validate_only: bool, pending: dict[str, int]) -> None:
    topic = logs.topics.get(t.name)
    if topic is None:
        raise _error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_MESSAGE)
    if topic.is_internal or topic.name in INTERNAL_TOPICS:
        raise _error(ErrorCode.INVALID_TOPIC_EXCEPTION,
                     f"Cannot add partitions to internal topic {topic.name}: records are placed by partition count.")
    current = len(topic.partitions)
    if t.count == current:
        raise _error(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partition(s).")
    if t.count < current:
        raise _error(ErrorCode.INVALID_PARTITIONS, f"The topic {t.name} currently has {current} partition(s); "
                     f"{t.count} would not be an increase.")
    additional = t.count - current
    if t.assignments is not None:
        if len(t.assignments) != additional:
            raise _error(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Attempted to add {additional} additional "
                         f"partition(s), but only {len(t.assignments)} assignment(s) were specified.")
        for a in t.assignments:
            _check_assignment(a.broker_ids, BROKER_COUNT, node_id)
    usage.check_partitions(t.name, additional, pending if validate_only else None)
    logs.create_partitions(t.name, t.count, validate_only=validate_only)


@api(CreatePartitionsRequest)
async def create_partitions(ctx, req: CreatePartitionsRequest) -> CreatePartitionsResponse:
    logs = ctx.broker.logs
    counts = Counter(t.name for t in req.topics)
    results = [CreatePartitionsTopicResult(name=name, error_code=ErrorCode.INVALID_REQUEST,
                                           error_message="Duplicate topic name.")
               for name, n in counts.items() if n > 1]
    usage = ctx.broker.tenant_usage
    pending: dict[str, int] = {}
    for t in req.topics:
        if counts[t.name] > 1:
            continue
        if not _topic_allowed(ctx, Operation.ALTER, t.name):
            results.append(CreatePartitionsTopicResult(name=t.name, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                                        error_message=TOPIC_AUTHORIZATION_MESSAGE))
            continue
        try:
            _grow(logs, usage, ctx.broker.node_id, t, req.validate_only, pending)
            results.append(CreatePartitionsTopicResult(name=t.name, error_code=0, error_message=None))
        except KafkaError as e:
            results.append(CreatePartitionsTopicResult(name=t.name, error_code=e.code, error_message=e.message))
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)
