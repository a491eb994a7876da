"""Topic config definitions: validation, broker synonyms, DescribeConfigs entries, incremental ops."""

from __future__ import annotations

import pytest

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.config import (
    DEFS,
    OP_APPEND,
    OP_DELETE,
    OP_SET,
    OP_SUBTRACT,
    ConfigSource,
    ConfigType,
    LogConfig,
    apply_incremental,
    build_log_config,
    describe_config,
    validate_overrides,
)


def invalid(fn, *args):
    with pytest.raises(KafkaError) as e:
        fn(*args)
    assert e.value.code == ErrorCode.INVALID_CONFIG
    return e.value.message


def test_defaults_match_kafka():
    c = build_log_config({})
    assert c == LogConfig()
    assert (c.max_message_bytes, c.segment_bytes, c.retention_ms, c.cleanup_policy) == (
        1_048_588, 1 << 30, 7 * 86_400_000, ("delete",))
    assert c.compression_type == "producer" and c.message_timestamp_type == "CreateTime"
    names = {d.name for d in DEFS}
    for required in ["cleanup.policy", "compression.type", "delete.retention.ms", "file.delete.delay.ms",
                     "flush.messages", "flush.ms", "index.interval.bytes", "max.compaction.lag.ms",
                     "max.message.bytes", "message.timestamp.type", "message.timestamp.before.max.ms",
                     "message.timestamp.after.max.ms", "message.timestamp.difference.max.ms",
                     "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas",
                     "retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes",
                     "segment.jitter.ms", "segment.ms", "unclean.leader.election.enable", "preallocate",
                     "message.downconversion.enable", "confluent.value.schema.validation",
                     "confluent.key.schema.validation", "confluent.value.subject.name.strategy",
                     "confluent.key.subject.name.strategy"]:
        assert required in names


