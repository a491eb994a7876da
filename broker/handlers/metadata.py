"""Metadata: this node as the only broker, leader of every partition, with topic ids (v10+)."""

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.codec import ZERO_UUID
from keystream.broker.protocol.messages.metadata_request import MetadataRequest
from keystream.broker.protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

OPS_NOT_REQUESTED = -2147483648
# Without an authorizer every operation on a topic is allowed: READ, WRITE, CREATE, DELETE, ALTER,
# DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's AclOperation codes as bits).
ALL_TOPIC_OPS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
ALL_CLUSTER_OPS = sum(1 << op for op in (4, 5, 7, 8, 9, 10, 11, 12))


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
    ops = ALL_TOPIC_OPS if req.include_topic_authorized_operations else OPS_NOT_REQUESTED
    all_topics = req.topics is None or (ctx.version == 0 and not req.topics)
    auto_create = broker.config["auto.create.topics.enable"] and (ctx.version < 4 or req.allow_auto_topic_creation)
    topics = []
    if all_topics:
        topics = [_topic_entry(broker, t, ops) for t in logs.topics.values()]
    else:
        for wanted in req.topics:
            if wanted.name is None:
                topic = logs.topic_by_id(wanted.topic_id)
                topics.append(_topic_entry(broker, topic, ops) if topic
                              else _missing(None, wanted.topic_id, ErrorCode.UNKNOWN_TOPIC_ID))
                continue
            topic = logs.topic(wanted.name)
            if topic is None and auto_create:
                try:
                    topic = logs.create_topic(wanted.name, broker.config["num.partitions"], {})
                except KafkaError as e:
                    topics.append(_missing(wanted.name, None, e.code))
                    continue
            topics.append(_topic_entry(broker, topic, ops) if topic
                          else _missing(wanted.name, None, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[MetadataResponseBroker(broker.node_id, broker.advertised_host, broker.advertised_port, None)],
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        topics=topics,
        cluster_authorized_operations=ALL_CLUSTER_OPS if req.include_cluster_authorized_operations
        else OPS_NOT_REQUESTED,
    )
