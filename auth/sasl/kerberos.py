"""SASL/GSSAPI (Kerberos V5) on the broker: the exchange Kafka clients perform.

Kafka clients (Java, librdkafka/Cyrus, kafka-python) run RFC 4752 on top of the GSS context: the
AP-REQ/AP-REP round trip, then an empty client token, the server's wrapped offer of security layers
and maximum buffer, and the client's wrapped choice plus an authorization id. Kafka offers only "no
security layer" (TLS protects the channel), and it ignores the authorization id, taking the identity
from the ticket (Java: `setAuthorizedID(authenticationID)`); doing otherwise would let any client
name itself. The Kerberos name becomes `User:<short name>` through the principal-to-local rules.

gssapi calls read keytabs and the replay cache, so they run in the factory's bounded thread pool,
never on the event loop. Nothing here logs token bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gssapi
from gssapi.exceptions import GeneralError, GSSError

from keystream.auth.kerberos_rules import KerberosRuleError, KerberosShortNamer
from keystream.auth.principal import Principal
from keystream.auth.sasl import Authenticated, SaslAuthenticationError
from keystream.configdef import ConfigError

log = logging.getLogger(__name__)

MECHANISM = "GSSAPI"
FAILED = "Authentication failed during authentication due to invalid credentials with SASL mechanism GSSAPI"
NO_SECURITY_LAYER = 1  # RFC 4752 bit mask: 1 none, 2 integrity, 4 confidentiality
MAX_BUFFER = 65536  # what Java's GSSAPI SaslServer offers; unused without a security layer
_OFFER = bytes([NO_SECURITY_LAYER]) + MAX_BUFFER.to_bytes(3, "big")
_KRB5 = gssapi.MechType.kerberos
_CLOCKSKEW = re.compile(r"clockskew\s*=\s*([0-9]+)\s*$")

_ACCEPT, _EMPTY, _LAYER, _DONE = "accept", "expect-empty", "expect-layer", "done"


class _Refused(Exception):
    """Why one exchange is refused; logged for the operator, never sent to the client."""


def default_realm() -> str:
    """krb5.conf's default realm, which DEFAULT rules strip (Kafka: KerberosUtil.defaultRealm())."""
    try:
        name = gssapi.Name("x", gssapi.NameType.kerberos_principal).canonicalize(_KRB5)
    except (GSSError, GeneralError):
        return ""  # no default realm: DEFAULT then maps nothing, as in Kafka
    return str(name).rpartition("@")[2]