@pytest.mark.parametrize("name, value", [
    ("nope.config", "1"),
    ("retention.ms", "-2"),
    ("retention.ms", "abc"),
    ("segment.bytes", "13"),
    ("segment.bytes", str(2**31)),
    ("cleanup.policy", "compact,shred"),
    ("cleanup.policy", ""),
    ("compression.type", "brotli"),
    ("message.timestamp.type", "WallClock"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.cleanable.dirty.ratio", "nan"),
    ("unclean.leader.election.enable", "yes"),
    ("min.insync.replicas", "0"),
    ("confluent.value.subject.name.strategy", "com.example.Mine"),
    ("retention.ms", None),
])
def test_bad_overrides_name_the_config(name, value):
    assert name in invalid(validate_overrides, {name: value})


def test_good_overrides_and_types():
    over = validate_overrides({
        "cleanup.policy": "compact, delete", "retention.ms": " 1000", "segment.bytes": 14,
        "min.cleanable.dirty.ratio": "0.1", "confluent.value.schema.validation": "TRUE",
        "confluent.value.subject.name.strategy": "RecordNameStrategy", "compression.type": "zstd",
    })
    c = build_log_config({}, over)
    assert c.cleanup_policy == ("compact", "delete") and c.compact and c.delete
    assert (c.retention_ms, c.segment_bytes, c.min_cleanable_dirty_ratio) == (1000, 14, 0.1)
    assert c.confluent_value_schema_validation is True and c.compression_type == "zstd"


def test_min_lag_above_max_lag_conflicts():
    assert "max.compaction.lag.ms" in invalid(
        build_log_config, {}, {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})


def test_broker_synonyms_and_precedence():
    c = build_log_config({"log.retention.hours": "2", "log.segment.bytes": 5000, "message.max.bytes": "77"})
    assert (c.retention_ms, c.segment_bytes, c.max_message_bytes) == (7_200_000, 5000, 77)
    c = build_log_config({"log.retention.hours": 2, "log.retention.minutes": 3, "log.retention.ms": 4})
    assert c.retention_ms == 4
    assert build_log_config({"log.retention.minutes": 3}).retention_ms == 180_000
    assert build_log_config({"log.retention.hours": -1}).retention_ms == -1
    assert build_log_config({"log.roll.hours": 1}).segment_ms == 3_600_000
    c = build_log_config({"log.cleanup.policy": "compact"}, {"retention.ms": "9"})
    assert c.cleanup_policy == ("compact",) and c.retention_ms == 9
    c = build_log_config({"log.message.timestamp.difference.max.ms": 50})
    assert c.timestamp_before_max_ms == c.timestamp_after_max_ms == 50
    assert "log.segment.bytes" in invalid(build_log_config, {"log.segment.bytes": "big"})


def test_describe_sources_types_and_synonyms():
    entries = {e.name: e for e in describe_config(
        {"retention.bytes": "100"}, {"log.retention.hours": "1"})}
    assert set(entries) == {d.name for d in DEFS}
    rb = entries["retention.bytes"]
    assert (rb.value, rb.source, rb.config_type, rb.is_default) == ("100", ConfigSource.DYNAMIC_TOPIC_CONFIG,
                                                                    ConfigType.LONG, False)
    assert [s.source for s in rb.synonyms] == [ConfigSource.DYNAMIC_TOPIC_CONFIG, ConfigSource.DEFAULT_CONFIG]
    rm = entries["retention.ms"]
    assert (rm.value, rm.source) == ("3600000", ConfigSource.STATIC_BROKER_CONFIG)
    assert ("log.retention.hours", "1", ConfigSource.STATIC_BROKER_CONFIG) in [
        (s.name, s.value, s.source) for s in rm.synonyms]
    cp = entries["cleanup.policy"]
    assert (cp.value, cp.source, cp.config_type) == ("delete", ConfigSource.DEFAULT_CONFIG, ConfigType.LIST)
    assert entries["preallocate"].value == "false" and entries["preallocate"].config_type == ConfigType.BOOLEAN
    assert entries["min.cleanable.dirty.ratio"].config_type == ConfigType.DOUBLE
    assert all(not e.read_only and not e.sensitive and e.documentation for e in entries.values())
    only = describe_config({}, {}, ["segment.bytes", "unknown.name"], include_synonyms=False)
    assert [(e.name, e.synonyms) for e in only] == [("segment.bytes", [])]


def test_incremental_ops():
    cur = {"retention.ms": "5"}
    assert apply_incremental(cur, [("segment.ms", OP_SET, "10")]) == {"retention.ms": "5", "segment.ms": "10"}
    assert apply_incremental(cur, [("retention.ms", OP_DELETE, None)]) == {}
    assert apply_incremental({}, [("cleanup.policy", OP_APPEND, "compact")])["cleanup.policy"] == "delete,compact"
    assert apply_incremental({"cleanup.policy": "compact,delete"},
                             [("cleanup.policy", OP_SUBTRACT, "delete")])["cleanup.policy"] == "compact"
    assert "retention.ms" in invalid(apply_incremental, cur, [("retention.ms", OP_APPEND, "1")])
    assert "segment.ms" in invalid(apply_incremental, cur, [("segment.ms", OP_SET, "0")])
    assert "bogus" in invalid(apply_incremental, cur, [("bogus", OP_DELETE, None)])
    assert cur == {"retention.ms": "5"}  # input untouched


class FullBrokerConfig(dict):
    """Like the broker's Config: every property present, typed, and it knows which were set."""

    def __init__(self, values, explicit):
        super().__init__(values)
        self.explicit = set(explicit)

    def is_default(self, name):
        return name not in self.explicit


def test_broker_config_with_every_default_present():
    broker = FullBrokerConfig({
        "log.retention.ms": None, "log.retention.minutes": None, "log.retention.hours": 168,
        "log.cleanup.policy": ["delete"], "log.segment.bytes": 2048, "message.max.bytes": 1048588,
    }, explicit={"log.segment.bytes"})
    c = build_log_config(broker)
    assert (c.retention_ms, c.cleanup_policy, c.segment_bytes) == (604_800_000, ("delete",), 2048)
    entries = {e.name: e for e in describe_config({}, broker)}
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG
    assert entries["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG
    seg = entries["segment.bytes"]
    assert (seg.value, seg.source) == ("2048", ConfigSource.STATIC_BROKER_CONFIG)
    assert [(s.name, s.source) for s in seg.synonyms] == [
        ("log.segment.bytes", ConfigSource.STATIC_BROKER_CONFIG), ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG)]
