"""SCRAM-SHA-256/512 (RFC 5802, RFC 7677): credentials and the server side of the exchange.

Kafka's flavour of the RFC: no channel binding (Kafka has no -PLUS mechanisms, so the gs2 flag is
"n" or "y"), no SASLprep (Kafka and librdkafka hash the UTF-8 password as it is) and no extensions
(Kafka's only one, `tokenauth`, means delegation tokens, which Keystream does not issue). The broker
keeps only salt, iterations, StoredKey and ServerKey; the proof is checked in constant time. An
unknown user is answered with a fake credential derived from a per-process secret, so the client
sees the same server-first message shape and the same final error whether or not the user exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field

from keystream.auth.principal import Principal
from keystream.auth.sasl import Authenticated, SaslAuthenticationError

log = logging.getLogger("keystream.sasl.scram")

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MIN_ITERATIONS = 4096  # RFC 7677 and Kafka's minimum
MAX_ITERATIONS = 16384  # Kafka's maximum for credentials set through the Admin API
DEFAULT_ITERATIONS = 8192  # `keystream user add`'s default; also what unknown users are answered with
SALT_BYTES = 64  # what librdkafka (so `keystream user add`) generates; fake credentials look the same
MAX_MESSAGE_BYTES = 8192  # a client message longer than this is refused before it is parsed
FAILED = "Authentication failed: invalid credentials"  # the one message every failure gets

_FAKE_SECRET = secrets.token_bytes(32)
_SASLNAME = re.compile(r"(?:[^=,\x00]|=2C|=3D)+")
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # RFC 5802 `printable`: visible ASCII but ","


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the broker stores for one user and mechanism: enough to verify a proof, never the password."""

    mechanism: str
    salt: bytes = field(repr=False)
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)


def _hmac(alg: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, alg).digest()


def credential_from_salted_password(mechanism: str, salt: bytes, iterations: int,
                                    salted_password: bytes) -> ScramCredential:
    """The stored form of SaltedPassword (what the Admin API's upsertion carries)."""
    alg = HASHES[mechanism]
    salted_password = bytes(salted_password)  # decoded requests carry memoryviews
    client_key = _hmac(alg, salted_password, b"Client Key")
    return ScramCredential(mechanism, bytes(salt), iterations, hashlib.new(alg, client_key).digest(),
                           _hmac(alg, salted_password, b"Server Key"))


def salted_password(password: str | bytes, mechanism: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 Hi(password, salt, i) = PBKDF2 with the mechanism's HMAC."""
    secret = password.encode() if isinstance(password, str) else password
    return hashlib.pbkdf2_hmac(HASHES[mechanism], secret, salt, iterations)


def make_credential(password: str | bytes, mechanism: str, iterations: int = MIN_ITERATIONS,
                    salt: bytes | None = None) -> ScramCredential:
    """A new credential for `password` (random salt unless given)."""
    if mechanism not in HASHES:
        raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"SCRAM needs at least {MIN_ITERATIONS} iterations")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return credential_from_salted_password(mechanism, salt, iterations,
                                           salted_password(password, mechanism, salt, iterations))


def _fake_credential(mechanism: str, username: str) -> ScramCredential:
    """A stable, unguessable credential for a user that does not exist (the same for every attempt,
    like a real one, so repeated probes see the same salt)."""
    alg = HASHES[mechanism]
    seed = _hmac(alg, _FAKE_SECRET, f"{mechanism}\0{username}".encode())
    salt = _hmac("sha512", seed, b"salt")[:SALT_BYTES]
    return credential_from_salted_password(mechanism, salt, DEFAULT_ITERATIONS, _hmac(alg, seed, b"password"))


