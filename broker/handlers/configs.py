"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for TOPIC and BROKER resources.

Topic configs come from the LogManager; broker configs from the broker's Config (static: a
server.properties file, the environment, defaults). Dynamic broker configs are not supported, so every
broker config is read-only and a change is refused as Kafka refuses changes to static configs
(INVALID_REQUEST "Cannot update these configs dynamically: Set(...)"). Checks run in the order of
Kafka's broker preprocessing and controller validation, so multi-fault requests report the same error.

Authorization as in Kafka, per resource and before the resource is looked up (an unauthorized caller
gets the same answer for a topic that exists and one that does not): DescribeConfigs needs
DescribeConfigs on the topic, or on the cluster for broker resources; AlterConfigs and
IncrementalAlterConfigs need AlterConfigs likewise. Refusals are TOPIC_AUTHORIZATION_FAILED or
CLUSTER_AUTHORIZATION_FAILED with Kafka's default text. For alters the check follows the request-wide
preprocessing (duplicates, null values), as Kafka's controller authorizes after the broker's checks.
"""

import re

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.handlers.registry import api
from keystream.broker.log.config import (
    OP_APPEND,
    OP_DELETE,
    OP_SUBTRACT,
    ConfigSource,
    ConfigType,
    apply_incremental,
    build_log_config,
    validate_overrides,
)
from keystream.broker.log.topic_meta import validate_topic_name
from keystream.broker.protocol.messages.alter_configs_request import AlterConfigsRequest
from keystream.broker.protocol.messages.alter_configs_response import (
    AlterConfigsResourceResponse,
    AlterConfigsResponse,
)
from keystream.broker.protocol.messages.describe_configs_request import DescribeConfigsRequest
from keystream.broker.protocol.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)
from keystream.broker.protocol.messages.incremental_alter_configs_request import (
    IncrementalAlterConfigsRequest,
)
from keystream.broker.protocol.messages.incremental_alter_configs_response import (
    AlterConfigsResourceResponse as IncrementalResourceResponse,
)
from keystream.broker.protocol.messages.incremental_alter_configs_response import (
    IncrementalAlterConfigsResponse,
)
from keystream.config import BROKER_SCHEMA
from keystream.configdef import Password, format_value

TOPIC, BROKER = 2, 4
RESOURCE_TYPES = {2: "TOPIC", 4: "BROKER", 8: "BROKER_LOGGER", 16: "CLIENT_METRICS", 32: "GROUP"}
INVALID_REQUEST_MESSAGE = ("This most likely occurs because of a request being malformed by the client library or "
                           "the message was sent to an incompatible broker. See the broker logs for more details.")
UNKNOWN_TOPIC_MESSAGE = "This server does not host this topic-partition."
# Kafka's refusal per config resource type: (ACL resource type, its name for this resource, error, text).
_CLUSTER_REFUSAL = (ResourceType.CLUSTER, CLUSTER_NAME, ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                    "Cluster authorization failed.")
_REFUSALS = {
    TOPIC: (ResourceType.TOPIC, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
    BROKER: _CLUSTER_REFUSAL,
    8: _CLUSTER_REFUSAL,  # BROKER_LOGGER
    16: _CLUSTER_REFUSAL,  # CLIENT_METRICS
    32: (ResourceType.GROUP, None, ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."),
}
_NODE_ID = re.compile(r"[+-]?[0-9]+")
_PROPS = {prop.name: prop for prop in BROKER_SCHEMA}
_PROP_TYPES = {"bool": ConfigType.BOOLEAN, "string": ConfigType.STRING, "int": ConfigType.INT,
               "short": ConfigType.SHORT, "long": ConfigType.LONG, "double": ConfigType.DOUBLE,
               "list": ConfigType.LIST, "password": ConfigType.PASSWORD}
# Kafka's broker config synonyms (DynamicBrokerConfig.brokerConfigSynonyms), most specific first.
_SYNONYM_GROUPS = (
    ("log.roll.ms", "log.roll.hours"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
)
_SYNONYMS = {name: group for group in _SYNONYM_GROUPS for name in group}
_SYNONYMS["log.flush.interval.ms"] = ("log.flush.interval.ms", "log.flush.scheduler.interval.ms")


def _authorize(ctx, r, op: Operation) -> None:
    """Raises Kafka's authorization error for `r` unless the caller may `op` it; other types pass on."""
    refusal = _REFUSALS.get(r.resource_type)
    if refusal is None:
        return  # answered INVALID_REQUEST by the type check that follows
    rtype, name, code, message = refusal
    if not ctx.allowed(op, rtype, name if name is not None else r.resource_name):
        raise KafkaError(code, message)


