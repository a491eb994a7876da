"""Kafka's topic config definitions (LogConfig/TopicConfig) plus Confluent's schema-validation ones.

Kept as data so that validation, the effective LogConfig and DescribeConfigs all read one table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


class ConfigType(IntEnum):
    """DescribeConfigs ConfigType values."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs ConfigSource values."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


@dataclass(frozen=True)
class Synonym:
    """A broker property that supplies a topic config's default; `scale` converts its unit to ms."""

    name: str
    scale: int = 1
    default: Any = None  # the broker property's own default, shown as the DEFAULT_CONFIG synonym


Validator = Callable[[Any], str | None]


@dataclass(frozen=True)
class ConfigDef:
    """One topic config: Kafka's name, type, default, broker synonyms, validator and doc."""

    name: str
    type: ConfigType
    default: Any
    doc: str
    synonyms: tuple[Synonym, ...] = ()
    validator: Validator | None = None
    sensitive: bool = False
    read_only: bool = False

    @property
    def attr(self) -> str:
        return self.name.replace(".", "_").replace("-", "_")


def at_least(lo: float) -> Validator:
    return lambda v: None if v >= lo else f"must be at least {lo}"


def between(lo: float, hi: float) -> Validator:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def one_of(*allowed: str) -> Validator:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def list_of(*allowed: str) -> Validator:
    def check(v: tuple[str, ...]) -> str | None:
        bad = [x for x in v if x not in allowed]
        return f"has unknown values {bad}; allowed: {', '.join(allowed)}" if bad else None

    return check


def non_empty_list(v: tuple[str, ...]) -> str | None:
    return None if v else "must not be empty"


STRATEGIES = ("TopicNameStrategy", "RecordNameStrategy", "TopicRecordNameStrategy")
STRATEGY_PACKAGE = "io.confluent.kafka.serializers.subject."


def subject_strategy(v: str) -> str | None:
    short = v.removeprefix(STRATEGY_PACKAGE)
    return None if short in STRATEGIES else f"must be one of {', '.join(STRATEGIES)}"


def _list_then(*checks: Validator) -> Validator:
    def check(v: Any) -> str | None:
        for c in checks:
            err = c(v)
            if err:
                return err
        return None

    return check


_INT_RE = re.compile(r"[+-]?\d+")


