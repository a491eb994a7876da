"""Who calls the admin API: TLS material for grpc from the broker's ssl.* files, and the principal
of a call's client certificate, mapped as the broker's SSL listeners map it.

grpc takes PEM bytes, not an SSLContext, so the key and chain of `ssl.keystore.location` and the
CAs of `ssl.truststore.location` are read here (an encrypted key is decrypted in memory with
`ssl.key.password`). Client certificates are required (mTLS): a client without one fails the
handshake. grpc's handshake checks the chain; what the broker's own TLS contexts also check is
repeated per call: the certificate must carry the clientAuth extended key usage and must not be
listed in `ssl.crl.location`. The files are watched like the broker's: a changed certificate, CA
bundle or CRL applies to new connections, and a changed CRL also to the next call on an open one
(within RECHECK_S); a reload that fails keeps the previous material.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import grpc
from cryptography import x509

from keystream.auth.principal import Principal, Session
from keystream.auth.ssl_principal import CertificateNameError, NoMatchingRule, SslPrincipalMapper, subject_dn
from keystream.auth.static_groups import parse_static_groups
from keystream.auth.tls import (
    PEM_CERTIFICATE,
    files_stamp,
    grpc_key_and_chain,
    has_client_auth_eku,
    read_config_file,
)
from keystream.configdef import ConfigError

log = logging.getLogger("keystream.admin")

LISTENER = "ADMIN"
_CACHE = 256  # principals of recently seen certificates
RECHECK_S = 1.0  # calls look for a changed CRL at most this often


class Unauthenticated(Exception):
    """The call's certificate does not authenticate anyone (no clientAuth EKU, revoked, unmappable)."""


def _read(config: Mapping[str, Any], prop: str) -> bytes:
    return read_config_file(config, prop, "admin.listener")


def _key_and_chain(config: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(unencrypted PKCS#8 key PEM, certificate chain PEM) from ssl.keystore.location."""
    pem = _read(config, "ssl.keystore.location")
    try:
        return grpc_key_and_chain(pem, pem, config.get("ssl.key.password"))
    except ValueError as exc:
        raise ConfigError(f"Invalid value '{config.get('ssl.keystore.location')}' for configuration"
                          f" ssl.keystore.location: {exc}") from None


class AdminTls:
    """grpc server credentials over the broker's ssl.* files, reloaded when they change, plus the
    per-call checks (EKU, CRL) and the certificate → principal mapping."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.mapper = SslPrincipalMapper(config.get("ssl.principal.mapping.rules") or "DEFAULT")
        self.static_groups = parse_static_groups(config.get("principal.groups"))
        self._lock = threading.Lock()
        self._stamp = self._crl_stamp = files_stamp(self.config)  # what the server material / CRLs came from
        self._checked = time.monotonic()
        self._server = self._load()
        self._crls = self._load_crls()
        self._principals: OrderedDict[bytes, Principal] = OrderedDict()

    # ------------------------------------------------------------------ credentials
    def _load(self) -> grpc.ServerCertificateConfiguration:
        key, chain = _key_and_chain(self.config)
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=self._roots())

    def _roots(self) -> bytes:
        roots = _read(self.config, "ssl.truststore.location")
        if not PEM_CERTIFICATE.search(roots):
            raise ConfigError(f"Invalid value '{self.config.get('ssl.truststore.location')}' for configuration"
                              " ssl.truststore.location: not a PEM CA bundle")
        return roots

    def _load_crls(self) -> list[x509.CertificateRevocationList]:
        """The CRLs of ssl.crl.location (none when unset), each checked against the truststore CA that signed it."""
        if not self.config.get("ssl.crl.location"):
            return []
        pem, roots = _read(self.config, "ssl.crl.location"), self._roots()
        where = f"Invalid value '{self.config.get('ssl.crl.location')}' for configuration ssl.crl.location"
        blocks = re.findall(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", pem, re.S)
        if not blocks:
            raise ConfigError(f"{where}: not a PEM CRL")
        cas = [x509.load_pem_x509_certificate(m.group(0)) for m in PEM_CERTIFICATE.finditer(roots)]
        crls = []
        for block in blocks:
            crl = x509.load_pem_x509_crl(block)
            if not any(ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key()) for ca in cas):
                raise ConfigError(f"{where}: a CRL not signed by a CA of ssl.truststore.location")
            crls.append(crl)
        return crls

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._server, self._fetch, require_client_authentication=True)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc asks before each new handshake: new material when the files changed, else None."""
        stamp = files_stamp(self.config)
        if stamp == self._stamp:
            return None
        with self._lock:
            self._stamp = stamp
            try:
                server, crls = self._load(), self._load_crls()
            except (ConfigError, ValueError) as exc:
                log.error("admin TLS reload failed, keeping the previous certificates: %s", exc)
                return None
            self._server, self._crl_stamp = server, stamp
            self._use_crls(crls)
        log.info("admin TLS reloaded: new connections use the new certificate, CA bundle and CRL")
        return server

    def _use_crls(self, crls: list[x509.CertificateRevocationList]) -> None:
        # CRLs first: session() fills the cache it read before the CRLs, so no verdict of old CRLs survives
        self._crls = crls
        self._principals = OrderedDict()

    def _recheck_crls(self) -> None:
        """grpc only calls _fetch before a handshake, so a revocation must also reach open connections:
        at most once every RECHECK_S, changed files reload the CRLs and forget the checked certificates."""
        now = time.monotonic()
        if now - self._checked < RECHECK_S:
            return
        self._checked = now
        stamp = files_stamp(self.config)
        if stamp == self._crl_stamp:
            return
        with self._lock:
            self._crl_stamp = stamp
            try:
                crls = self._load_crls()
            except (ConfigError, ValueError) as exc:
                log.error("admin CRL reload failed, keeping the previous CRLs: %s", exc)
                return
            self._use_crls(crls)
        log.info("admin TLS: CRL reloaded; calls on open connections are checked against it")

    # ------------------------------------------------------------------ callers
    def session(self, context: grpc.aio.ServicerContext) -> Session:
        """The Session of the call's client certificate; Unauthenticated when it authenticates no one."""
        auth = context.auth_context() or {}
        certs = auth.get("x509_pem_cert")
        if not certs:  # grpc requires one at the handshake; never trust a call without it
            raise Unauthenticated("no client certificate")
        pem = certs[0]
        self._recheck_crls()
        cache = self._principals
        principal = cache.get(pem)
        if principal is None:
            principal = self._principal(pem)
            cache[pem] = principal
            while len(cache) > _CACHE:
                cache.popitem(last=False)
        return Session(principal, _host(context.peer()), LISTENER, "SSL", self.static_groups.get(principal, ()))

    def _principal(self, pem: bytes) -> Principal:
        try:
            der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, UnicodeDecodeError):
            raise Unauthenticated("unreadable client certificate") from None
        if not has_client_auth_eku(der):
            raise Unauthenticated("client certificate has no clientAuth extended key usage")
        for crl in self._crls:
            if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(cert.serial_number):
                raise Unauthenticated("client certificate is revoked")
        try:
            return Principal("User", self.mapper.name(subject_dn(der)))
        except (CertificateNameError, NoMatchingRule) as exc:
            raise Unauthenticated(f"client certificate subject not mapped: {exc}") from None


def _host(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' / 'ipv6:[::1]:5000' → the address, as ACL host fields name it."""
    kind, _, rest = (peer or "").partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return rest or "unknown"
