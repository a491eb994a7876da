"""The SASL state of one connection on a SASL_PLAINTEXT or SASL_SSL listener, as Kafka's
SaslServerAuthenticator and KIP-368 define it.

A connection starts unauthenticated: it may send ApiVersions, then SaslHandshake, then the
mechanism's tokens (in SaslAuthenticate requests after a v1 handshake, as raw size-prefixed frames
after a v0 one). Anything else is answered with ILLEGAL_SASL_STATE where the response has an error
code, and the connection closes. A failed exchange is answered (SASL_AUTHENTICATION_FAILED, or
UNSUPPORTED_SASL_MECHANISM with the enabled list) only after `connection.failed.authentication.delay.ms`,
then the connection closes: the wait runs in the connection's own task, so it slows the guesser and
no one else. A session has a lifetime (`connections.max.reauth.ms`, or the credential's own, if
shorter); past it, any request but a re-authentication (SaslHandshake + SaslAuthenticate again, for
the same principal and mechanism) closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING

from keystream.auth.principal import Principal
from keystream.auth.sasl import SaslAuthenticationError
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import DecodeError
from keystream.broker.protocol.framing import frame_response
from keystream.broker.protocol.messages.request_header import RequestHeader
from keystream.broker.protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse
from keystream.broker.protocol.messages.sasl_handshake_response import SaslHandshakeResponse

if TYPE_CHECKING:
    from keystream.broker.server import Connection

log = logging.getLogger("keystream.sasl")

_HEADER = struct.Struct(">hhi")
_HANDSHAKE, _AUTHENTICATE, _API_VERSIONS = 17, 36, 18
_HANDSHAKE_KEY, _API_VERSIONS_KEY = _HANDSHAKE.to_bytes(2, "big"), _API_VERSIONS.to_bytes(2, "big")
_MALFORMED = (DecodeError, struct.error, IndexError, UnicodeDecodeError, ValueError)
# States
INITIAL = "initial"  # ApiVersions or SaslHandshake expected
AUTHENTICATE = "authenticate"  # SaslAuthenticate requests carry the tokens (handshake v1)
RAW = "raw"  # raw size-prefixed tokens (handshake v0)
READY = "ready"  # authenticated: requests go to the handlers
FAILED = "failed"


class SaslSession:
    """Drives one connection's authentication; the Connection asks `wants(frame)` for every frame."""

    def __init__(self, conn: Connection, registry, static_groups: dict, config):
        self.conn = conn
        self.registry = registry
        self.static_groups = static_groups
        self.listener = conn.session.listener
        self.delay_s = config["connection.failed.authentication.delay.ms"] / 1000
        self.max_reauth_ms = config.for_listener(self.listener, "connections.max.reauth.ms")
        self.max_receive = config["sasl.server.max.receive.size"]
        self.max_request = conn.max_request
        self.state = INITIAL
        self.exchange = None
        self.mechanism: str | None = None
        self.supports_reauth = False  # the client sent SaslAuthenticate v1+ (KIP-368)
        self.expires: float | None = None  # monotonic end of the session, if it has one
        self.previous: Principal | None = None  # the principal being re-authenticated
        self.bad_mechanism: str | None = None  # a re-authentication that asked for another mechanism
        self._result_lifetime: int | None = None  # the credential's own lifetime (e.g. a Kerberos ticket)
        self._refusal: asyncio.Task | None = None  # the delayed answer to an oversized frame
        self.reauthenticated = False  # the last exchange renewed a session (for the log line)
        conn.max_request = self.max_receive

    def wants(self, frame) -> bool:
        """Whether this frame is the SASL layer's (cheap: run for every request of the connection)."""
        if self.state is READY:
            return (self.supports_reauth and frame[:2] == _HANDSHAKE_KEY) or (
                self.expires is not None and time.monotonic() >= self.expires)
        return self.state is not INITIAL or frame[:2] != _API_VERSIONS_KEY

    async def handle(self, frame):
        """Response buffers, None for no response, or False to close (after writing any answer)."""
        if self.state is FAILED:  # frames queued behind a refused one
            return False
        if self.state is RAW:
            return await self._raw_token(bytes(frame))
        buf = memoryview(frame)
        if len(buf) < 8:
            return self._close(f"{len(buf)}-byte request is shorter than a header")
        api_key, version, correlation_id = _HEADER.unpack_from(buf, 0)
        if self.state is READY:
            if api_key != _HANDSHAKE or not self.supports_reauth:
                return self._close(f"SASL session of {self.conn.session.principal} expired; the client did not"
                                   " re-authenticate")
            self.previous, self.state = self.conn.session.principal, INITIAL
            self.conn.max_request = self.max_receive
        wanted = _HANDSHAKE if self.state is INITIAL else _AUTHENTICATE
        handler = HANDLERS.get(api_key)
        if handler is None or not handler.supports(version):
            return self._close(f"unsupported api key {api_key} version {version} during SASL authentication")
        flexible = handler.flexible(version)
        try:
            _, pos = RequestHeader.decode(buf, 0, 2 if flexible else 1)
            request, _ = handler.request_cls.decode(buf, pos, version)
        except _MALFORMED as exc:
            return self._close(f"malformed {handler.request_cls.__name__} v{version} request: {exc}")
        if api_key != wanted:
            answer = _illegal_state(handler, version, correlation_id, api_key == _API_VERSIONS)
            return await self._fail(answer, f"{handler.request_cls.__name__} during SASL"
                                    f" {'handshake' if wanted == _HANDSHAKE else 'authentication'}"
                                    " (ILLEGAL_SASL_STATE)")
        if api_key == _HANDSHAKE:
            return await self._handshake(request.mechanism, version, correlation_id)
        return await self._authenticate(bytes(request.auth_bytes), version, correlation_id, flexible)

    def refuse_oversize(self, size: int, header: bytes) -> None:
        """A frame above sasl.server.max.receive.size, not read: a SaslAuthenticate (the header's
        first 8 bytes say so) gets SASL_AUTHENTICATION_FAILED, anything else only the close; both
        after the failure delay, in a task of their own (the connection's task may be waiting)."""
        reason = f"frame of {size} bytes (sasl.server.max.receive.size={self.max_receive})"
        answer = None
        if len(header) >= 8 and self.state is AUTHENTICATE:
            api_key, version, correlation_id = _HEADER.unpack_from(header, 0)
            handler = HANDLERS[_AUTHENTICATE]
            if api_key == _AUTHENTICATE and handler.supports(version):
                response = SaslAuthenticateResponse(ErrorCode.SASL_AUTHENTICATION_FAILED,
                                                    f"SASL token of {size} bytes is too large", b"")
                answer = frame_response(response, version, correlation_id, handler.flexible(version))
        self.state = FAILED
        self._refusal = asyncio.get_running_loop().create_task(
            self._fail(answer, reason, authentication=answer is not None))

    async def _handshake(self, mechanism: str, version: int, correlation_id: int):
        enabled = self.registry.enabled.get(self.listener, [])
        exchange = self.registry.new_exchange(self.listener, mechanism, self.conn.client_host)
        if exchange is None:
            answer = frame_response(SaslHandshakeResponse(ErrorCode.UNSUPPORTED_SASL_MECHANISM, enabled),
                                    version, correlation_id, False)
            return await self._fail(answer, f"unsupported SASL mechanism {mechanism[:64]!r}")
        if self.previous is not None and mechanism != self.mechanism:
            self.bad_mechanism = (f"SASL mechanism '{mechanism[:64]}' requested by client is not supported for"
                                  f" re-authentication of mechanism '{self.mechanism}'")
        self.exchange, self.mechanism = exchange, mechanism
        self.state = AUTHENTICATE if version >= 1 else RAW
        return frame_response(SaslHandshakeResponse(ErrorCode.NONE, enabled), version, correlation_id, False)

    async def _authenticate(self, token: bytes, version: int, correlation_id: int, flexible: bool):
        self.supports_reauth = self.supports_reauth or version > 0
        try:
            reply = await self._step(token)
        except SaslAuthenticationError as exc:
            answer = frame_response(SaslAuthenticateResponse(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc), b""),
                                    version, correlation_id, flexible)
            return await self._fail(answer, str(exc), authentication=True)
        lifetime_ms = 0 if self.state is not READY else self._lifetime_ms()
        return frame_response(SaslAuthenticateResponse(ErrorCode.NONE, None, reply, lifetime_ms),
                              version, correlation_id, flexible)

    async def _raw_token(self, token: bytes):
        """Handshake v0: the token is the whole frame, and so is the answer (no Kafka headers)."""
        try:
            reply = await self._step(token)
        except SaslAuthenticationError as exc:
            return await self._fail(None, str(exc), authentication=True)
        if self.state is READY:
            self._lifetime_ms()
            if not reply and self.mechanism == "GSSAPI":
                return None  # the client sends nothing more and reads no final token (Kafka's GSSAPI server)
        return [struct.pack(">i", len(reply)), reply]

    async def _step(self, token: bytes) -> bytes:
        """One token through the mechanism; on completion the session becomes authenticated."""
        if self.bad_mechanism is not None:
            raise SaslAuthenticationError(self.bad_mechanism)
        try:
            reply = await self.exchange.step(token)
        except SaslAuthenticationError:
            raise
        except Exception:
            log.exception("SASL %s exchange from %s failed unexpectedly", self.mechanism, self.conn.client_host)
            raise SaslAuthenticationError("Authentication failed due to invalid credentials with SASL mechanism"
                                          f" {self.mechanism}") from None
        result = self.exchange.result
        if result is None:
            return reply
        if self.previous is not None and result.principal != self.previous:
            raise SaslAuthenticationError(f"Cannot change principals during re-authentication from {self.previous}:"
                                          f" {result.principal}")
        session = self.conn.session
        session.principal = result.principal
        session.groups = tuple(dict.fromkeys(result.groups + self.static_groups.get(result.principal, ())))
        self.reauthenticated = self.previous is not None
        self.state, self.exchange, self.previous = READY, None, None
        self.conn.max_request = self.max_request
        self._result_lifetime = result.lifetime_ms
        return reply

    def _lifetime_ms(self) -> int:
        """KIP-368: min(connections.max.reauth.ms, the credential's own lifetime); 0 = unlimited."""
        limits = [ms for ms in (self.max_reauth_ms or None, self._result_lifetime) if ms is not None]
        lifetime = max(0, min(limits)) if limits else 0
        self.expires = time.monotonic() + lifetime / 1000 if limits else None
        session = self.conn.session
        log.info("SASL %s %s %s from %s on listener %s%s (session lifetime %s)", self.mechanism,
                 "re-authenticated" if self.reauthenticated else "authenticated",
                 session.principal, session.client_host, self.listener,
                 f" with groups {','.join(g.name for g in session.groups)}" if session.groups else "",
                 f"{lifetime} ms" if limits else "unlimited")
        return lifetime

    async def _fail(self, answer, reason: str, *, authentication: bool = False):
        """Logs, waits connection.failed.authentication.delay.ms, answers, closes (Kafka's delayed close)."""
        self.state = FAILED
        if authentication:
            log.warning("SASL %s authentication from %s on listener %s failed: %s", self.mechanism,
                        self.conn.client_host, self.listener, reason)
        else:
            log.warning("closing connection from %s on listener %s: %s", self.conn.client_host, self.listener,
                        reason)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        transport = self.conn.transport
        if answer is not None and not transport.is_closing():
            transport.writelines(answer)
        transport.close()  # flushes the answer first; Connection.close() then finds it closing
        return False

    def _close(self, reason: str):
        self.state = FAILED
        log.warning("closing connection from %s on listener %s: %s", self.conn.client_host, self.listener, reason)
        return False


def _illegal_state(handler, version: int, correlation_id: int, api_versions: bool):
    """Kafka's error response for a request out of SASL order, where the response has an error code."""
    cls = handler.response_cls
    if "error_code" not in cls.__slots__:
        return None
    response = cls(error_code=ErrorCode.ILLEGAL_SASL_STATE)
    if "error_message" in cls.__slots__:
        response.error_message = "Request not allowed before SASL authentication completes"
    return frame_response(response, version, correlation_id, handler.flexible(version) and not api_versions)
