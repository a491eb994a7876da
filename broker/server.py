"""Listeners and connections: framing, in-order dispatch to the handler table, response writing.

A connection is an asyncio.Protocol (no stream wrappers on the hot path). Frame sizes are checked
against `socket.request.max.bytes` before a byte of the body is buffered; requests on one
connection are answered strictly in order, as Kafka clients require.

On an SSL listener Keystream accepts sockets itself and hands each to
`loop.connect_accepted_socket(..., ssl=<the current context>)`, so reloaded certificates apply to
new connections while established ones keep theirs, and a failed handshake surfaces as an exception
to log (one line, with OpenSSL's reason). (`loop.start_tls` on an accepted transport races with
uvloop, which starts reading right after `connection_made`.) The Connection only exists once the
handshake succeeded: nothing is read from an unauthenticated client.
"""

import asyncio
import gc
import logging
import signal
import socket
import struct
import time
from collections import Counter, deque

from keystream.auth.principal import ANONYMOUS, Principal, Session
from keystream.auth.sasl.registry import SaslRegistry
from keystream.auth.ssl_principal import CertificateNameError, NoMatchingRule, SslPrincipalMapper, subject_dn
from keystream.auth.static_groups import parse_static_groups
from keystream.auth.tls import TlsContexts, has_client_auth_eku
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import DecodeError
from keystream.broker.protocol.framing import frame_response as _frame
from keystream.broker.protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from keystream.broker.protocol.messages.request_header import RequestHeader
from keystream.broker.quotas import REQUEST, QuotaManager, TimedCoroutine, nanos_to_percentage
from keystream.broker.sasl_session import READY, SaslSession
from keystream.configdef import ConfigError
from keystream.service_loop import LOG_FORMAT, run_service

log = logging.getLogger("keystream.server")

_HEADER_PREFIX = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")
# A Connection is a BufferedProtocol: bytes are read (or, over TLS, decrypted) straight into its
# buffers. Frames up to _RECV_BUFFER - 4 bytes are cut out of one reused buffer (one copy each; it
# is also what an idle connection holds); a larger frame (a produce request) gets its own buffer once
# its size is read and the rest of it lands there directly, instead of being copied chunk by chunk
# into a growing bytearray and then sliced out of it (and, over TLS, decrypted into a fresh 256 KiB
# bytes object per TLS record). Its first _BODY_PREALLOC bytes are allocated up front, the rest as
# they arrive. Broker CPU per 1 KiB record produced (acks=1, 1 partition, median of 6 interleaved
# runs, old and new broker side by side): plaintext 1.07 -> 0.76 us, mTLS 2.70 -> 2.44 us.
_RECV_BUFFER = 16 * 1024
_BODY_PREALLOC = 4 * 1024 * 1024
_API_VERSIONS = 18
# Bytes of whole request frames queued on one connection before reading pauses (besides the
# queued.max.requests count): a client that pipelines 1 MiB produce requests behind a response it
# never reads otherwise made the broker hold 500 of them (RSS 51 -> 914 MiB, measured).
# librdkafka's 5 in-flight 1 MiB batches stay far below it.
_MAX_QUEUED_BYTES = 16 << 20
# Not counted against request_percentage quotas (Kafka exempts these too): ApiVersions, SaslHandshake,
# SaslAuthenticate.
_QUOTA_EXEMPT = frozenset({18, 17, 36})