def _invalid_request(message: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_REQUEST, message)


def _unsupported_type(resource_type: int, kafka_handles: set[int]) -> KafkaError:
    """Kafka's answer for a type it does not handle here; our own for types only Kafka supports."""
    if resource_type in kafka_handles and resource_type in RESOURCE_TYPES:
        return _invalid_request(f"Unsupported resource type: {RESOURCE_TYPES[resource_type]}")
    return _invalid_request(f"Unknown resource type {resource_type}")


def _node_id(name: str, what: str) -> int:
    if not _NODE_ID.fullmatch(name):
        raise _invalid_request(f"{what} must be an integer, but it is: {name}")
    return int(name)


# ---------------------------------------------------------------------------- DescribeConfigs

def _text(value) -> str | None:
    return None if value is None or isinstance(value, Password) else format_value(value)


def _broker_synonyms(config, name: str, sensitive: bool) -> list[DescribeConfigsSynonym]:
    """Static settings first, then defaults, from `name` on (Kafka drops the more specific synonyms)."""
    names = _SYNONYMS.get(name, (name,))
    found = []
    for syn in names:
        if syn in config and not config.is_default(syn) and config[syn] is not None:
            found.append((syn, config[syn], ConfigSource.STATIC_BROKER_CONFIG))
    for syn in names:
        prop = _PROPS.get(syn)
        if prop is not None and prop.default is not None:
            found.append((syn, prop.parse(prop.default), ConfigSource.DEFAULT_CONFIG))
    while found and found[0][0] != name:
        found.pop(0)
    return [DescribeConfigsSynonym(syn, None if sensitive else _text(value), int(source)) for syn, value, source in found]


def _broker_entries(config, keys, include_synonyms: bool, include_docs: bool) -> list[DescribeConfigsResourceResult]:
    out = []
    for name in config:
        if keys and name not in keys:
            continue
        prop = _PROPS.get(name)
        kind = _PROP_TYPES.get(prop.type, ConfigType.UNKNOWN) if prop else ConfigType.UNKNOWN
        sensitive = kind == ConfigType.PASSWORD or isinstance(config[name], Password)
        synonyms = _broker_synonyms(config, name, sensitive)
        source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
        out.append(DescribeConfigsResourceResult(
            name=name, value=None if sensitive else _text(config[name]), read_only=True,
            is_default=source == ConfigSource.DEFAULT_CONFIG, config_source=int(source), is_sensitive=sensitive,
            synonyms=synonyms if include_synonyms else [], config_type=int(kind),
            documentation=(prop.doc if prop else None) if include_docs else None,
        ))
    return out


def _topic_entries(logs, name: str, keys, include_synonyms: bool, include_docs: bool):
    validate_topic_name(name)
    if name not in logs.topics:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_MESSAGE)
    entries = logs.describe_topic_config(name, keys or None, include_synonyms=include_synonyms)
    return [
        DescribeConfigsResourceResult(
            name=e.name, value=None if e.sensitive else e.value, read_only=e.read_only,
            is_default=e.source == ConfigSource.DEFAULT_CONFIG, config_source=int(e.source),
            is_sensitive=e.sensitive, config_type=int(e.config_type),
            synonyms=[DescribeConfigsSynonym(s.name, None if e.sensitive else s.value, int(s.source))
                      for s in e.synonyms],
            documentation=e.documentation if include_docs else None,
        )
        for e in entries
    ]


