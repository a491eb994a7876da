"""SASL/PLAIN (RFC 4616) on the server: one client message `authzid NUL authcid NUL passwd`, checked
by a password directory (LDAP).

The message is parsed strictly, before any of it reaches the directory: exactly two NULs, UTF-8
text, an authorization id that is empty or names the authenticating user (nobody acts as someone
else), and one step only. Every refusal carries the same message, so a client learns nothing about
which part was wrong or whether the user exists.
"""

from __future__ import annotations

from typing import Protocol

from keystream.auth.sasl import Authenticated, SaslAuthenticationError

FAILED = "Authentication failed: invalid credentials"  # every refusal, LDAP's included
MAX_MESSAGE_BYTES = 3 * 1024 + 2  # three fields of at most 1 KiB each and their two NULs


class PasswordDirectory(Protocol):
    """What PLAIN needs from a directory (keystream.auth.ldap.LdapDirectory)."""

    async def authenticate(self, username: str, password: str) -> Authenticated: ...

    def close(self) -> None: ...


class PlainExchange:
    """One connection's PLAIN exchange: a single `step(message)` that returns b"" or raises."""

    mechanism = "PLAIN"

    def __init__(self, directory: PasswordDirectory, client_host: str) -> None:
        self._directory = directory
        self.client_host = client_host  # for the caller's log lines
        self._done = False
        self.result: Authenticated | None = None

    async def step(self, token: bytes) -> bytes:
        if self._done:
            raise SaslAuthenticationError(FAILED)  # PLAIN has exactly one client message
        self._done = True
        username, password = parse_message(token)
        self.result = await self._directory.authenticate(username, password)
        return b""


def parse_message(token: bytes) -> tuple[str, str]:
    """`authzid NUL authcid NUL passwd` -> (authcid, passwd); SaslAuthenticationError otherwise."""
    if len(token) > MAX_MESSAGE_BYTES:
        raise SaslAuthenticationError(FAILED)
    parts = bytes(token).split(b"\0")
    if len(parts) != 3:
        raise SaslAuthenticationError(FAILED)
    try:
        authzid, authcid, passwd = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise SaslAuthenticationError(FAILED) from None
    if not authcid or not passwd or authzid not in ("", authcid):
        raise SaslAuthenticationError(FAILED)
    return authcid, passwd


class PlainMechanism:
    """The PLAIN factory: `new_exchange(client_host)` per connection; `close()` at shutdown."""

    mechanism = "PLAIN"

    def __init__(self, directory: PasswordDirectory) -> None:
        self.directory = directory

    def new_exchange(self, client_host: str) -> PlainExchange:
        return PlainExchange(self.directory, client_host)

    def close(self) -> None:
        self.directory.close()