class Connection(asyncio.BufferedProtocol):
    def __init__(self, server: "Server", listener=None):
        self.server = server
        self.listener = listener
        self.broker = server.broker
        self.max_request = server.broker.config["socket.request.max.bytes"]
        self.transport: asyncio.Transport | None = None
        self.client_host = "?"
        self._rbuf = bytearray(_RECV_BUFFER)  # headers and small frames, reused
        self._rview = memoryview(self._rbuf)
        self._rlen = 0  # bytes at the start of _rbuf not yet cut into frames
        self._body: bytearray | None = None  # a large frame's body, received in place
        self._body_view: memoryview | None = None
        self._body_fill = 0
        self._body_size = 0
        self._queue: deque[bytearray] = deque()
        self._queued_bytes = 0
        self._wakeup: asyncio.Future | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading_paused = False
        self._task: asyncio.Task | None = None
        self.sasl: SaslSession | None = None  # on SASL listeners: the authentication state
        self.busy = False
        self.last_active = time.monotonic()
        self._mute_ms = 0  # KIP-219: after the response just written, read nothing for this long

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_host = peer[0] if peer else "?"
        name, protocol = (self.listener.name, self.listener.security_protocol) if self.listener else \
            ("PLAINTEXT", "PLAINTEXT")
        principal = ANONYMOUS
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # the handshake is complete
            try:
                principal = self.server.principal_of(ssl_object)
            except (CertificateNameError, NoMatchingRule, ValueError) as exc:
                log_refused(self.client_host, name, str(exc))
                transport.abort()
                return
            if protocol == "SSL":
                log.info("authenticated %s on listener %s (%s, %s) as %s", self.client_host, name,
                         ssl_object.version(), (ssl_object.cipher() or ("?",))[0], principal)
        if protocol.startswith("SASL_"):  # the principal comes from SASL, whatever the certificate says
            self.session = Session(ANONYMOUS, self.client_host, listener=name, security_protocol=protocol)
            self.sasl = SaslSession(self, self.server.sasl, self.server.static_groups, self.broker.config)
        else:
            self.session = Session(principal, self.client_host, listener=name, security_protocol=protocol,
                                   groups=self.server.static_groups.get(principal, ()))
        refusal = self.server.admit(self)
        if refusal:
            log.warning("connection from %s refused: %s reached", self.client_host, refusal)
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

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body is not None:
            return self._body_view[self._body_fill:]
        return self._rview[self._rlen:]

    def buffer_updated(self, nbytes: int) -> None:
        self.last_active = time.monotonic()
        if self._body is None:
            self._rlen += nbytes
            self._cut_frames()
        else:
            self._body_fill += nbytes
            if self._body_fill == self._body_size:
                self._enqueue(self._body)
                self._body = self._body_view = None
            elif self._body_fill == len(self._body):
                self._grow_body()
        if self._queue:
            if self._wakeup is not None and not self._wakeup.done():
                self._wakeup.set_result(None)
            if (len(self._queue) >= self.server.max_queued or self._queued_bytes >= _MAX_QUEUED_BYTES) \
                    and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()

    def _cut_frames(self) -> None:
        """Queues the complete frames at the start of the receive buffer; a frame too large for it
        gets a buffer of its own that the rest of its body is received into (no further copies)."""
        buf, pos, end = self._rbuf, 0, self._rlen
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 0 or size > self.max_request:
                self._refuse_frame(size, buf[pos:min(end, pos + 12)])
                return
            if end - pos - 4 >= size:
                self._enqueue(buf[pos + 4:pos + 4 + size])
                pos += 4 + size
            else:
                if 4 + size > len(buf):
                    have = end - pos - 4
                    self._body_size = size
                    self._body = bytearray(min(size, max(_BODY_PREALLOC, have)))
                    self._body_view = memoryview(self._body)
                    self._body[:have] = self._rview[pos + 4:end]
                    self._body_fill = have
                    pos = end
                break
        if pos:
            self._rlen = end - pos
            if self._rlen:
                buf[:self._rlen] = self._rview[pos:end]

    def _enqueue(self, frame: bytearray) -> None:
        self._queue.append(frame)
        self._queued_bytes += len(frame)

    def _grow_body(self) -> None:
        """Frames above _BODY_PREALLOC get memory as their bytes arrive, not as their size claims."""
        body = bytearray(min(self._body_size, 2 * len(self._body)))
        body[:self._body_fill] = self._body_view
        self._body_view.release()
        self._body, self._body_view = body, memoryview(body)

    def _refuse_frame(self, size: int, first: bytes) -> None:
        if first[0] == 0x16 and first[1] == 3:
            log.warning("closing connection from %s: TLS handshake on %s listener %s",
                        self.client_host, self.session.security_protocol, self.session.listener)
        elif self.sasl is not None and self.sasl.state is not READY:
            self._rlen = 0
            self.transport.pause_reading()
            self.sasl.refuse_oversize(size, first[4:])
            return
        else:
            log.warning("closing connection from %s: frame of %d bytes (socket.request.max.bytes=%d)",
                        self.client_host, size, self.max_request)
        self._rlen = 0
        self.close()

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
                self._queued_bytes -= len(frame)
                if self._reading_paused and len(self._queue) <= self.server.max_queued // 2 \
                        and self._queued_bytes <= _MAX_QUEUED_BYTES // 2:
                    self._reading_paused = False
                    self.transport.resume_reading()
                self.busy = True
                try:
                    out = await self._dispatch(frame)
                finally:
                    self.busy = False
                if out is None:
                    if self._mute_ms:  # a throttled acks=0 produce: no response, muted all the same
                        await self._mute()
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
                if self._mute_ms:
                    await self._mute()
        except asyncio.CancelledError:
            pass

    async def _dispatch(self, frame: bytearray):
        """Returns response buffers, None for no response (acks=0), or False to close."""
        if self.sasl is not None and self.sasl.wants(frame):
            return await self.sasl.handle(frame)
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
        quotas = self.broker.quotas
        timed = api_key not in _QUOTA_EXEMPT and quotas.enabled(REQUEST, self.session)
        try:
            if timed:
                call = TimedCoroutine(handler.fn(ctx, request))
                response = await call
            else:
                response = await handler.fn(ctx, request)
            self._mute_ms = self._throttle(quotas, ctx, response, call.ns if timed else None)
        except Exception:
            log.exception("closing connection from %s: %s v%d handler failed",
                          self.client_host, handler.request_cls.__name__, version)
            return False
        if self._mute_ms:  # the throttle answered (or, for acks=0, applied): the tenant's usage figure
            self.broker.tenant_usage.throttled(self.session, self._mute_ms)
        if response is None:
            return None
        return _frame(response, version, correlation_id, flexible and api_key != _API_VERSIONS)

    # -- client quotas (broker/quotas.py): KIP-219, respond at once, then mute -------------------
    def _throttle(self, quotas: QuotaManager, ctx: RequestContext, response, handler_ns: int | None) -> int:
        """The response's throttle time: the handler's (byte rates), raised to the request_percentage
        throttle when the handler's loop time was measured; 0 for none."""
        # No response (acks=0 produce): the byte-rate mute the handler left on the context.
        throttle = ctx.throttle_ms if response is None else getattr(response, "throttle_time_ms", 0) or 0
        if handler_ns is not None:
            request_ms = quotas.record(REQUEST, self.session, ctx.client_id, nanos_to_percentage(handler_ns))
            if request_ms > throttle and (response is None or hasattr(response, "throttle_time_ms")):
                throttle = request_ms
                if response is not None:
                    response.throttle_time_ms = request_ms
        return throttle

    async def _mute(self) -> None:
        """Reads (and handles) nothing more from this client for `_mute_ms`, as Kafka mutes a
        throttled channel; queued-frame back-pressure (`_reading_paused`) keeps its own say."""
        ms, self._mute_ms = self._mute_ms, 0
        if self.transport.is_closing():
            return
        self.transport.pause_reading()
        try:
            await asyncio.sleep(ms / 1000)
        finally:
            if not self._reading_paused and not self.transport.is_closing():
                self.transport.resume_reading()