def _describe(ctx, r, req: DescribeConfigsRequest) -> list[DescribeConfigsResourceResult]:
    broker = ctx.broker
    keys = list(dict.fromkeys(r.configuration_keys)) if r.configuration_keys else None  # null or empty: all
    if r.resource_type == TOPIC:
        return _topic_entries(broker.logs, r.resource_name, keys, req.include_synonyms, req.include_documentation)
    if r.resource_type == BROKER:
        if not r.resource_name:
            return []  # cluster-wide dynamic defaults: Keystream has none
        if _node_id(r.resource_name, "Broker id") != broker.node_id:
            raise _invalid_request(f"Unexpected broker id, expected {broker.node_id} or empty string, "
                                   f"but received {r.resource_name}")
        return _broker_entries(broker.config, keys, req.include_synonyms, req.include_documentation)
    raise _unsupported_type(r.resource_type, set(RESOURCE_TYPES))


@api(DescribeConfigsRequest)
async def describe_configs(ctx, req: DescribeConfigsRequest) -> DescribeConfigsResponse:
    if any(r.resource_type not in RESOURCE_TYPES for r in req.resources):
        # Kafka rejects the whole request when one resource has an unknown type.
        return DescribeConfigsResponse(throttle_time_ms=0, results=[
            DescribeConfigsResult(ErrorCode.INVALID_REQUEST, INVALID_REQUEST_MESSAGE, r.resource_type,
                                  r.resource_name, []) for r in req.resources])
    results = []
    for r in req.resources:
        try:
            _authorize(ctx, r, Operation.DESCRIBE_CONFIGS)
            configs, code, message = _describe(ctx, r, req), 0, None
        except KafkaError as e:
            configs, code, message = [], e.code, e.message
        results.append(DescribeConfigsResult(code, message, r.resource_type, r.resource_name, configs))
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


# ---------------------------------------------------------------------------- AlterConfigs (both)

def _duplicate_resources(resources) -> set[tuple[int, str]]:
    seen, dups = set(), set()
    for r in resources:
        key = (r.resource_type, r.resource_name)
        (dups if key in seen else seen).add(key)
    return dups


def _preprocess(r, dups, null_ok=lambda c: False) -> None:
    """Kafka's broker-side checks before any resource-specific work."""
    if (r.resource_type, r.resource_name) in dups:
        raise _invalid_request("Each resource must appear at most once.")
    names = [c.name for c in r.configs]
    if len(set(names)) != len(names):
        raise _invalid_request("Error due to duplicate config keys")
    nulls = [c.name for c in r.configs if c.value is None and not null_ok(c)]
    if nulls:
        raise _invalid_request("Null value not supported for : " + ", ".join(nulls))


def _check_broker_resource(ctx, name: str) -> None:
    if name and _node_id(name, "Node id") != ctx.broker.node_id:
        raise _invalid_request(f"Unexpected broker id, expected {ctx.broker.node_id}, but received {name}")


def _refuse_dynamic(names: list[str]) -> None:
    if names:
        raise _invalid_request(f"Cannot update these configs dynamically: Set({', '.join(dict.fromkeys(names))})")


def _check_topic_resource(name: str) -> None:
    if not name:
        raise _invalid_request("Default topic resources are not allowed.")
    validate_topic_name(name)


def _require_topic(logs, name: str) -> None:
    """Kafka validates the configs before it checks that the topic exists."""
    if name not in logs.topics:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")


def _alter(ctx, r, validate_only: bool) -> None:
    if r.resource_type == TOPIC:
        logs = ctx.broker.logs
        _check_topic_resource(r.resource_name)
        overrides = validate_overrides({c.name: c.value for c in r.configs})
        build_log_config(logs.broker_defaults, overrides)
        _require_topic(logs, r.resource_name)
        logs.alter_topic_config(r.resource_name, overrides, validate_only=validate_only)
    elif r.resource_type == BROKER:
        _check_broker_resource(ctx, r.resource_name)
        _refuse_dynamic([c.name for c in r.configs])
    else:
        raise _unsupported_type(r.resource_type, {16, 32})