def parse_value(d: ConfigDef, raw: Any) -> Any:
    """Parse a raw value (string from the wire or properties, or a Python value) by the def's type."""
    t = d.type
    if t == ConfigType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s not in ("true", "false"):
            raise ValueError("expected true or false")
        return s == "true"
    if t in (ConfigType.INT, ConfigType.LONG, ConfigType.SHORT):
        if isinstance(raw, bool) or not _INT_RE.fullmatch(str(raw).strip()):
            raise ValueError("expected an integer")
        v = int(str(raw).strip())
        lo, hi = (LONG_MIN, LONG_MAX) if t == ConfigType.LONG else (INT_MIN, INT_MAX)
        if not lo <= v <= hi:
            raise ValueError("integer out of range")
        return v
    if t == ConfigType.DOUBLE:
        try:
            v = float(str(raw).strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(v):
            raise ValueError("expected a finite number")
        return v
    if t == ConfigType.LIST:
        if isinstance(raw, list | tuple):
            return tuple(str(x).strip() for x in raw)
        s = str(raw).strip()
        return tuple(x.strip() for x in s.split(",")) if s else ()
    return str(raw).strip()


def render_value(d: ConfigDef, value: Any) -> str | None:
    """Kafka's string form of a parsed value (DescribeConfigs shows these)."""
    if d.sensitive:
        return None
    if value is None:
        return None
    if d.type == ConfigType.BOOLEAN:
        return "true" if value else "false"
    if d.type == ConfigType.LIST:
        return ",".join(value)
    return str(value)


_B = ConfigType.BOOLEAN
_S = ConfigType.STRING
_I = ConfigType.INT
_L = ConfigType.LONG
_D = ConfigType.DOUBLE
_LS = ConfigType.LIST

COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

DEFS: tuple[ConfigDef, ...] = (
    ConfigDef("cleanup.policy", _LS, ("delete",), "Retention policy for old segments: delete and/or compact.",
              (Synonym("log.cleanup.policy", default="delete"),),
              _list_then(non_empty_list, list_of("compact", "delete"))),
    ConfigDef("compression.type", _S, "producer", "Final compression; 'producer' keeps what the producer sent "
              "(Keystream stores batches as received).", (Synonym("compression.type", default="producer"),),
              one_of(*COMPRESSION_TYPES)),
    ConfigDef("compression.gzip.level", _I, -1, "gzip level when the broker compresses.",
              (Synonym("compression.gzip.level", default=-1),),
              lambda v: None if v == -1 or 1 <= v <= 9 else "must be -1 or between 1 and 9"),
    ConfigDef("compression.lz4.level", _I, 9, "lz4 level when the broker compresses.",
              (Synonym("compression.lz4.level", default=9),), between(1, 17)),
    ConfigDef("compression.zstd.level", _I, 3, "zstd level when the broker compresses.",
              (Synonym("compression.zstd.level", default=3),), between(-131072, 22)),
    ConfigDef("delete.retention.ms", _L, 86_400_000, "How long compaction keeps tombstones readable.",
              (Synonym("log.cleaner.delete.retention.ms", default=86_400_000),), at_least(0)),
    ConfigDef("file.delete.delay.ms", _L, 60_000, "Delay before a deleted segment's files are removed.",
              (Synonym("log.segment.delete.delay.ms", default=60_000),), at_least(0)),
    ConfigDef("flush.messages", _L, LONG_MAX, "Messages appended between forced fsyncs.",
              (Synonym("log.flush.interval.messages", default=LONG_MAX),), at_least(1)),
    ConfigDef("flush.ms", _L, LONG_MAX, "Time between forced fsyncs.",
              (Synonym("log.flush.interval.ms"),), at_least(0)),
    ConfigDef("follower.replication.throttled.replicas", _LS, (), "Replicas throttled on the follower side.",
              (Synonym("follower.replication.throttled.replicas", default=""),)),
    ConfigDef("index.interval.bytes", _I, 4096, "Bytes between offset index entries.",
              (Synonym("log.index.interval.bytes", default=4096),), at_least(0)),
    ConfigDef("leader.replication.throttled.replicas", _LS, (), "Replicas throttled on the leader side.",
              (Synonym("leader.replication.throttled.replicas", default=""),)),
    ConfigDef("local.retention.bytes", _L, -2, "Local retention by size with tiered storage (-2: retention.bytes).",
              (Synonym("log.local.retention.bytes", default=-2),), at_least(-2)),
    ConfigDef("local.retention.ms", _L, -2, "Local retention by time with tiered storage (-2: retention.ms).",
              (Synonym("log.local.retention.ms", default=-2),), at_least(-2)),
    ConfigDef("max.compaction.lag.ms", _L, LONG_MAX, "Longest time a record stays uncompacted.",
              (Synonym("log.cleaner.max.compaction.lag.ms", default=LONG_MAX),), at_least(1)),
    ConfigDef("max.message.bytes", _I, 1_048_588, "Largest record batch the topic accepts.",
              (Synonym("message.max.bytes", default=1_048_588),), at_least(0)),
    ConfigDef("message.downconversion.enable", _B, True, "Accepted for compatibility; Keystream never "
              "down-converts.", (Synonym("log.message.downconversion.enable", default=True),)),
    ConfigDef("message.timestamp.after.max.ms", _L, HOUR_MS, "How far a CreateTime timestamp may be ahead "
              "of the broker clock (Kafka 4.0 default: 1 hour).",
              (Synonym("log.message.timestamp.after.max.ms", default=HOUR_MS),), at_least(0)),
    ConfigDef("message.timestamp.before.max.ms", _L, LONG_MAX, "How far a CreateTime timestamp may be behind "
              "the broker clock.", (Synonym("log.message.timestamp.before.max.ms", default=LONG_MAX),),
              at_least(0)),
    ConfigDef("message.timestamp.difference.max.ms", _L, LONG_MAX, "Deprecated: bounds both directions.",
              (Synonym("log.message.timestamp.difference.max.ms", default=LONG_MAX),), at_least(0)),
    ConfigDef("message.timestamp.type", _S, "CreateTime", "CreateTime keeps the producer's timestamp; "
              "LogAppendTime stamps the broker time.",
              (Synonym("log.message.timestamp.type", default="CreateTime"),),
              one_of("CreateTime", "LogAppendTime")),
    ConfigDef("min.cleanable.dirty.ratio", _D, 0.5, "Dirty share of the log that triggers compaction.",
              (Synonym("log.cleaner.min.cleanable.ratio", default=0.5),), between(0, 1)),
    ConfigDef("min.compaction.lag.ms", _L, 0, "Shortest time a record stays uncompacted.",
              (Synonym("log.cleaner.min.compaction.lag.ms", default=0),), at_least(0)),
    ConfigDef("min.insync.replicas", _I, 1, "Replicas that must acknowledge an acks=all write.",
              (Synonym("min.insync.replicas", default=1),), at_least(1)),
    ConfigDef("preallocate", _B, False, "Preallocate segment files.", (Synonym("log.preallocate", default=False),)),
    ConfigDef("remote.storage.enable", _B, False, "Tiered storage (not supported; must stay false).",
              (), lambda v: "tiered storage is not supported" if v else None),
    ConfigDef("retention.bytes", _L, -1, "Size a partition may grow to before old segments go (-1: no limit).",
              (Synonym("log.retention.bytes", default=-1),)),
    ConfigDef("retention.ms", _L, 604_800_000, "How long segments are kept (-1: forever).",
              (Synonym("log.retention.ms"), Synonym("log.retention.minutes", MINUTE_MS),
               Synonym("log.retention.hours", HOUR_MS, default=168)), at_least(-1)),
    ConfigDef("segment.bytes", _I, 1_073_741_824, "Segment file size before a roll.",
              (Synonym("log.segment.bytes", default=1_073_741_824),), at_least(14)),
    ConfigDef("segment.index.bytes", _I, 10_485_760, "Largest offset index per segment.",
              (Synonym("log.index.size.max.bytes", default=10_485_760),), at_least(4)),
    ConfigDef("segment.jitter.ms", _L, 0, "Random jitter subtracted from segment.ms.",
              (Synonym("log.roll.jitter.ms"), Synonym("log.roll.jitter.hours", HOUR_MS, default=0)), at_least(0)),
    ConfigDef("segment.ms", _L, 604_800_000, "Time before a segment rolls even if not full.",
              (Synonym("log.roll.ms"), Synonym("log.roll.hours", HOUR_MS, default=168)), at_least(1)),
    ConfigDef("unclean.leader.election.enable", _B, False, "Allow out-of-sync replicas to become leader.",
              (Synonym("unclean.leader.election.enable", default=False),)),
    ConfigDef("confluent.key.schema.validation", _B, False, "Validate record keys against the registry."),
    ConfigDef("confluent.key.subject.name.strategy", _S, STRATEGY_PACKAGE + "TopicNameStrategy",
              "Subject naming for key validation.", (), subject_strategy),
    ConfigDef("confluent.value.schema.validation", _B, False, "Validate record values against the registry."),
    ConfigDef("confluent.value.subject.name.strategy", _S, STRATEGY_PACKAGE + "TopicNameStrategy",
              "Subject naming for value validation.", (), subject_strategy),
)

BY_NAME: dict[str, ConfigDef] = {d.name: d for d in DEFS}
