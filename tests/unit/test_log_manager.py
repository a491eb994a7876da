"""LogManager: durable topic metadata and configs, admin operations with Kafka's error codes, and
maintenance across topics."""

from __future__ import annotations

import json
import os
import threading

import pytest

from keystream.broker import records as R
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log import LogManager
from keystream.broker.log.config import OP_APPEND, OP_SET, ConfigSource
from keystream.broker.log.topic_meta import META_DIR

T0 = 1_700_000_000_000
BROKER = {"log.segment.bytes": 300, "num.partitions": 3}


def open_manager(path, **extra) -> LogManager:
    m = LogManager([str(path / "d1"), str(path / "d2")], {**BROKER, **extra})
    m.load()
    return m


@pytest.fixture
def manager(tmp_path):
    m = open_manager(tmp_path)
    yield m
    m.close()


def produce(p, *pairs, ts=T0):
    recs = [(k.encode(), None if v is None else v.encode(), [], ts) for k, v in pairs]
    buf = bytearray(R.build_batch(recs))
    return p.append(buf, R.validate_batches(buf, now_ms=ts), now_ms=ts)


def code(fn, *args, **kw) -> ErrorCode:
    with pytest.raises(KafkaError) as e:
        fn(*args, **kw)
    return e.value.code


def test_create_and_reload_topics(tmp_path):
    m = open_manager(tmp_path)
    t = m.create_topic("orders", 4, {"retention.ms": "1000", "cleanup.policy": "compact"})
    m.create_topic("__consumer_offsets", 2, {"cleanup.policy": "compact"}, internal=True)
    assert len(t.topic_id) == 16 and t.config.retention_ms == 1000 and t.overrides["retention.ms"] == "1000"
    produce(m.partition("orders", 3), ("k", "v"))
    dirs = {os.path.dirname(p.dir) for p in t.partitions}
    assert len(dirs) == 2  # spread over both log dirs
    m.close()

    m2 = open_manager(tmp_path)
    t2 = m2.topic("orders")
    assert (t2.topic_id, len(t2.partitions), t2.overrides) == (t.topic_id, 4, t.overrides)
    assert t2.config.compact and m2.topic("__consumer_offsets").is_internal
    assert m2.topic_by_id(t.topic_id) is t2
    assert m2.partition("orders", 3).log_end_offset == 1
    meta = json.loads((tmp_path / "d1" / META_DIR / f"{t.topic_id.hex()}.json").read_text())
    assert meta["partitions"] == 4 and bytes.fromhex(meta["topic_id"]) == t.topic_id
    m2.close()


