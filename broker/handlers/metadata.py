"""Metadata: this node as the only broker, leader of every partition, with topic ids (v10+).

Authorization as in Kafka: a topic needs Describe. "All topics" silently leaves out the topics the
caller may not describe; a named topic it may not describe is answered TOPIC_AUTHORIZATION_FAILED
before anything looks it up, so the answer is the same whether it exists or not. Auto-creation needs
Create on the cluster or on the topic.

One deliberate difference: Kafka treats topic ids as not sensitive and answers a known id the caller
may not describe with TOPIC_AUTHORIZATION_FAILED; Keystream answers UNKNOWN_TOPIC_ID, exactly as for
an id that does not exist, so an id does not reveal a topic either.

A tenant's session is asked about its own namespace only when it lists all topics (the authorizer
would deny the rest anyway; asking would count each as a refusal, broker/tenant_usage.py). Auto-creation
obeys the tenant policy of CreateTopics (handlers/topics.py `check_new_topic`): POLICY_VIOLATION
(Metadata has no message field).
"""

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.handlers.topics import check_new_topic
from keystream.broker.protocol.codec import ZERO_UUID
from keystream.broker.protocol.messages.metadata_request import MetadataRequest
from keystream.broker.protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

OPS_NOT_REQUESTED = -2147483648
DESCRIBE, CREATE = Operation.DESCRIBE, Operation.CREATE
TOPIC, CLUSTER = ResourceType.TOPIC, ResourceType.CLUSTER


def cluster_operations(ctx) -> int:
    """Kafka's cluster bitfield: 0 unless the caller may Describe the cluster."""
    if not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME):
        return 0
    return ctx.broker.authorizer.authorized_operations(ctx.session, CLUSTER, CLUSTER_NAME)


def _may_create(ctx, name: str) -> bool:
    return ctx.allowed(CREATE, TOPIC, name) or ctx.allowed(CREATE, CLUSTER, CLUSTER_NAME)


def _topic_entry(broker, topic, ops: int) -> MetadataResponseTopic:
    node = broker.node_id
    partitions = [
        MetadataResponsePartition(
            error_code=0, partition_index=p.partition, leader_id=node, leader_epoch=p.leader_epoch,
            replica_nodes=[node], isr_nodes=[node], offline_replicas=[],
        )
        for p in topic.partitions
    ]
    return MetadataResponseTopic(0, topic.name, topic.topic_id, topic.is_internal, partitions, ops)


def _missing(name, topic_id, code: ErrorCode) -> MetadataResponseTopic:
    return MetadataResponseTopic(code, name, topic_id or ZERO_UUID, False, [], OPS_NOT_REQUESTED)


@api(MetadataRequest)
async def metadata(ctx, req: MetadataRequest) -> MetadataResponse:
    broker = ctx.broker
    logs = broker.logs
    authorizer = broker.authorizer
    want_ops = ctx.version >= 8 and req.include_topic_authorized_operations

    def entry(topic) -> MetadataResponseTopic:
        ops = authorizer.authorized_operations(ctx.session, TOPIC, topic.name) if want_ops else OPS_NOT_REQUESTED
        return _topic_entry(broker, topic, ops)

    all_topics = req.topics is None or (ctx.version == 0 and not req.topics)
    auto_create = broker.config["auto.create.topics.enable"] and (ctx.version < 4 or req.allow_auto_topic_creation)
    topics = []
    if all_topics:
        tenant = broker.authorizer.tenant_of(ctx.session)
        prefix = tenant.prefix if tenant is not None else ""
        topics = [entry(t) for name, t in list(logs.topics.items())
                  if name.startswith(prefix) and ctx.allowed(DESCRIBE, TOPIC, name)]
    else:
        for wanted in req.topics:
            if wanted.name is None:
                topic = logs.topic_by_id(wanted.topic_id)
                if topic is not None and ctx.allowed(DESCRIBE, TOPIC, topic.name):
                    topics.append(entry(topic))
                else:
                    topics.append(_missing(None, wanted.topic_id, ErrorCode.UNKNOWN_TOPIC_ID))
                continue
            if not ctx.allowed(DESCRIBE, TOPIC, wanted.name):
                topics.append(_missing(wanted.name, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                continue
            topic = logs.topic(wanted.name)
            if topic is None and auto_create:
                if not _may_create(ctx, wanted.name):
                    topics.append(_missing(wanted.name, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                    continue
                count = broker.config["num.partitions"]
                try:
                    logs.create_topic(wanted.name, count, {}, validate_only=True)  # Kafka's checks first
                    check_new_topic(broker, wanted.name, count)
                    topic = logs.create_topic(wanted.name, count, {})
                except KafkaError as e:
                    topics.append(_missing(wanted.name, None, e.code))
                    continue
            topics.append(entry(topic) if topic
                          else _missing(wanted.name, None, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    # Kafka fills the cluster bitfield only in v8-v10 (later versions moved it to DescribeCluster).
    cluster_ops = OPS_NOT_REQUESTED
    if 8 <= ctx.version <= 10 and req.include_cluster_authorized_operations:
        cluster_ops = cluster_operations(ctx)
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[MetadataResponseBroker(broker.node_id, *broker.endpoint(ctx.session.listener), None)],
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        topics=topics,
        cluster_authorized_operations=cluster_ops,
    )
