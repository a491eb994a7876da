"""Kafka's __consumer_offsets record formats: the versions we write and the ones we must read."""

from __future__ import annotations

import struct

import pytest

from keystream.broker import records
from keystream.broker.groups import formats
from keystream.broker.groups.formats import GroupValue, MemberValue, OffsetValue
from keystream.broker.groups.results import CommitRequestPartition
from keystream.broker.groups.store import TOPIC
from tests.unit.test_groups_support import Node, run, subscription


def _s(text: str) -> bytes:
    b = text.encode()
    return struct.pack(">h", len(b)) + b


def _cs(text: str) -> bytes:  # compact string (flexible versions)
    b = text.encode()
    return bytes([len(b) + 1]) + b


def test_offset_key_layout():
    key = formats.offset_key("g", "t", 7)
    assert key == b"\x00\x01" + _s("g") + _s("t") + struct.pack(">i", 7)
    assert formats.parse_key(key) == ("offset", "g", "t", 7)
    assert formats.parse_key(b"\x00\x00" + _s("g") + _s("t") + struct.pack(">i", 7)) == ("offset", "g", "t", 7)
    assert formats.parse_key(formats.group_key("g")) == ("group", "g", None, None)
    with pytest.raises(formats.FormatError):
        formats.parse_key(b"\x00\x03" + _s("g"))  # a newer coordinator's record type


def test_offset_values_every_version():
    v3 = formats.offset_value(OffsetValue(5, 2, "meta", 1000))
    assert v3 == b"\x00\x03" + struct.pack(">qi", 5, 2) + _s("meta") + struct.pack(">q", 1000)
    v1 = formats.offset_value(OffsetValue(5, -1, "m", 1000, 2000))
    assert v1[:2] == b"\x00\x01"
    assert formats.parse_offset_value(v1) == OffsetValue(5, -1, "m", 1000, 2000)
    assert formats.parse_offset_value(v3) == OffsetValue(5, 2, "meta", 1000, -1)
    v0 = b"\x00\x00" + struct.pack(">q", 9) + _s("x") + struct.pack(">q", 3)
    assert formats.parse_offset_value(v0) == OffsetValue(9, -1, "x", 3, -1)
    v4 = b"\x00\x04" + struct.pack(">qi", 9, 4) + _cs("x") + struct.pack(">q", 3) + b"\x01\x05\x01\xff"
    assert formats.parse_offset_value(v4) == OffsetValue(9, 4, "x", 3, -1)


def test_group_value_round_trip_and_old_versions():
    member = MemberValue("m-1", "i-1", "client", "/10.0.0.1", 300000, 10000, b"sub", b"asg")
    value = GroupValue("consumer", 4, "range", "m-1", 1234, [member])
    encoded = formats.group_value(value)
    assert encoded[:2] == b"\x00\x03"
    assert formats.parse_group_value(encoded) == value
    v0 = (b"\x00\x00" + _s("consumer") + struct.pack(">i", 2) + _s("range") + _s("m") + struct.pack(">i", 1)
          + _s("m") + _s("c") + _s("/h") + struct.pack(">i", 5000) + struct.pack(">i", 3) + b"abc"
          + struct.pack(">i", 0))
    parsed = formats.parse_group_value(v0)
    assert parsed.current_state_timestamp == -1
    [m] = parsed.members
    assert (m.member_id, m.group_instance_id, m.rebalance_timeout, m.session_timeout, m.subscription) == \
        ("m", None, 5000, 5000, b"abc")
    empty = formats.group_value(GroupValue("consumer", 3, None, None, 99, []))
    assert formats.parse_group_value(empty) == GroupValue("consumer", 3, None, None, 99, [])


def test_truncated_values_are_format_errors():
    good = formats.offset_value(OffsetValue(5, 2, "meta", 1000))
    for cut in range(len(good)):
        with pytest.raises(formats.FormatError):
            formats.parse_offset_value(good[:cut])


def test_subscription_topics_parses_every_consumer_protocol_version():
    for version in (0, 1, 2, 3):
        assert formats.subscription_topics(subscription("a", "b", version=version)) == {"a", "b"}
    assert formats.subscription_topics(b"\x00") is None
    assert formats.subscription_topics(b"\x00\x00\x7f\xff\xff\xff") is None


@run
async def test_replay_skips_records_of_unknown_types(tmp_path):
    node = await Node(tmp_path).start()
    node.topic("t")
    await node.groups.commit_offsets("g", -1, "", None, [_commit("t", 0, 5)])
    plog = node.logs.partition(TOPIC, node.groups.partition_for("g"))
    strange = [(b"\x00\x05" + _s("g"), b"\x00\x00whatever", [], 0), (b"\x00\x01garbage", b"\x00", [], 0)]
    batch = bytearray(records.build_batch(strange))
    plog.append(batch, [records.parse_header(batch, 0)])
    await node.restart()
    assert node.groups.fetch_offsets("g", [("t", [0])])[1][0][1][0][1].offset == 5
    await node.stop()


def _commit(topic, partition, offset):
    return CommitRequestPartition(topic, partition, offset)