@pytest.mark.parametrize("name, parts, overrides, expected", [
    ("", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    (".", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("..", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("a" * 250, 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("bad/name", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("spa ce", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("ok", 0, {}, ErrorCode.INVALID_PARTITIONS),
    ("ok", -5, {}, ErrorCode.INVALID_PARTITIONS),
    ("ok", 1, {"retention.ms": "x"}, ErrorCode.INVALID_CONFIG),
    ("ok", 1, {"no.such": "1"}, ErrorCode.INVALID_CONFIG),
])
def test_create_topic_errors(manager, name, parts, overrides, expected):
    assert code(manager.create_topic, name, parts, overrides) == expected
    assert not manager.topics


def test_exists_collision_default_partitions_and_validate_only(manager):
    assert len(manager.create_topic("a" * 249, -1, {}).partitions) == 3
    manager.create_topic("x.y", 1, {})
    assert code(manager.create_topic, "x.y", 1, {}) == ErrorCode.TOPIC_ALREADY_EXISTS
    assert code(manager.create_topic, "x_y", 1, {}) == ErrorCode.INVALID_TOPIC_EXCEPTION
    t = manager.create_topic("dry", 2, {"segment.ms": "100"}, validate_only=True)
    assert t.config.segment_ms == 100 and "dry" not in manager.topics
    assert not any(os.path.exists(os.path.join(d, "dry-0")) for d in manager.log_dirs)


def test_lookups(manager):
    t = manager.create_topic("t", 1, {})
    assert manager.topic("t") is t and manager.topic_by_id(t.topic_id) is t
    assert manager.topic("missing") is None and manager.topic_by_id(b"\x00" * 16) is None
    assert code(manager.partition, "t", 1) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert code(manager.partition, "missing", 0) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert code(manager.describe_topic_config, "missing") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert code(manager.alter_topic_config, "missing", {}) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_delete_topic_removes_files_and_allows_recreation(tmp_path):
    m = open_manager(tmp_path)
    t = m.create_topic("gone", 2, {})
    produce(t.partitions[0], ("k", "old"))
    paths = [p.dir for p in t.partitions]
    m.delete_topic("gone")
    assert not any(os.path.exists(p) for p in paths)
    assert code(m.delete_topic, "gone") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    t2 = m.create_topic("gone", 1, {})
    assert t2.topic_id != t.topic_id and t2.partitions[0].log_end_offset == 0
    m.close()
    m = open_manager(tmp_path)
    assert list(m.topics) == ["gone"] and m.partition("gone", 0).log_end_offset == 0
    m.close()


def test_stale_partition_dir_is_not_reused(tmp_path):
    m = open_manager(tmp_path)
    t = m.create_topic("s", 1, {})
    produce(t.partitions[0], ("k", "v"))
    m.close()
    os.remove(tmp_path / "d1" / META_DIR / f"{t.topic_id.hex()}.json")  # as if a delete stopped half way
    m = open_manager(tmp_path)
    assert m.create_topic("s", 1, {}).partitions[0].log_end_offset == 0
    m.close()


def test_create_partitions(tmp_path):
    m = open_manager(tmp_path)
    m.create_topic("p", 2, {})
    assert code(m.create_partitions, "p", 2) == ErrorCode.INVALID_PARTITIONS
    assert code(m.create_partitions, "p", 1) == ErrorCode.INVALID_PARTITIONS
    assert code(m.create_partitions, "nope", 5) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert len(m.create_partitions("p", 5, validate_only=True).partitions) == 2
    assert len(m.create_partitions("p", 5).partitions) == 5
    m.close()
    m = open_manager(tmp_path)
    assert len(m.topic("p").partitions) == 5 and m.partition("p", 4).partition == 4
    m.close()


def test_alter_configs_persist(tmp_path):
    m = open_manager(tmp_path)
    m.create_topic("c", 1, {"retention.ms": "100", "segment.ms": "200"})
    m.alter_topic_config("c", {"retention.bytes": "1000"})
    assert m.topic("c").overrides == {"retention.bytes": "1000"}  # legacy AlterConfigs replaces all
    assert code(m.alter_topic_config, "c", {"retention.bytes": "lots"}) == ErrorCode.INVALID_CONFIG
    m.incremental_alter_topic_config("c", [("cleanup.policy", OP_APPEND, "compact"), ("flush.ms", OP_SET, "5")])
    m.incremental_alter_topic_config("c", [("retention.bytes", OP_SET, "1")], validate_only=True)
    t = m.topic("c")
    assert t.config.cleanup_policy == ("delete", "compact") and t.partitions[0].config.flush_ms == 5
    assert t.overrides["retention.bytes"] == "1000"
    m.close()
    m = open_manager(tmp_path)
    entries = {e.name: e for e in m.describe_topic_config("c")}
    assert (entries["cleanup.policy"].value, entries["cleanup.policy"].source) == (
        "delete,compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert (entries["segment.bytes"].value, entries["segment.bytes"].source) == (
        "300", ConfigSource.STATIC_BROKER_CONFIG)
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG
    assert m.partition("c", 0).config.compact
    m.close()


def test_run_maintenance_rewrites_only_changed_checkpoints_and_stops_when_told(manager):
    topic = manager.create_topic("idle", 3, {})
    manager.run_maintenance(T0)
    paths = [os.path.join(p.dir, "recovery-checkpoint") for p in topic.partitions]
    for path in paths:
        os.utime(path, ns=(1, 1))
    produce(topic.partitions[1], ("k", "v"))
    manager.run_maintenance(T0)
    # Only the partition that changed gets a new checkpoint (maintenance runs in a worker thread every
    # 15 s; rewriting 50 idle __consumer_offsets checkpoints each pass cost 40-100 ms of disk work).
    assert [os.stat(path).st_mtime_ns == 1 for path in paths] == [True, False, True]
    with open(paths[1]) as f:
        assert json.load(f)["log_end_offset"] == 1
    stop = threading.Event()
    stop.set()
    produce(topic.partitions[0], ("k", "v"))
    manager.run_maintenance(T0, stop=stop)
    assert os.stat(paths[0]).st_mtime_ns == 1


def test_run_maintenance_retention_and_compaction(manager):
    d = manager.create_topic("del", 1, {"retention.ms": "1000"})
    c = manager.create_topic("cmp", 1, {"cleanup.policy": "compact"})
    for i in range(12):
        produce(d.partitions[0], (f"k{i}", "v" * 40), ts=T0 + i)
        produce(c.partitions[0], ("same", f"v{i}" * 10), ts=T0 + i)
    stats = manager.run_maintenance(T0 + 10_000)
    assert stats["errors"] == 0 and stats["retention_bytes_deleted"] > 0 and stats["segments_compacted"] > 0
    assert d.partitions[0].log_start_offset == 12
    cp = c.partitions[0]
    data = bytes(b"".join(bytes(x) for x in cp.read(cp.log_start_offset, 1 << 20).chunks))
    values, pos = [], 0
    while pos < len(data):
        h = R.parse_header(data, pos)
        values += [r.value for r in R.iter_records(data[pos : pos + h.size])]
        pos += h.size
    assert values[-1] == b"v11" * 10 and values.count(b"v0" * 10) == 0
    manager.flush_all()
