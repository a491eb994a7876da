"""Kafka's record formats in `__consumer_offsets`, so the topic stays readable by Kafka's own tools.

Keys start with an int16 record type (0/1 offset commit, 2 group metadata); values start with an
int16 schema version. Layouts follow OffsetCommitKey/Value and GroupMetadataKey/Value in Apache
Kafka's group-coordinator message specs. We write the versions Kafka writes (offset value v3, or v1
when a commit carries an explicit expire timestamp; group value v3) and read v0-v4.
Also here: the coordinator partition of a group, and the topics in a consumer-protocol subscription.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OFFSET_KEY_VERSION = 1  # 0 and 1 are both offset-commit keys; Kafka writes 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
OFFSET_VALUE_VERSION_WITH_EXPIRE = 1
GROUP_VALUE_VERSION = 3


class FormatError(ValueError):
    """A key or value in `__consumer_offsets` that does not parse."""


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units, wrapping at 32 bits)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """The `__consumer_offsets` partition of a group, as Kafka computes it (Utils.abs(hash) % n)."""
    h = java_string_hash(group_id)
    return (0 if h == -(2**31) else abs(h)) % num_partitions


def java_length(s: str) -> int:
    """String.length() in Java: UTF-16 code units (what offset.metadata.max.bytes is compared to)."""
    return len(s.encode("utf-16-le")) // 2


@dataclass(slots=True)
class OffsetValue:
    """One committed offset as stored (OffsetCommitValue)."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int = -1  # only set by OffsetCommit v2-4 with a retention time


@dataclass(slots=True)
class MemberValue:
    """One member inside GroupMetadataValue."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupValue:
    """A group's persisted state (GroupMetadataValue)."""

    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: list[MemberValue] = field(default_factory=list)


# ---------------------------------------------------------------- writing

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def _str(out: bytearray, s: str) -> None:
    b = s.encode()
    out += _I16.pack(len(b))
    out += b


def _nstr(out: bytearray, s: str | None) -> None:
    if s is None:
        out += _I16.pack(-1)
    else:
        _str(out, s)


def _bytes(out: bytearray, b: bytes) -> None:
    out += _I32.pack(len(b))
    out += b


def offset_key(group: str, topic: str, partition: int) -> bytes:
    out = bytearray(_I16.pack(OFFSET_KEY_VERSION))
    _str(out, group)
    _str(out, topic)
    out += _I32.pack(partition)
    return bytes(out)


def group_key(group: str) -> bytes:
    out = bytearray(_I16.pack(GROUP_KEY_VERSION))
    _str(out, group)
    return bytes(out)


def offset_value(v: OffsetValue) -> bytes:
    if v.expire_timestamp >= 0:
        out = bytearray(_I16.pack(OFFSET_VALUE_VERSION_WITH_EXPIRE))
        out += _I64.pack(v.offset)
        _str(out, v.metadata)
        out += _I64.pack(v.commit_timestamp)
        out += _I64.pack(v.expire_timestamp)
        return bytes(out)
    out = bytearray(_I16.pack(OFFSET_VALUE_VERSION))
    out += _I64.pack(v.offset)
    out += _I32.pack(v.leader_epoch)
    _str(out, v.metadata)
    out += _I64.pack(v.commit_timestamp)
    return bytes(out)


def group_value(v: GroupValue) -> bytes:
    out = bytearray(_I16.pack(GROUP_VALUE_VERSION))
    _str(out, v.protocol_type)
    out += _I32.pack(v.generation)
    _nstr(out, v.protocol)
    _nstr(out, v.leader)
    out += _I64.pack(v.current_state_timestamp)
    out += _I32.pack(len(v.members))
    for m in v.members:
        _str(out, m.member_id)
        _nstr(out, m.group_instance_id)
        _str(out, m.client_id)
        _str(out, m.client_host)
        out += _I32.pack(m.rebalance_timeout)
        out += _I32.pack(m.session_timeout)
        _bytes(out, m.subscription)
        _bytes(out, m.assignment)
    return bytes(out)


# ---------------------------------------------------------------- reading


