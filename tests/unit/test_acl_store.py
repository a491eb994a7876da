"""The metadata log and the ACL store on it: last value per key wins, tombstones, namespaces,
compaction, and ACLs surviving a fresh Broker over the same directories (no clean close)."""

from __future__ import annotations

import time

import pytest

from keystream.auth.acl import AclBinding, AclBindingFilter, Operation, PatternType, Permission, ResourceType
from keystream.auth.principal import Principal, Session
from keystream.broker.broker import Broker
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import TOPIC, MetadataLog
from keystream.config import load_config

READ_FOO = AclBinding(ResourceType.TOPIC, "foo", PatternType.LITERAL, "User:alice", "*", Operation.READ,
                      Permission.ALLOW)
DENY_PREFIX = AclBinding(ResourceType.TOPIC, "fo", PatternType.PREFIXED, "User:*", "*", Operation.ALL,
                         Permission.DENY)
ALICE = Session(Principal("User", "alice"), "127.0.0.1")


def test_metadata_log_replay(logs):
    meta = MetadataLog(logs())
    assert list(meta.replay()) == []
    meta.append(b"acl\0a", b"1")
    meta.append_many([(b"acl\0b", b"2"), (b"scram\0alice", b"s")])
    meta.append(b"acl\0a", b"3")
    meta.append(b"acl\0b", None)
    assert dict(meta.replay()) == {b"acl\0a": b"3", b"scram\0alice": b"s"}
    assert dict(meta.replay(b"acl\0")) == {b"acl\0a": b"3"}
    assert meta.logs.topic(TOPIC) is None  # a private log, not a topic clients could see or fetch
    assert meta._partition().config.compact


def test_metadata_log_name_is_reserved(logs):
    manager = logs()
    MetadataLog(manager).open()
    with pytest.raises(KafkaError) as e:
        manager.create_topic(TOPIC, 1)
    assert e.value.code == ErrorCode.INVALID_TOPIC_EXCEPTION


def test_metadata_log_compacts_to_the_latest_value_per_key(logs):
    meta = MetadataLog(logs())
    for i in range(50):
        meta.append(b"acl\0a", str(i).encode())
    meta._partition().roll()
    meta.compact(int(time.time() * 1000) + 1)
    assert dict(meta.replay()) == {b"acl\0a": b"49"}


def test_metadata_log_is_flushed_before_append_returns(logs):
    meta = MetadataLog(logs())
    meta.append(b"acl\0a", b"1")
    plog = meta._partition()
    assert plog.unflushed_messages == 0
    assert plog.recovery_point == plog.log_end_offset


def test_metadata_log_rejects_keyless_records(logs):
    meta = MetadataLog(logs())
    with pytest.raises(ValueError):
        meta.append(b"", b"x")
    with pytest.raises(ValueError):
        meta.append_many([])


def test_replay_survives_reopen_without_close(tmp_path):
    first = LogManager([str(tmp_path / "d")], {})
    first.load()
    MetadataLog(first).append(b"acl\0x", b"1")
    second = LogManager([str(tmp_path / "d")], {})  # `first` never closed: as after kill -9
    second.load()
    try:
        assert dict(MetadataLog(second).replay()) == {b"acl\0x": b"1"}
    finally:
        second.close()
        first.close()


def _broker(tmp_path, **props) -> Broker:
    overrides = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092", **props}
    broker = Broker(load_config(None, overrides=overrides, environ={}))
    broker.logs.load()
    broker.metadata.open()
    broker.authorizer.load()
    return broker


def test_acls_survive_a_fresh_broker(tmp_path):
    broker = _broker(tmp_path)
    assert broker.authorizer.create([READ_FOO, DENY_PREFIX, READ_FOO]) == [None, None, None]
    assert broker.authorizer.authorize(ALICE, Operation.READ, ResourceType.TOPIC, "bar") is False
    deleted = broker.authorizer.delete([AclBindingFilter(pattern_type=PatternType.PREFIXED)])
    assert deleted == [[DENY_PREFIX]]
    # a second broker over the same directories, the first never closed (as after kill -9)
    again = _broker(tmp_path)
    try:
        assert set(again.authorizer.describe(AclBindingFilter())) == {READ_FOO}
        assert again.authorizer.authorize(ALICE, Operation.READ, ResourceType.TOPIC, "foo")
    finally:
        again.logs.close()
        broker.logs.close()


def test_store_survives_compaction(tmp_path):
    broker = _broker(tmp_path)
    try:
        for _ in range(3):
            broker.authorizer.create([READ_FOO, DENY_PREFIX])
            broker.authorizer.delete([AclBindingFilter(permission=Permission.DENY)])
        broker.metadata._partition().roll()
        broker.metadata.compact(int(time.time() * 1000) + 1)
        broker.authorizer.load()
        assert broker.authorizer.describe(AclBindingFilter()) == [READ_FOO]
    finally:
        broker.metadata.close()
        broker.logs.close()


def test_delete_reports_an_acl_under_every_matching_filter(tmp_path):
    broker = _broker(tmp_path)
    try:
        broker.authorizer.create([READ_FOO, DENY_PREFIX])
        by_principal = AclBindingFilter(principal="User:alice")
        by_name = AclBindingFilter(resource_type=ResourceType.TOPIC, name="foo", pattern_type=PatternType.MATCH)
        results = broker.authorizer.delete([by_principal, by_name, AclBindingFilter(resource_type=ResourceType.UNKNOWN)])
        assert results[0] == [READ_FOO]
        assert set(results[1]) == {READ_FOO, DENY_PREFIX}
        assert isinstance(results[2], ValueError)
        assert broker.authorizer.describe(AclBindingFilter()) == []
    finally:
        broker.logs.close()