def clock_skew() -> int:
    """krb5.conf's `[libdefaults] clockskew` (default 300 s). MIT adds it to an acceptor context's
    lifetime (measured with krb5 1.20: a 24 h ticket gives 86,700 s), so the ticket's own end is
    `lifetime - clock_skew()`. Reads the files of KRB5_CONFIG in order, first value wins."""
    for path in os.environ.get("KRB5_CONFIG", "/etc/krb5.conf").split(":"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[libdefaults]" and (m := _CLOCKSKEW.match(line)):
                return int(m.group(1))
    return 300


def _default_host(config: Any) -> str:
    """The host of the first SASL listener clients are given, else this machine's FQDN."""
    for listener in getattr(config, "advertised_listeners", []):
        if listener.security_protocol.startswith("SASL_"):
            return listener.host
    return socket.getfqdn()


class GssapiMechanism:
    """Factory: acceptor credentials loaded once (a missing keytab or key fails start-up), bound to
    the service principal (not to any key the keytab holds) and to Kerberos V5 itself, so neither
    a ticket for another service nor SPNEGO, which Kafka's clients never send, gets through."""

    mechanism = MECHANISM

    def __init__(self, config: Any, *, max_workers: int = 4):
        service = config["sasl.kerberos.service.name"]
        principal = config["sasl.kerberos.principal"] or f"{service}/{_default_host(config)}"
        keytab = config["sasl.kerberos.keytab"]
        self.short_namer = KerberosShortNamer(config["sasl.kerberos.principal.to.local.rules"], default_realm())
        try:
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal).canonicalize(_KRB5)
        except (GSSError, GeneralError) as exc:
            raise ConfigError(f"Invalid value '{principal}' for configuration sasl.kerberos.principal: {exc}") from None
        self.principal = str(name)
        store = {"keytab": keytab} if keytab else None  # unset: KRB5_KTNAME or krb5's default keytab
        try:
            self.creds = gssapi.Credentials(name=name, usage="accept", mechs=[_KRB5], store=store)
        except (GSSError, GeneralError) as exc:
            raise ConfigError(f"Invalid value '{keytab}' for configuration sasl.kerberos.keytab: no usable key"
                              f" for {self.principal}: {exc}") from None
        self.clock_skew = clock_skew()
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gssapi")

    def new_exchange(self, client_host: str) -> GssapiExchange:
        return GssapiExchange(self, client_host)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class GssapiExchange:
    """One connection's server side; see the module docstring for the token sequence."""

    mechanism = MECHANISM

    def __init__(self, factory: GssapiMechanism, client_host: str):
        self.factory = factory
        self.client_host = client_host
        self.result: Authenticated | None = None
        self._ctx = gssapi.SecurityContext(creds=factory.creds, usage="accept")
        self._state = _ACCEPT
        self._kerberos_name = ""
        self._short_name = ""

    async def step(self, token: bytes) -> bytes:
        state, self._state = self._state, _DONE  # a failed exchange stays failed
        try:
            if state == _ACCEPT:
                return await self._run(self._accept, token)
            if state == _EMPTY:
                if token:
                    raise _Refused("the client sent data where RFC 4752 expects an empty token")
                return await self._run(self._offer)
            if state == _LAYER:
                return await self._run(self._choose, token)
            raise _Refused("a token after the exchange ended")
        except _Refused as exc:
            log.info("SASL/GSSAPI authentication of %s from %s failed: %s",
                     self._kerberos_name or "a client", self.client_host, exc)
            raise SaslAuthenticationError(FAILED) from None

    async def _run(self, fn, *args) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.factory.executor, fn, *args)
        except (GSSError, GeneralError, UnicodeError) as exc:  # UnicodeError: a name that is not UTF-8
            raise _Refused(f"GSS-API: {exc}") from None

    def _accept(self, token: bytes) -> bytes:
        out = self._ctx.step(token) or b""
        if not self._ctx.complete:
            self._state = _ACCEPT
            return out
        self._check_context()
        if out:
            self._state = _EMPTY
            return out
        return self._offer()  # no AP-REP (no mutual authentication): offer at once, as Java does

    def _check_context(self) -> None:
        ctx = self._ctx
        self._kerberos_name = str(ctx.initiator_name)
        if gssapi.RequirementFlag.anonymity in ctx.actual_flags:
            raise _Refused("anonymous tickets are not accepted")
        self._ticket_left()
        try:
            self._short_name = self.factory.short_namer.short_name(self._kerberos_name)
        except KerberosRuleError as exc:
            raise _Refused(f"sasl.kerberos.principal.to.local.rules: {exc}") from None

    def _ticket_left(self) -> int:
        """Seconds until the ticket ends; krb5 still takes it during its clock skew, Keystream does not."""
        left = self._ctx.lifetime - self.factory.clock_skew
        if left <= 0:
            raise _Refused("the ticket has expired")
        return left

    def _offer(self) -> bytes:
        self._state = _LAYER
        return self._ctx.wrap(_OFFER, False).message

    def _choose(self, token: bytes) -> bytes:
        choice = self._ctx.unwrap(token).message
        if len(choice) < 4:
            raise _Refused("the security-layer answer is shorter than 4 bytes")
        if choice[0] != NO_SECURITY_LAYER:
            raise _Refused(f"the client chose security layer {choice[0]}; only 1 (none) is offered")
        left = self._ticket_left()
        # choice[4:] is the authorization id: ignored, the ticket's client is the identity.
        self.result = Authenticated(Principal("User", self._short_name), lifetime_ms=left * 1000)
        log.info("SASL/GSSAPI: %s from %s authenticated as %s", self._kerberos_name, self.client_host,
                 self.result.principal)
        return b""