class _Reader:
    """Bounded big-endian reader; `flexible` switches strings/bytes/arrays to compact forms."""

    __slots__ = ("buf", "pos", "flexible")

    def __init__(self, buf: bytes, pos: int = 0, flexible: bool = False):
        self.buf = buf
        self.pos = pos
        self.flexible = flexible

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise FormatError(f"length {n} at byte {self.pos} runs past the {len(self.buf)}-byte record")
        raw = self.buf[self.pos : end]
        self.pos = end
        return raw

    def _fixed(self, s: struct.Struct) -> int:
        return s.unpack(self._take(s.size))[0]

    def i16(self) -> int:
        return self._fixed(_I16)

    def i32(self) -> int:
        return self._fixed(_I32)

    def i64(self) -> int:
        return self._fixed(_I64)

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift > 28:
                raise FormatError("varint too long")

    def _len(self, wide: bool) -> int:
        if self.flexible:
            return self.uvarint() - 1
        return self.i32() if wide else self.i16()

    def nstr(self) -> str | None:
        n = self._len(False)
        if n < 0:
            return None
        try:
            return self._take(n).decode()
        except UnicodeDecodeError:
            raise FormatError("string is not UTF-8") from None

    def str(self) -> str:
        s = self.nstr()
        if s is None:
            raise FormatError("null string where null is not allowed")
        return s

    def bytes(self) -> bytes:
        n = self._len(True)
        return b"" if n < 0 else self._take(n)

    def array_len(self) -> int:
        n = self._len(True)
        if n > len(self.buf) - self.pos:
            raise FormatError(f"array of {n} elements runs past the record")
        return max(n, 0)

    def tagged_fields(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self._take(self.uvarint())


def parse_key(key: bytes) -> tuple[str, str, str | None, int | None]:
    """Returns ("offset", group, topic, partition) or ("group", group, None, None).

    Raises FormatError for a record type this coordinator does not know (newer group types).
    """
    r = _Reader(bytes(key))
    version = r.i16()
    if version in (0, 1):
        return "offset", r.str(), r.str(), r.i32()
    if version == 2:
        return "group", r.str(), None, None
    raise FormatError(f"unknown __consumer_offsets record type {version}")


def parse_offset_value(value: bytes) -> OffsetValue:
    r = _Reader(bytes(value))
    version = r.i16()
    if not 0 <= version <= 4:
        raise FormatError(f"unknown OffsetCommitValue version {version}")
    r.flexible = version >= 4
    v = OffsetValue(offset=r.i64())
    if version >= 3:
        v.leader_epoch = r.i32()
    v.metadata = r.str()
    v.commit_timestamp = r.i64()
    if version == 1:
        v.expire_timestamp = r.i64()
    r.tagged_fields()
    return v


def parse_group_value(value: bytes) -> GroupValue:
    r = _Reader(bytes(value))
    version = r.i16()
    if not 0 <= version <= 4:
        raise FormatError(f"unknown GroupMetadataValue version {version}")
    r.flexible = version >= 4
    v = GroupValue(protocol_type=r.str(), generation=r.i32(), protocol=r.nstr(), leader=r.nstr())
    if version >= 2:
        v.current_state_timestamp = r.i64()
    for _ in range(r.array_len()):
        member_id = r.str()
        instance = r.nstr() if version >= 3 else None
        client_id, client_host = r.str(), r.str()
        rebalance = r.i32() if version >= 1 else -1
        session = r.i32()
        if rebalance < 0:
            rebalance = session
        v.members.append(MemberValue(member_id, instance, client_id, client_host, rebalance, session,
                                     r.bytes(), r.bytes()))
        r.tagged_fields()
    r.tagged_fields()
    return v


def subscription_topics(metadata: bytes) -> set[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version: newer ones only append fields).

    Returns None when the bytes do not parse, which callers treat as "may be subscribed to anything".
    """
    try:
        r = _Reader(bytes(metadata))
        if r.i16() < 0:
            return None
        return {r.str() for _ in range(r.array_len())}
    except (FormatError, struct.error):
        return None
