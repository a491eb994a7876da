"""Runtime pieces the generated codecs call: bounded readers, a chunked writer, varints.

Decoding never trusts a length: every size is checked against the bytes actually present, so a
lying frame costs at most its own size. Any malformed input surfaces as `DecodeError`.
"""

import struct

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")

u_i8 = _I8.unpack_from
u_i16 = _I16.unpack_from
u_i32 = _I32.unpack_from
u_i64 = _I64.unpack_from
u_u16 = _U16.unpack_from
u_u32 = _U32.unpack_from
u_f64 = _F64.unpack_from
p_i8 = _I8.pack
p_i16 = _I16.pack
p_i32 = _I32.pack
p_i64 = _I64.pack
p_u16 = _U16.pack
p_u32 = _U32.pack
p_f64 = _F64.pack

ZERO_UUID = bytes(16)
DEFAULT = object()  # constructor sentinel: "use the spec's default" (a fresh list or struct)

# Records above this size are passed to the transport as their own buffers instead of being
# copied into the response bytearray.
INLINE_RECORDS_LIMIT = 4096


class DecodeError(ValueError):
    """The bytes do not form a valid message of the announced api key and version."""


def read_uvarint(buf, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    while True:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 28:
            raise DecodeError("unsigned varint longer than 5 bytes")


def write_uvarint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _slice(buf, pos: int, n: int):
    end = pos + n
    if n < 0 or end > len(buf):
        raise DecodeError(f"length {n} at byte {pos} exceeds the {len(buf)}-byte message")
    return buf[pos:end], end


def read_string(buf, pos: int):
    (n,) = u_i16(buf, pos)
    if n < 0:
        raise DecodeError(f"null string at byte {pos} where null is not allowed")
    raw, pos = _slice(buf, pos + 2, n)
    return str(raw, "utf-8"), pos


def read_nullable_string(buf, pos: int):
    (n,) = u_i16(buf, pos)
    if n < 0:
        return None, pos + 2
    raw, pos = _slice(buf, pos + 2, n)
    return str(raw, "utf-8"), pos


def read_compact_string(buf, pos: int):
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise DecodeError(f"null string at byte {pos} where null is not allowed")
    raw, pos = _slice(buf, pos, n - 1)
    return str(raw, "utf-8"), pos


def read_compact_nullable_string(buf, pos: int):
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    raw, pos = _slice(buf, pos, n - 1)
    return str(raw, "utf-8"), pos


def read_bytes(buf, pos: int):
    (n,) = u_i32(buf, pos)
    if n < 0:
        raise DecodeError(f"null bytes at byte {pos} where null is not allowed")
    return _slice(buf, pos + 4, n)


def read_nullable_bytes(buf, pos: int):
    (n,) = u_i32(buf, pos)
    if n < 0:
        return None, pos + 4
    return _slice(buf, pos + 4, n)


def read_compact_bytes(buf, pos: int):
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise DecodeError(f"null bytes at byte {pos} where null is not allowed")
    return _slice(buf, pos, n - 1)


def read_compact_nullable_bytes(buf, pos: int):
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    return _slice(buf, pos, n - 1)


def read_uuid(buf, pos: int):
    raw, pos = _slice(buf, pos, 16)
    return bytes(raw), pos


def read_bool(buf, pos: int):
    return buf[pos] != 0, pos + 1


def read_array_len(buf, pos: int) -> tuple[int, int]:
    """Returns (-1 for null, else n); n can never exceed the bytes left, bounding allocation."""
    (n,) = u_i32(buf, pos)
    pos += 4
    if n > len(buf) - pos:
        raise DecodeError(f"array of {n} elements at byte {pos} exceeds the message")
    return n, pos


def read_compact_array_len(buf, pos: int) -> tuple[int, int]:
    n, pos = read_uvarint(buf, pos)
    n -= 1
    if n > len(buf) - pos:
        raise DecodeError(f"array of {n} elements at byte {pos} exceeds the message")
    return n, pos


def read_tag_header(buf, pos: int) -> tuple[int, int, int]:
    """Returns (tag, start, end) of one tagged field."""
    tag, pos = read_uvarint(buf, pos)
    size, pos = read_uvarint(buf, pos)
    end = pos + size
    if end > len(buf):
        raise DecodeError(f"tagged field {tag} of {size} bytes exceeds the message")
    return tag, pos, end


def skip_tagged_fields(buf, pos: int) -> int:
    n, pos = read_uvarint(buf, pos)
    for _ in range(n):
        pos = read_tag_header(buf, pos)[2]
    return pos


def w_string(out: bytearray, s: str) -> None:
    b = s.encode()
    out += p_i16(len(b))
    out += b


def w_nullable_string(out: bytearray, s: str | None) -> None:
    if s is None:
        out += b"\xff\xff"
    else:
        w_string(out, s)


def w_compact_string(out: bytearray, s: str | None) -> None:
    if s is None:
        out.append(0)
        return
    b = s.encode()
    write_uvarint(out, len(b) + 1)
    out += b


def w_bytes(out: bytearray, b) -> None:
    if b is None:
        out += b"\xff\xff\xff\xff"
        return
    out += p_i32(len(b))
    out += b


def w_compact_bytes(out: bytearray, b) -> None:
    if b is None:
        out.append(0)
        return
    write_uvarint(out, len(b) + 1)
    out += b


def w_array_len(out: bytearray, items) -> None:
    out += p_i32(-1 if items is None else len(items))


def w_compact_array_len(out: bytearray, items) -> None:
    write_uvarint(out, 0 if items is None else len(items) + 1)


class Writer:
    """Collects an encoded message as a list of buffers so large record sets are never copied."""

    __slots__ = ("buf", "parts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.parts: list = []

    def records(self, value, compact: bool) -> None:
        """Writes a `records` field: None, a bytes-like, or a list of bytes-likes sent in order."""
        out = self.buf
        if value is None:
            if compact:
                out.append(0)
            else:
                out += b"\xff\xff\xff\xff"
            return
        chunks = value if isinstance(value, (list, tuple)) else (value,)
        size = sum(map(len, chunks))
        if compact:
            write_uvarint(out, size + 1)
        else:
            out += p_i32(size)
        if size <= INLINE_RECORDS_LIMIT:
            for c in chunks:
                out += c
            return
        self.parts.append(out)
        self.parts.extend(chunks)
        self.buf = bytearray()

    def getbuffers(self) -> list:
        """The message as buffers for `transport.writelines`."""
        if self.buf:
            self.parts.append(self.buf)
            self.buf = bytearray()
        return self.parts

    def size(self) -> int:
        return sum(map(len, self.parts)) + len(self.buf)

    def tobytes(self) -> bytes:
        return b"".join(self.getbuffers())
