"""SASL types shared by the mechanisms (SCRAM, PLAIN/LDAP, GSSAPI) and the connection framework."""

from dataclasses import dataclass
from typing import Protocol

from keystream.auth.principal import Principal


class SaslAuthenticationError(Exception):
    """Authentication failed; str(exc) is the client-facing message, which never says whether the
    user exists (e.g. "Authentication failed: invalid credentials")."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal  # keystream.auth.principal.Principal("User", name)
    groups: tuple[Principal, ...] = ()  # Group:<cn> principals (LDAP)
    lifetime_ms: int | None = None  # e.g. Kerberos ticket end; None = no limit of its own


class SaslExchange(Protocol):
    """One connection's server side of one mechanism. `await step(token)` consumes the client's
    next token and returns the server's next token (b"" when there is none); raises
    SaslAuthenticationError on failure. After the last step `result` is an Authenticated."""

    mechanism: str
    result: Authenticated | None

    async def step(self, token: bytes) -> bytes: ...