def log_refused(client_host: str, listener: str, reason: str) -> None:
    """The one log line per refused TLS handshake (OpenSSL's reason; never key material)."""
    log.warning("TLS handshake from %s on listener %s refused: %s", client_host, listener, reason)


def _why(exc: BaseException) -> str:
    """A one-line reason for a failed handshake (OpenSSL's reason, never key material)."""
    reason = getattr(exc, "verify_message", None)
    if not reason:
        text = str(exc)  # "[SSL: NO_SHARED_CIPHER] no shared cipher (_ssl.c:1006)" → "no shared cipher"
        reason = text.partition("] ")[2].rpartition(" (_ssl.c")[0] or text or type(exc).__name__
    return f"{reason} ({type(exc).__name__})"


def _unsupported_api_versions(correlation_id: int) -> list:
    """KIP-511: answer an ApiVersions version we do not know in v0 form, with our ranges."""
    keys = [ApiVersion(k, h.min_version, h.max_version) for k, h in sorted(HANDLERS.items())]
    return _frame(ApiVersionsResponse(ErrorCode.UNSUPPORTED_VERSION, keys), 0, correlation_id, False)


class Server:
    """Owns the listeners and the set of live connections (for limits, idle checks, shutdown)."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.connections: set[Connection] = set()
        self._per_host: Counter[str] = Counter()
        self.max_queued = broker.config["queued.max.requests"]  # per connection, then reading pauses
        self.listeners: list[asyncio.base_events.Server] = []
        self._idle_task: asyncio.Task | None = None
        self.tls: TlsContexts | None = None
        self.principal_mapper: SslPrincipalMapper | None = None
        self.static_groups = parse_static_groups(broker.config["principal.groups"])
        tls_listeners = [lst for lst in broker.config.listeners if lst.security_protocol in ("SSL", "SASL_SSL")]
        if tls_listeners:
            self.principal_mapper = SslPrincipalMapper(broker.config["ssl.principal.mapping.rules"])
            self.tls = TlsContexts(broker.config, {lst.name: client_auth(broker.config, lst) for lst in tls_listeners})
        has_sasl = any(lst.security_protocol.startswith("SASL_") for lst in broker.config.listeners)
        self.sasl = SaslRegistry(broker.config, broker) if has_sasl else None

    def principal_of(self, ssl_object) -> Principal:
        """User:<mapped subject DN> for a client certificate; User:ANONYMOUS without one."""
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return ANONYMOUS
        if not has_client_auth_eku(der):
            raise ValueError("client certificate has no clientAuth extended key usage")
        return Principal("User", self.principal_mapper.name(subject_dn(der)))

    def reload_tls(self, reason: str = "SIGHUP") -> None:
        if self.tls is not None:
            self.tls.reload(reason)

    def limit_reached(self, host: str, pending: int = 0) -> str | None:
        """The name of the connection limit a new connection from `host` would exceed, if any."""
        if len(self.connections) + pending >= self.broker.config["max.connections"]:
            return "max.connections"
        if self._per_host[host] >= self.broker.config["max.connections.per.ip"]:
            return "max.connections.per.ip"
        return None

    def admit(self, conn: Connection) -> str | None:
        """Registers the connection, or returns the limit that refuses it."""
        refusal = self.limit_reached(conn.client_host)
        if refusal is None:
            self.connections.add(conn)
            self._per_host[conn.client_host] += 1
        return refusal

    def forget(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self._per_host[conn.client_host] -= 1
            if not self._per_host[conn.client_host]:
                del self._per_host[conn.client_host]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self.broker.config.listeners:
            if listener.security_protocol in ("SSL", "SASL_SSL"):
                self.listeners.append(_TlsListener(self, listener))
                log.info("listening on %s://%s:%d", listener.security_protocol, listener.host, listener.port)
                continue
            srv = await loop.create_server(lambda lst=listener: Connection(self, lst), listener.host or None,
                                           listener.port,
                                           reuse_address=True, backlog=1024)
            self.listeners.append(srv)
            log.info("listening on %s://%s:%d", listener.security_protocol, listener.host, listener.port)
        self._idle_task = loop.create_task(self._close_idle())
        if self.tls is not None:
            self.tls.start_watching()

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
        if self.tls is not None:
            self.tls.stop_watching()
        await self.broker.groups.stop()
        deadline = time.monotonic() + grace_s
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.close()
        if self.sasl is not None:
            self.sasl.close()


def client_auth(config, listener) -> str:
    """ssl.client.auth of a TLS listener: SASL_SSL ignores the broker-wide value (KIP-684) and asks
    for no certificate unless its own `listener.name.<name>.ssl.client.auth` says otherwise."""
    if listener.security_protocol == "SASL_SSL":
        return config.listener_override(listener.name, "ssl.client.auth", "none")
    return config.for_listener(listener.name, "ssl.client.auth")


class _TlsListener:
    """Accepts TCP sockets and completes the TLS handshake of each with the current context."""

    def __init__(self, server: Server, listener):
        self.server, self.listener = server, listener
        host = listener.host
        if not host and socket.has_dualstack_ipv6():
            self.sock = socket.create_server(("", listener.port), family=socket.AF_INET6, dualstack_ipv6=True,
                                             backlog=1024)
        else:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.create_server((host, listener.port), family=family, backlog=1024)
        self.sock.setblocking(False)
        self.handshaking = 0
        self._handshakes: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(self.sock)
            except asyncio.CancelledError:
                return
            except OSError as exc:  # e.g. EMFILE: keep the listener alive
                log.warning("accept on %s failed: %s", self.listener.name, exc)
                await asyncio.sleep(0.1)
                continue
            refusal = self.server.limit_reached(addr[0], self.handshaking)
            if refusal:
                log.warning("connection from %s refused: %s reached", addr[0], refusal)
                sock.close()
                continue
            task = loop.create_task(self._handshake(sock, addr[0]))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, host: str) -> None:
        loop, tls = asyncio.get_running_loop(), self.server.tls
        timeout_ms = self.server.broker.config["ssl.handshake.timeout.ms"]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.handshaking += 1
        try:
            await loop.connect_accepted_socket(lambda: Connection(self.server, self.listener), sock,
                                               ssl=tls.context(self.listener.name),
                                               ssl_handshake_timeout=timeout_ms / 1000)
        except asyncio.CancelledError:
            sock.close()
        except Exception as exc:  # noqa: BLE001  (a failed handshake is the client's: log it and close)
            timed_out = isinstance(exc, TimeoutError | ConnectionAbortedError) and "longer than" in str(exc)
            log_refused(host, self.listener.name, f"handshake not completed within ssl.handshake.timeout.ms="
                        f"{timeout_ms}" if timed_out else _why(exc))
            sock.close()
        finally:
            self.handshaking -= 1

    def close(self) -> None:
        self._task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        self.sock.close()


async def serve(config, on_started=None) -> None:
    """Runs a broker until SIGTERM or SIGINT, then shuts down cleanly; `on_started()` is called on the
    event loop once the listeners accept connections (`keystream up` then creates its SCRAM user)."""
    broker = Broker(config)
    server = Server(broker)  # builds the TLS contexts first: bad ssl.* files fail start-up early
    # Signal handlers before the logs load: a SIGTERM during log recovery (the server is PID 1 in a
    # container, where an unhandled SIGTERM is ignored) stops the broker as soon as the load ends.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_tls)
    admin = None
    if config["admin.listener"]:
        from keystream.broker.admin.server import AdminServer  # grpc only when the admin API is on

        admin = AdminServer(broker, server)
    health = None
    # probes see NOT_SERVING until the logs load, no answer while they load (it blocks the loop:
    # DEADLINE_EXCEEDED), SERVING once listening and NOT_SERVING again from the start of shutdown
    if config["health.listener"]:
        from keystream.broker.admin.health import HealthServer

        health = HealthServer(config)
        await health.start()
    try:
        await _serve_broker(broker, server, admin, health, stopping, on_started)
    finally:
        if health is not None:
            await health.stop()
    log.info("stopped cleanly")


async def _serve_broker(broker, server, admin, health, stopping, on_started) -> None:
    await broker.start()
    try:
        if admin is not None:  # before the Kafka listeners: a broker that answers has its admin API up
            await admin.start()
        await server.start()
        if health is not None:
            await health.serving()
        # Everything built at start-up (modules, config, loaded logs) lives as long as the process: move
        # it out of the cyclic GC's reach, or every full collection walks it all on the loop (~15 ms).
        gc.freeze()
        log.info("keystream broker %d started (cluster %s)", broker.node_id, broker.cluster_id)
        if on_started is not None:
            on_started()
        await stopping.wait()
        log.info("shutting down")
    finally:
        if health is not None:  # first: probes and load balancers stop sending clients here
            await health.shutting_down()
        if admin is not None:
            await admin.stop()
        await server.stop()
        await broker.stop()


def run(config, on_started=None) -> int:
    """Entry point of `keystream serve`: blocks until the broker has shut down; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # e.g. an unreadable ssl.keystore.location: one clear line, no traceback
    return run_service(serve(config, on_started), log, (ConfigError,))
