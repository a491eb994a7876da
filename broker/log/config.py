"""Topic configs: validation of overrides, the effective LogConfig, and DescribeConfigs entries.

A topic's effective value comes from its override, else the broker property (any of Kafka's synonyms,
e.g. log.retention.hours for retention.ms), else Kafka's default; DescribeConfigs reports which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.config_defs import (
    BY_NAME,
    DEFS,
    LONG_MAX,
    ConfigDef,
    ConfigSource,
    ConfigType,
    parse_value,
    render_value,
)

__all__ = [
    "BY_NAME", "DEFS", "ConfigDef", "ConfigSource", "ConfigType", "LogConfig", "ConfigEntry", "ConfigSynonym",
    "validate_overrides", "build_log_config", "describe_config", "apply_incremental",
    "OP_SET", "OP_DELETE", "OP_APPEND", "OP_SUBTRACT",
]

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


@dataclass(frozen=True)
class LogConfig:
    """Effective per-topic settings in Python types (ms, bytes, booleans, tuples for lists)."""

    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    delete_retention_ms: int = 86_400_000
    file_delete_delay_ms: int = 60_000
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    follower_replication_throttled_replicas: tuple[str, ...] = ()
    index_interval_bytes: int = 4096
    leader_replication_throttled_replicas: tuple[str, ...] = ()
    local_retention_bytes: int = -2
    local_retention_ms: int = -2
    max_compaction_lag_ms: int = LONG_MAX
    max_message_bytes: int = 1_048_588
    message_downconversion_enable: bool = True
    message_timestamp_after_max_ms: int = 3_600_000
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_difference_max_ms: int = LONG_MAX
    message_timestamp_type: str = "CreateTime"
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    min_insync_replicas: int = 1
    preallocate: bool = False
    remote_storage_enable: bool = False
    retention_bytes: int = -1
    retention_ms: int = 604_800_000
    segment_bytes: int = 1_073_741_824
    segment_index_bytes: int = 10_485_760
    segment_jitter_ms: int = 0
    segment_ms: int = 604_800_000
    unclean_leader_election_enable: bool = False
    confluent_key_schema_validation: bool = False
    confluent_key_subject_name_strategy: str = "io.confluent.kafka.serializers.subject.TopicNameStrategy"
    confluent_value_schema_validation: bool = False
    confluent_value_subject_name_strategy: str = "io.confluent.kafka.serializers.subject.TopicNameStrategy"

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def timestamp_before_max_ms(self) -> int:
        """Effective bound: the deprecated difference.max.ms still tightens it, as in Kafka 3.x."""
        return min(self.message_timestamp_before_max_ms, self.message_timestamp_difference_max_ms)

    @property
    def timestamp_after_max_ms(self) -> int:
        return min(self.message_timestamp_after_max_ms, self.message_timestamp_difference_max_ms)


_FIELDS = {f.name for f in fields(LogConfig)}
assert all(d.attr in _FIELDS for d in DEFS), "every config def needs a LogConfig field"


def _invalid(message: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_CONFIG, message)


def _parse_checked(d: ConfigDef, raw: Any, origin: str) -> Any:
    try:
        value = parse_value(d, raw)
    except ValueError as e:
        raise _invalid(f"Invalid value {raw!r} for configuration {origin}: {e}") from None
    err = d.validator(value) if d.validator else None
    if err:
        raise _invalid(f"Invalid value {raw!r} for configuration {origin}: {err}")
    return value


def validate_overrides(overrides: Mapping[str, Any]) -> dict[str, str]:
    """Check topic overrides by name and value; return them normalised to strings.

    Raises KafkaError(INVALID_CONFIG) naming the first bad config.
    """
    out: dict[str, str] = {}
    for name, raw in overrides.items():
        d = BY_NAME.get(name)
        if d is None:
            raise _invalid(f"Unknown topic config name: {name}")
        if raw is None:
            raise _invalid(f"Null value not supported for topic config: {name}")
        value = _parse_checked(d, raw, name)
        out[name] = render_value(d, value) if not isinstance(raw, str) else raw.strip()
    return out


def _explicit(broker: Mapping[str, Any], name: str) -> bool:
    """Whether the operator set a broker property. A plain dict holds only what was set; the broker's
    Config holds every property and answers `is_default(name)`."""
    is_default = getattr(broker, "is_default", None)
    return broker.get(name) is not None and not (is_default is not None and is_default(name))


def _from_broker(d: ConfigDef, broker: Mapping[str, Any]) -> Any | None:
    """The topic-unit value of the first synonym the operator set (in Kafka's precedence), else None.

    Unset broker properties fall through to Kafka's topic default, which equals Kafka's broker default.
    """
    for syn in d.synonyms:
        if not _explicit(broker, syn.name):
            continue
        value = _parse_checked(d, broker[syn.name], syn.name)
        if syn.scale != 1:
            value = -1 if value < 0 else min(value * syn.scale, LONG_MAX)
        return value
    return None


def _resolve(d: ConfigDef, overrides: Mapping[str, str], broker: Mapping[str, Any]) -> tuple[Any, ConfigSource]:
    if d.name in overrides:
        return _parse_checked(d, overrides[d.name], d.name), ConfigSource.DYNAMIC_TOPIC_CONFIG
    found = _from_broker(d, broker)
    if found is not None:
        return found, ConfigSource.STATIC_BROKER_CONFIG
    return d.default, ConfigSource.DEFAULT_CONFIG


def build_log_config(broker_defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> LogConfig:
    """Effective LogConfig from broker properties (Kafka's names) and topic overrides."""
    overrides = validate_overrides(overrides or {})
    values = {d.attr: _resolve(d, overrides, broker_defaults)[0] for d in DEFS}
    if values["min_compaction_lag_ms"] > values["max_compaction_lag_ms"]:
        raise _invalid(
            f"conflict: min.compaction.lag.ms {values['min_compaction_lag_ms']} is larger than "
            f"max.compaction.lag.ms {values['max_compaction_lag_ms']}"
        )
    return LogConfig(**values)


@dataclass(frozen=True)
class ConfigSynonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True)
class ConfigEntry:
    """One DescribeConfigs result entry (ints for source and type, as on the wire)."""

    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    sensitive: bool
    config_type: ConfigType
    documentation: str
    synonyms: list[ConfigSynonym]

    @property
    def is_default(self) -> bool:
        return self.source == ConfigSource.DEFAULT_CONFIG


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _synonyms(d: ConfigDef, overrides: Mapping[str, str], broker: Mapping[str, Any]) -> list[ConfigSynonym]:
    out = []
    if d.name in overrides:
        out.append(ConfigSynonym(d.name, overrides[d.name], ConfigSource.DYNAMIC_TOPIC_CONFIG))
    for syn in d.synonyms:
        if _explicit(broker, syn.name):
            out.append(ConfigSynonym(syn.name, _text(broker[syn.name]), ConfigSource.STATIC_BROKER_CONFIG))
    default_syn = next((s for s in d.synonyms if s.default is not None), None)
    if default_syn is not None:
        out.append(ConfigSynonym(default_syn.name, _text(default_syn.default), ConfigSource.DEFAULT_CONFIG))
    return out


def describe_config(
    overrides: Mapping[str, str],
    broker_defaults: Mapping[str, Any],
    names: Iterable[str] | None = None,
    *,
    include_synonyms: bool = True,
) -> list[ConfigEntry]:
    """DescribeConfigs entries for a topic; `names` limits them (unknown names are skipped, as Kafka does)."""
    wanted = list(names) if names is not None else [d.name for d in DEFS]
    entries = []
    for name in wanted:
        d = BY_NAME.get(name)
        if d is None:
            continue
        value, source = _resolve(d, overrides, broker_defaults)
        text = overrides[name] if source == ConfigSource.DYNAMIC_TOPIC_CONFIG else render_value(d, value)
        entries.append(
            ConfigEntry(
                name=name,
                value=None if d.sensitive else text,
                source=source,
                read_only=d.read_only,
                sensitive=d.sensitive,
                config_type=d.type,
                documentation=d.doc,
                synonyms=_synonyms(d, overrides, broker_defaults) if include_synonyms else [],
            )
        )
    return entries


def apply_incremental(current: Mapping[str, str], ops: Iterable[tuple[str, int, str | None]]) -> dict[str, str]:
    """IncrementalAlterConfigs on a topic's overrides: SET, DELETE, APPEND/SUBTRACT (lists only)."""
    result = dict(current)
    for name, op, value in ops:
        d = BY_NAME.get(name)
        if d is None:
            raise _invalid(f"Unknown topic config name: {name}")
        if op == OP_SET:
            if value is None:
                raise _invalid(f"Null value not supported for topic config: {name}")
            result[name] = value
        elif op == OP_DELETE:
            result.pop(name, None)
        elif op in (OP_APPEND, OP_SUBTRACT):
            if d.type != ConfigType.LIST:
                verb = "append" if op == OP_APPEND else "subtract"
                raise _invalid(f"Config value {verb} is not allowed for config key: {name}")
            base = parse_value(d, result[name]) if name in result else tuple(d.default)
            items = list(parse_value(d, value or ""))
            if op == OP_APPEND:
                merged = list(base) + [x for x in items if x not in base]
            else:
                merged = [x for x in base if x not in items]
            result[name] = ",".join(merged)
        else:
            raise _invalid(f"Unknown config operation {op} for {name}")
    return validate_overrides(result)