def _result(r, cls, e: KafkaError | None = None):
    return cls(error_code=e.code if e else 0, error_message=e.message if e else None,
               resource_type=r.resource_type, resource_name=r.resource_name)


@api(AlterConfigsRequest)
async def alter_configs(ctx, req: AlterConfigsRequest) -> AlterConfigsResponse:
    """Legacy AlterConfigs: the given configs replace all of the resource's overrides."""
    dups = _duplicate_resources(req.resources)
    results = []
    for r in req.resources:
        try:
            _preprocess(r, dups)
            _authorize(ctx, r, Operation.ALTER_CONFIGS)
            _alter(ctx, r, req.validate_only)
            results.append(_result(r, AlterConfigsResourceResponse))
        except KafkaError as e:
            results.append(_result(r, AlterConfigsResourceResponse, e))
    return AlterConfigsResponse(throttle_time_ms=0, responses=results)


# ---------------------------------------------------------------------------- IncrementalAlterConfigs

def _broker_ops(r) -> list[str]:
    """Names a broker resource would end up setting (DELETE of a static config changes nothing)."""
    left: dict[str, None] = {}
    for c in r.configs:
        if c.config_operation == OP_DELETE:
            left.pop(c.name, None)
            continue
        if c.config_operation in (OP_APPEND, OP_SUBTRACT):
            prop = _PROPS.get(c.name)
            if prop is None:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown config name: {c.name}")
            if prop.type != "list":
                verb = "append" if c.config_operation == OP_APPEND else "subtract"
                raise KafkaError(ErrorCode.INVALID_CONFIG,
                                 f"Config value {verb} is not allowed for config key: {c.name}")
        left[c.name] = None
    return list(left)


def _check_ops(r) -> None:
    bad = next((c.config_operation for c in r.configs if not 0 <= c.config_operation <= OP_SUBTRACT), None)
    if bad is not None:
        raise _invalid_request(f"Unknown operations type {bad}")


def _alter_incrementally(ctx, r, validate_only: bool) -> None:
    if r.resource_type == BROKER:
        _check_broker_resource(ctx, r.resource_name)
        _check_ops(r)
        _refuse_dynamic(_broker_ops(r))
        return
    if r.resource_type != TOPIC:
        raise _unsupported_type(r.resource_type, {8, 16, 32})
    logs = ctx.broker.logs
    _check_topic_resource(r.resource_name)
    _check_ops(r)
    topic = logs.topics.get(r.resource_name)
    current = topic.overrides if topic is not None else {}
    # Deleting a config that is not overridden is a no-op in Kafka, even for an unknown name.
    ops = [(c.name, c.config_operation, c.value) for c in r.configs
           if not (c.config_operation == OP_DELETE and c.name not in current)]
    build_log_config(logs.broker_defaults, apply_incremental(current, ops))
    _require_topic(logs, r.resource_name)
    logs.incremental_alter_topic_config(r.resource_name, ops, validate_only=validate_only)


@api(IncrementalAlterConfigsRequest)
async def incremental_alter_configs(ctx, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse:
    """SET / DELETE / APPEND / SUBTRACT on single configs; APPEND and SUBTRACT only on list configs."""
    dups = _duplicate_resources(req.resources)
    results = []
    for r in req.resources:
        try:
            _preprocess(r, dups, null_ok=lambda c: c.config_operation == OP_DELETE)
            _authorize(ctx, r, Operation.ALTER_CONFIGS)
            _alter_incrementally(ctx, r, req.validate_only)
            results.append(_result(r, IncrementalResourceResponse))
        except KafkaError as e:
            results.append(_result(r, IncrementalResourceResponse, e))
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=results)

