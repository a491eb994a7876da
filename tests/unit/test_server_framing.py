"""Connection's receive path (a BufferedProtocol): frames come out whole and in order however the
stream is cut into reads, small ones from the reused buffer, large ones received in place."""

from __future__ import annotations

import random
import struct
from types import SimpleNamespace

import pytest

from keystream.broker import server as srv
from keystream.broker.server import Connection


class _Transport:
    def __init__(self) -> None:
        self.aborted = False
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def _connection(max_request: int = 100 << 20) -> Connection:
    server = SimpleNamespace(broker=SimpleNamespace(config={"socket.request.max.bytes": max_request}),
                             max_queued=1 << 30)
    conn = Connection(server)
    conn.transport = _Transport()
    conn.session = SimpleNamespace(security_protocol="PLAINTEXT", listener="PLAINTEXT")
    return conn


def _feed(conn: Connection, stream: bytes, rng: random.Random, max_read: int) -> None:
    """Delivers `stream` the way an event loop does: into get_buffer(), at most max_read at a time."""
    pos = 0
    while pos < len(stream) and not conn.transport.aborted:
        buf = conn.get_buffer(65536)
        assert len(buf) > 0
        n = min(len(buf), len(stream) - pos, rng.randint(1, max_read))
        buf[:n] = stream[pos:pos + n]
        conn.buffer_updated(n)
        pos += n


LIMIT = srv._RECV_BUFFER - 4  # the largest frame cut out of the shared buffer


@pytest.mark.parametrize("max_read", [1, 7, 4096, 300_000])
def test_frames_survive_any_read_pattern(max_read):
    rng = random.Random(max_read)
    sizes = [0, 1, 8, 100, LIMIT - 1, LIMIT, LIMIT + 1, 70_000, 1 << 20, 3, srv._BODY_PREALLOC + 12_345, 9]
    if max_read == 1:
        sizes = [s for s in sizes if s < 1 << 20]  # byte-at-a-time through 5 MiB is slow, not different
    frames = [rng.randbytes(s) for s in sizes]
    stream = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    conn = _connection()
    _feed(conn, stream, rng, max_read)
    assert not conn.transport.aborted
    assert [bytes(f) for f in conn._queue] == frames
    assert conn._queued_bytes == sum(sizes)
    assert conn._rlen == 0 and conn._body is None


def test_large_frame_memory_follows_the_bytes_received():
    """A client announcing a large frame gets _BODY_PREALLOC bytes up front, not what it announced."""
    conn = _connection()
    _feed(conn, struct.pack(">i", 50 << 20) + b"x" * 1000, random.Random(1), 1 << 20)
    assert conn._body is not None and len(conn._body) == srv._BODY_PREALLOC
    assert not conn._queue


@pytest.mark.parametrize("header", [struct.pack(">i", 1001), struct.pack(">i", -5), b"\x16\x03\x01\x02"])
def test_oversized_negative_or_tls_frame_closes_before_buffering(header):
    conn = _connection(max_request=1000)
    _feed(conn, header + b"y" * 5000, random.Random(2), 5000)
    assert conn.transport.aborted
    assert not conn._queue and conn._body is None
