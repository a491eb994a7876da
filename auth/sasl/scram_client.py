"""The client side of Kafka's SCRAM (RFC 5802, Kafka's flavour: no SASLprep, no channel binding) and a
one-shot login to a broker's SASL listener with it, for services (the schema registry) that check a
user's password by asking the broker rather than keeping credentials of their own.

A login is SaslHandshake v1 plus two SaslAuthenticate v1 round trips on a fresh connection, which is
then closed. The server's final message is verified too, so a listener that is not the broker we
trust cannot accept any password.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import secrets
import ssl
import struct

from keystream.auth.sasl.scram import (
    HASHES,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    _hmac,
    credential_from_salted_password,
    salted_password,
)
from keystream.broker.errors import ErrorCode
from keystream.broker.protocol.codec import DecodeError, Writer
from keystream.broker.protocol.messages.request_header import RequestHeader
from keystream.broker.protocol.messages.response_header import ResponseHeader
from keystream.broker.protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from keystream.broker.protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse
from keystream.broker.protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from keystream.broker.protocol.messages.sasl_handshake_response import SaslHandshakeResponse

MAX_RESPONSE_BYTES = 64 << 10  # SASL answers are tiny; anything bigger is not a broker talking


class Refused(Exception):
    """The broker refused the credentials (wrong password or unknown user: it does not say which)."""


class Unavailable(Exception):
    """No answer we can trust: connection, TLS, protocol or mechanism trouble; the reason is the text."""


class ScramClient:
    """One exchange: `first()`, then `final(server_first)`, then `verify(server_final)`.
    The key derivation in `final` is PBKDF2 with the server's iteration count: call it off the event loop."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None):
        if mechanism not in HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.mechanism, self.alg = mechanism, HASHES[mechanism]
        self.password = password
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(24)).decode("ascii")
        name = username.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = f"n={name},r={self.nonce}"
        self._server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self.client_first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        try:
            text = bytes(server_first).decode("utf-8")
            attrs = dict(part.split("=", 1) for part in text.split(","))
            nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"], validate=True), int(attrs["i"])
        except (UnicodeDecodeError, ValueError, KeyError) as exc:
            raise Unavailable(f"malformed SCRAM server-first message ({type(exc).__name__})") from None
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise Unavailable("SCRAM server nonce does not extend ours")
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise Unavailable(f"SCRAM iteration count {iterations} outside {MIN_ITERATIONS}..{MAX_ITERATIONS}")
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{text},{without_proof}".encode()
        salted = salted_password(self.password, self.mechanism, salt, iterations)
        keys = credential_from_salted_password(self.mechanism, salt, iterations, salted)  # what the broker stores
        client_key = _hmac(self.alg, salted, b"Client Key")
        proof = bytes(a ^ b for a, b in zip(client_key, _hmac(self.alg, keys.stored_key, auth_message), strict=True))
        self._server_signature = _hmac(self.alg, keys.server_key, auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode()

    def verify(self, server_final: bytes) -> None:
        text = bytes(server_final).decode("utf-8", "replace")
        if not text.startswith("v="):
            raise Unavailable("SCRAM server-final message carries no verifier")
        try:
            signature = base64.b64decode(text[2:], validate=True)
        except ValueError:
            raise Unavailable("malformed SCRAM server signature") from None
        if not hmac.compare_digest(signature, self._server_signature):
            raise Unavailable("the server's SCRAM signature is wrong: it does not know this user's key")


class _Connection:
    """Request/response framing over an asyncio stream (non-flexible versions only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.cid = 0

    async def call(self, request, version: int, response_cls):
        self.cid += 1
        w = Writer()
        RequestHeader(request.API_KEY, version, self.cid, "keystream-registry").encode(w, 1)
        request.encode(w, version)
        payload = w.tobytes()
        self.writer.write(struct.pack(">i", len(payload)) + payload)
        await self.writer.drain()
        (size,) = struct.unpack(">i", await self.reader.readexactly(4))
        if not 0 <= size <= MAX_RESPONSE_BYTES:
            raise Unavailable(f"response frame of {size} bytes")
        body = await self.reader.readexactly(size)
        try:
            header, pos = ResponseHeader.decode(body, 0, 0)
            response, _ = response_cls.decode(body, pos, version)
        except DecodeError as exc:
            raise Unavailable(f"undecodable response: {exc}") from None
        if header.correlation_id != self.cid:
            raise Unavailable("response to another request")
        return response


async def broker_login(host: str, port: int, ssl_context: ssl.SSLContext | None, mechanism: str,
                       username: str, password: str, timeout_s: float) -> None:
    """Returns when the broker accepts `username`/`password`; raises Refused or Unavailable."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
            try:
                await _exchange(_Connection(reader, writer), mechanism, username, password)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except TimeoutError:
        raise Unavailable(f"no answer from {host}:{port} within {timeout_s * 1000:.0f} ms") from None
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        raise Unavailable(f"{host}:{port}: {exc or type(exc).__name__}") from None


async def _exchange(conn: _Connection, mechanism: str, username: str, password: str) -> None:
    hs = await conn.call(SaslHandshakeRequest(mechanism), 1, SaslHandshakeResponse)
    if hs.error_code:
        raise Unavailable(f"the broker's SASL listener does not offer {mechanism} (error {hs.error_code})")
    scram = ScramClient(mechanism, username, password)
    first = await _authenticate(conn, scram.first())
    final_message = await asyncio.to_thread(scram.final, first)
    scram.verify(await _authenticate(conn, final_message))


async def _authenticate(conn: _Connection, token: bytes) -> bytes:
    resp = await conn.call(SaslAuthenticateRequest(token), 1, SaslAuthenticateResponse)
    if resp.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED:
        raise Refused(resp.error_message or "authentication failed")
    if resp.error_code:
        raise Unavailable(f"SaslAuthenticate error {resp.error_code}: {resp.error_message}")
    return bytes(resp.auth_bytes)
