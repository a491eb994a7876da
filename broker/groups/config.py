"""The group coordinator's settings, read once from the broker config under Kafka's property names.

Kafka's defaults apply to any property the broker config does not carry, so the coordinator works
before the config schema lists them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INT32_MAX = 2**31 - 1

# Kafka property name -> (GroupConfig attribute, Kafka's default)
PROPERTIES: dict[str, tuple[str, Any]] = {
    "group.initial.rebalance.delay.ms": ("initial_rebalance_delay_ms", 3000),
    "group.min.session.timeout.ms": ("min_session_timeout_ms", 6000),
    "group.max.session.timeout.ms": ("max_session_timeout_ms", 1800000),
    "group.max.size": ("max_size", INT32_MAX),
    "offsets.topic.num.partitions": ("offsets_topic_num_partitions", 50),
    "offsets.topic.segment.bytes": ("offsets_topic_segment_bytes", 104857600),
    "offsets.topic.compression.codec": ("offsets_topic_compression_codec", 0),
    "offsets.load.buffer.size": ("offsets_load_buffer_size", 5242880),
    "offset.metadata.max.bytes": ("offset_metadata_max_bytes", 4096),
    "offsets.retention.minutes": ("offsets_retention_minutes", 10080),
    "offsets.retention.check.interval.ms": ("offsets_retention_check_interval_ms", 600000),
}


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Typed coordinator settings; build it with `GroupConfig.from_mapping(broker_config)`."""

    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    max_size: int = INT32_MAX
    offsets_topic_num_partitions: int = 50
    offsets_topic_segment_bytes: int = 104857600
    offsets_topic_compression_codec: int = 0
    offsets_load_buffer_size: int = 5242880
    offset_metadata_max_bytes: int = 4096
    offsets_retention_minutes: int = 10080
    offsets_retention_check_interval_ms: int = 600000

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> GroupConfig:
        """Reads each property by its Kafka name; a missing one keeps Kafka's default."""
        values: dict[str, Any] = {}
        for name, (attr, default) in PROPERTIES.items():
            value = default
            if config is not None:
                try:
                    value = config[name]
                except KeyError:
                    value = default
            values[attr] = _as_int(name, value)
        return cls(**values)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if name == "offsets.topic.compression.codec" and value in _CODEC_NAMES:
            return _CODEC_NAMES[value]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an integer, got {value!r}") from None


_CODEC_NAMES = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