class _Refused(Exception):
    """Internal: why an exchange failed (logged at debug level, never sent to the client)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("bad base64") from None


def _text(token: bytes) -> str:
    if len(token) > MAX_MESSAGE_BYTES:
        raise _Refused(f"message of {len(token)} bytes")
    try:
        return bytes(token).decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("message is not UTF-8") from None


def _saslname(text: str) -> str:
    """RFC 5802 saslname: "," and "=" arrive as =2C and =3D; a bare "=" is malformed."""
    if not _SASLNAME.fullmatch(text):
        raise _Refused("malformed saslname")
    return re.sub(r"=(2C|3D)", lambda m: "," if m[1] == "2C" else "=", text)


def _attribute(part: str, name: str) -> str:
    if not part.startswith(name + "="):
        raise _Refused(f"expected attribute {name}")
    return part[len(name) + 1:]


def parse_client_first(token: bytes) -> tuple[str, str, str, str]:
    """(gs2 header, username, client nonce, client-first-message-bare) of a client-first message."""
    text = _text(token)
    flag, sep1, rest = text.partition(",")
    authz, sep2, bare = rest.partition(",")
    if not (sep1 and sep2):
        raise _Refused("no gs2 header")
    if flag not in ("n", "y"):  # "p=..." asks for channel binding, which Kafka does not have
        raise _Refused(f"channel binding flag {flag[:20]!r}")
    parts = bare.split(",")
    if len(parts) != 2:  # reserved "m=" or extensions (tokenauth ...): none supported
        raise _Refused("unsupported SCRAM extension")
    username = _saslname(_attribute(parts[0], "n"))
    nonce = _attribute(parts[1], "r")
    if not _NONCE.fullmatch(nonce):
        raise _Refused("malformed nonce")
    if authz and _saslname(_attribute(authz, "a")) != username:
        raise _Refused("authorization id differs from the user name")
    return f"{flag},{authz},", username, nonce, bare


def parse_client_final(token: bytes) -> tuple[str, str, bytes, str]:
    """(channel binding, nonce, proof, client-final-message-without-proof) of a client-final message."""
    text = _text(token)
    without_proof, sep, proof = text.rpartition(",p=")
    if not sep:
        raise _Refused("no proof")
    parts = without_proof.split(",")
    if len(parts) != 2:
        raise _Refused("unsupported SCRAM extension")
    return _attribute(parts[0], "c"), _attribute(parts[1], "r"), _unb64(proof), without_proof


class ScramExchange:
    """The server side of one SCRAM exchange: client-first → server-first, client-final → server-final.

    Single use: any step after the exchange completed or failed is refused (a replayed
    client-final), and a client-final is only valid with this exchange's combined nonce."""

    def __init__(self, mechanism: str, store, client_host: str, *, server_nonce: str | None = None):
        if mechanism not in HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.mechanism = mechanism
        self.result: Authenticated | None = None
        self._alg = HASHES[mechanism]
        self._store = store
        self._client_host = client_host
        self._server_nonce = server_nonce or secrets.token_urlsafe(24)
        self._state = "client-first"
        self._username = ""
        self._known = False
        self._credential: ScramCredential | None = None
        self._gs2_header = self._nonce = self._auth_prefix = ""

    async def step(self, token: bytes) -> bytes:
        state, self._state = self._state, "failed"  # until this step succeeds
        try:
            if state == "client-first":
                reply = self._client_first(token)
                self._state = "client-final"
            elif state == "client-final":
                reply = self._client_final(token)
                self._state = "done"
            else:
                raise _Refused(f"message after the exchange {state}")
            return reply.encode()
        except _Refused as why:
            self._credential = self.result = None  # a violation after success leaves nothing usable
            log.debug("%s authentication of %r from %s failed: %s", self.mechanism, self._username[:100],
                      self._client_host, why)
            raise SaslAuthenticationError(FAILED) from None

    def _client_first(self, token: bytes) -> str:
        self._gs2_header, self._username, client_nonce, bare = parse_client_first(token)
        cred = self._store.lookup(self._username, self.mechanism)
        self._known = cred is not None and cred.mechanism == self.mechanism and cred.iterations >= MIN_ITERATIONS
        self._credential = cred if self._known else _fake_credential(self.mechanism, self._username)
        self._nonce = client_nonce + self._server_nonce
        server_first = f"r={self._nonce},s={_b64(self._credential.salt)},i={self._credential.iterations}"
        self._auth_prefix = f"{bare},{server_first},"
        return server_first

    def _client_final(self, token: bytes) -> str:
        channel_binding, nonce, proof, without_proof = parse_client_final(token)
        if channel_binding != _b64(self._gs2_header.encode()):
            raise _Refused("channel binding does not match the gs2 header")
        if not hmac.compare_digest(nonce.encode(), self._nonce.encode()):
            raise _Refused("wrong nonce")
        cred = self._credential
        auth_message = (self._auth_prefix + without_proof).encode()
        signature = _hmac(self._alg, cred.stored_key, auth_message)
        if len(proof) != len(signature):
            raise _Refused("proof of the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        proof_ok = hmac.compare_digest(hashlib.new(self._alg, client_key).digest(), cred.stored_key)
        if not (proof_ok and self._known):
            raise _Refused("wrong proof" if self._known else "unknown user")
        self._credential = None
        self.result = Authenticated(Principal("User", self._username))
        return "v=" + _b64(_hmac(self._alg, cred.server_key, auth_message))


class ScramMechanism:
    """The factory the SASL framework asks for one exchange per authentication attempt."""

    def __init__(self, store, mechanism: str):
        if mechanism not in HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.store = store
        self.mechanism = mechanism

    def new_exchange(self, client_host: str) -> ScramExchange:
        return ScramExchange(self.mechanism, self.store, client_host)

    def close(self) -> None:
        """Nothing to release: SCRAM does only in-memory HMACs, on the event loop."""
