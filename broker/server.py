"""Listeners and connections: framing, in-order dispatch to the handler table, response writing.

A connection is an asyncio.Protocol (no stream wrappers on the hot path). Frame sizes are checked
against `socket.request.max.bytes` before a byte of the body is buffered; requests on one
connection are answered strictly in order, as Kafka clients require.
"""

import asyncio
import logging
import signal
import struct
import time
from collections import deque

from keystream.auth.principal import ANONYMOUS, Session
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import DecodeError, Writer, p_i32
from keystream.broker.protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from keystream.broker.protocol.messages.request_header import RequestHeader

log = logging.getLogger("keystream.server")

_HEADER_PREFIX = struct.Struct(">hhi")
_API_VERSIONS = 18
_MAX_QUEUED_PER_CONNECTION = 64  # pause reading beyond this many unanswered requests


class Connection(asyncio.Protocol):
    def __init__(self, server: "Server"):
        self.server = server
        self.broker = server.broker
        self.max_request = server.broker.config["socket.request.max.bytes"]
        self.transport: asyncio.Transport | None = None
        self.client_host = "?"
        self._buf = bytearray()
        self._queue: deque[bytearray] = deque()
        self._wakeup: asyncio.Future | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading_paused = False
        self._task: asyncio.Task | None = None
        self.busy = False
        self.last_active = time.monotonic()

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_host = peer[0] if peer else "?"
        self.session = Session(ANONYMOUS, self.client_host)
        if not self.server.admit(self):
            log.warning("connection from %s refused: max.connections reached", self.client_host)
            transport.abort()
            return
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc) -> None:
        self.server.forget(self)
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        buf = self._buf
        buf += data
        while len(buf) >= 4:
            (size,) = struct.unpack_from(">i", buf, 0)
            if size < 0 or size > self.max_request:
                log.warning("closing connection from %s: frame of %d bytes (socket.request.max.bytes=%d)",
                            self.client_host, size, self.max_request)
                self.close()
                return
            if len(buf) < 4 + size:
                break
            self._queue.append(buf[4:4 + size])
            del buf[:4 + size]
        if self._queue:
            if self._wakeup is not None and not self._wakeup.done():
                self._wakeup.set_result(None)
            if len(self._queue) >= _MAX_QUEUED_PER_CONNECTION and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # -- request loop --------------------------------------------------------------------------
    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._queue:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                frame = self._queue.popleft()
                if self._reading_paused and len(self._queue) < _MAX_QUEUED_PER_CONNECTION // 2:
                    self._reading_paused = False
                    self.transport.resume_reading()
                self.busy = True
                try:
                    out = await self._dispatch(frame)
                finally:
                    self.busy = False
                if out is None:
                    continue
                if out is False:
                    self.close()
                    return
                if self.transport.is_closing():  # the client left while its request was in flight
                    return
                self.transport.writelines(out)
                self.last_active = time.monotonic()
                if not self._can_write.is_set():
                    await self._can_write.wait()
        except asyncio.CancelledError:
            pass

    async def _dispatch(self, frame: bytearray):
        """Returns response buffers, None for no response (acks=0), or False to close."""
        buf = memoryview(frame)
        if len(buf) < 8:
            log.warning("closing connection from %s: %d-byte request is shorter than a header",
                        self.client_host, len(buf))
            return False
        api_key, version, correlation_id = _HEADER_PREFIX.unpack_from(buf, 0)
        handler = HANDLERS.get(api_key)
        if handler is None or not handler.supports(version):
            if api_key == _API_VERSIONS:
                return _unsupported_api_versions(correlation_id)
            log.warning("closing connection from %s: unsupported api key %d version %d",
                        self.client_host, api_key, version)
            return False
        flexible = handler.flexible(version)
        try:
            header, pos = RequestHeader.decode(buf, 0, 2 if flexible else 1)
            request, pos = handler.request_cls.decode(buf, pos, version)
        except (DecodeError, struct.error, IndexError, UnicodeDecodeError, ValueError) as e:
            log.warning("closing connection from %s: malformed %s v%d request: %s",
                        self.client_host, handler.request_cls.__name__, version, e)
            return False
        ctx = RequestContext(self.broker, version, correlation_id, header.client_id, self.session)
        try:
            response = await handler.fn(ctx, request)
        except Exception:
            log.exception("closing connection from %s: %s v%d handler failed",
                          self.client_host, handler.request_cls.__name__, version)
            return False
        if response is None:
            return None
        return _frame(response, version, correlation_id, flexible and api_key != _API_VERSIONS)


def _frame(response, version: int, correlation_id: int, tagged_header: bool) -> list:
    """Encodes size + response header + body; the size is patched in once the body is known."""
    w = Writer()
    w.buf += p_i32(0)
    w.buf += p_i32(correlation_id)
    if tagged_header:
        w.buf.append(0)
    response.encode(w, version)
    buffers = w.getbuffers()
    buffers[0][0:4] = p_i32(sum(map(len, buffers)) - 4)
    return buffers


def _unsupported_api_versions(correlation_id: int) -> list:
    """KIP-511: answer an ApiVersions version we do not know in v0 form, with our ranges."""
    keys = [ApiVersion(k, h.min_version, h.max_version) for k, h in sorted(HANDLERS.items())]
    return _frame(ApiVersionsResponse(ErrorCode.UNSUPPORTED_VERSION, keys), 0, correlation_id, False)


class Server:
    """Owns the listeners and the set of live connections (for limits, idle checks, shutdown)."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.connections: set[Connection] = set()
        self.listeners: list[asyncio.base_events.Server] = []
        self._idle_task: asyncio.Task | None = None

    def admit(self, conn: Connection) -> bool:
        if len(self.connections) >= self.broker.config["max.connections"]:
            return False
        self.connections.add(conn)
        return True

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self.broker.config.listeners:
            srv = await loop.create_server(lambda: Connection(self), listener.host or None, listener.port,
                                           reuse_address=True, backlog=1024)
            self.listeners.append(srv)
            log.info("listening on %s://%s:%d", listener.security_protocol, listener.host, listener.port)
        self._idle_task = loop.create_task(self._close_idle())

    async def _close_idle(self) -> None:
        max_idle = self.broker.config["connections.max.idle.ms"] / 1000
        while True:
            await asyncio.sleep(min(max_idle / 4, 10.0))
            deadline = time.monotonic() - max_idle
            for conn in list(self.connections):
                if not conn.busy and conn.last_active < deadline:
                    log.info("closing idle connection from %s", conn.client_host)
                    conn.close()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stops accepting, releases parked group requests, lets in-flight requests finish (bounded),
        then closes connections."""
        for srv in self.listeners:
            srv.close()
        if self._idle_task:
            self._idle_task.cancel()
        await self.broker.groups.stop()
        deadline = time.monotonic() + grace_s
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.close()


async def serve(config) -> None:
    """Runs a broker until SIGTERM or SIGINT, then shuts down cleanly."""
    broker = Broker(config)
    await broker.start()
    server = Server(broker)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await server.start()
        log.info("keystream broker %d started (cluster %s)", broker.node_id, broker.cluster_id)
        await stopping.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        await broker.stop()
    log.info("stopped cleanly")


def run(config) -> int:
    """Entry point of `keystream serve`: blocks until the broker has shut down; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is not None:
        uvloop.run(serve(config))
    else:
        asyncio.run(serve(config))
    return 0
