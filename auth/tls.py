"""Server-side TLS: an SSLContext built from the broker's ssl.* properties, and its hot reload; and
the one client context Keystream's own outgoing TLS uses (broker to registry, registry to broker, CLI).

Each accepted connection starts TLS with whatever context is current, so a reload (files changed,
or SIGHUP) only affects new connections and never drops established ones. A reload that fails
keeps the old context. Nothing here logs key material or passwords; errors name the property.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from keystream.configdef import ConfigError, Password

log = logging.getLogger("keystream.tls")

# TLS 1.2 suites when ssl.cipher.suites is empty: forward secrecy (ECDHE) and AEAD only.
DEFAULT_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP"
RELOAD_POLL_S = 2.0
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"required": ssl.CERT_REQUIRED, "requested": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_FILE_PROPS = ("ssl.keystore.location", "ssl.truststore.location", "ssl.crl.location")
PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)


def files_stamp(config: Mapping[str, Any]) -> tuple:
    """What tells that an ssl.* file changed: device, inode, size and mtime of each (None if absent)."""
    stamp = []
    for prop in _FILE_PROPS:
        path = config.get(prop)
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        stamp.append(None if st is None else (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def read_config_file(config: Mapping[str, Any], prop: str, needed_by: str) -> bytes:
    """The bytes of the file `prop` names; ConfigError naming the property when unset or unreadable."""
    path = config.get(prop)
    if not path:
        raise ConfigError(f"Missing required configuration {prop}: needed by {needed_by}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"Invalid value '{path}' for configuration {prop}: cannot read it ({exc.strerror})") from None


def grpc_key_and_chain(key_pem: bytes, chain_pem: bytes, password: str | Password | None) -> tuple[bytes, bytes]:
    """(unencrypted PKCS#8 key, certificate chain) as PEM bytes, the form grpc takes instead of an
    SSLContext; the key is decrypted in memory only. ValueError says what is wrong, never with key bytes."""
    from cryptography import x509  # noqa: PLC0415  (only grpc users need it)
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    password = getattr(password, "value", password)
    try:
        key = serialization.load_pem_private_key(key_pem, password.encode() if password else None)
    except TypeError:
        raise ValueError("a key password is set but the private key is not encrypted" if password else
                         "the private key is encrypted and no key password is set") from None
    except ValueError:
        raise ValueError("no readable private key (wrong key password?)") from None
    certs = [m.group(0) for m in PEM_CERTIFICATE.finditer(chain_pem)]
    if not certs:
        raise ValueError("no certificate in it")
    # grpc would accept a mismatched pair here and then fail every handshake
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        leaf_key = x509.load_pem_x509_certificate(certs[0]).public_key().public_bytes(*spki)
    except ValueError:
        raise ValueError("the first certificate is not readable") from None
    if key.public_key().public_bytes(*spki) != leaf_key:
        raise ValueError("the private key does not match the certificate")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()), b"".join(certs)


def grpc_client_credentials(roots: bytes | None, key_pem: bytes, chain_pem: bytes, password: str | Password | None):
    """grpc channel credentials presenting a client certificate (the admin API requires one), trusting
    `roots` (else grpc's default CAs). ValueError from grpc_key_and_chain."""
    import grpc  # noqa: PLC0415  (only the admin API's clients need it)

    key, chain = grpc_key_and_chain(key_pem, chain_pem, password)
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)


def client_context(cafile: str | None, certfile: str | None = None, keyfile: str | None = None,
                   password: str | None = None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """TLS 1.2+ to a server verified against `cafile` (else the system's CAs), presenting a client
    certificate when `certfile` is given (a PEM with key and chain, or with `keyfile`). Raises OSError or
    ssl.SSLError for unreadable files; callers name their property."""
    ctx = ssl.create_default_context(cafile=cafile or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    if certfile:
        ctx.load_cert_chain(certfile, keyfile or None, password)
    return ctx


def _versions(enabled: list[str] | None) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """min/max of the enabled protocols; anything older than TLS 1.2 is ignored, never enabled."""
    prop = "ssl.enabled.protocols"
    wanted = [_VERSIONS[v] for v in (enabled or []) if v in _VERSIONS]
    ignored = [v for v in (enabled or []) if v not in _VERSIONS]
    if ignored:
        log.warning("%s: ignoring %s (Keystream never enables anything older than TLSv1.2)",
                    prop, ",".join(ignored))
    if not wanted:
        raise ConfigError(f"Invalid value '{','.join(enabled or [])}' for configuration {prop}:"
                          " enable TLSv1.2 and/or TLSv1.3")
    return min(wanted), max(wanted)


def _readable(config: Mapping[str, Any], prop: str) -> str:
    read_config_file(config, prop, "an SSL listener")
    return config[prop]


def _no_password() -> bytes:
    raise ConfigError("the private key in ssl.keystore.location is encrypted: set ssl.key.password")


def _keystore_problem(path: str, exc: ssl.SSLError, have_password: bool) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return "the private key does not match the certificate"
    with open(path, "rb") as f:
        encrypted = b"ENCRYPTED" in f.read()
    if encrypted and have_password:
        return "cannot decrypt the private key: wrong ssl.key.password"
    return f"not a PEM file with a private key and certificate chain ({exc.reason or 'unreadable'})"


class _DirectSSLObject(ssl.SSLObject):
    """An SSLObject whose read, write and pending are the C methods themselves.

    The event loop's SSL protocol (uvloop's and asyncio's) looks these three up once per connection
    and then calls them for every TLS record, and ssl.SSLObject's own are one-line Python wrappers
    around the same C methods. librdkafka sends part of a 1 KiB-record produce batch as ~1 KiB and
    ~10-byte TLS records (one per buffer segment: ~0.6 TLS records per Kafka record measured), so the
    wrappers ran for every one of them. Server-side read cost per TLS record, uvloop's read loop
    replayed over memory BIOs (TLS 1.3, AES-256-GCM): 1.48 -> 1.39 us (median of 9).
    """

    @classmethod
    def _create(cls, *args, **kwargs):
        obj = super()._create(*args, **kwargs)
        obj.read, obj.write, obj.pending = obj._sslobj.read, obj._sslobj.write, obj._sslobj.pending
        return obj


def build_server_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    """A server SSLContext from the ssl.* properties; raises ConfigError naming the property."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.sslobject_class = _DirectSSLObject
    ctx.minimum_version, ctx.maximum_version = _versions(config.get("ssl.enabled.protocols"))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    suites = config.get("ssl.cipher.suites")
    try:
        ctx.set_ciphers(":".join(suites) if suites else DEFAULT_TLS12_CIPHERS)
    except ssl.SSLError:
        raise ConfigError(f"Invalid value '{','.join(suites or [])}' for configuration ssl.cipher.suites:"
                          " no usable cipher suite (OpenSSL names, e.g. ECDHE-ECDSA-AES128-GCM-SHA256)") from None

    keystore = _readable(config, "ssl.keystore.location")
    password = config.get("ssl.key.password")
    try:
        ctx.load_cert_chain(keystore, password=getattr(password, "value", password) if password is not None
                            else _no_password)
    except ConfigError:
        raise
    except ssl.SSLError as exc:
        why = _keystore_problem(keystore, exc, password is not None)
        raise ConfigError(f"Invalid value '{keystore}' for configuration ssl.keystore.location: {why}") from None

    client_auth = config.get("ssl.client.auth", "required")
    ctx.verify_mode = _CLIENT_AUTH[client_auth]
    truststore = config.get("ssl.truststore.location")
    if client_auth != "none" or truststore:
        _load_verify(ctx, config, "ssl.truststore.location", "PEM CA bundle")
    if config.get("ssl.crl.location"):
        _load_verify(ctx, config, "ssl.crl.location", "PEM CRL")
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def _load_verify(ctx: ssl.SSLContext, config: Mapping[str, Any], prop: str, what: str) -> None:
    """Adds the PEM file named by `prop` (CA certificates or CRLs) to the context's verify store."""
    path = _readable(config, prop)
    try:
        ctx.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise ConfigError(f"Invalid value '{path}' for configuration {prop}: not a {what} ({exc.reason})") from None


def has_client_auth_eku(cert_der: bytes) -> bool:
    """OpenSSL's purpose check rejects a client certificate whose EKU lacks clientAuth; this also
    rejects one with no EKU at all, so only certificates issued for clients authenticate."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: PLC0415

    try:
        eku = x509.load_der_x509_certificate(cert_der).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku.value


class TlsContexts:
    """The current server contexts plus what they were built from, rebuilt when the files change.

    `client_auths` maps listener names to their ssl.client.auth (SASL_SSL listeners need no client
    certificate by default); one context is built per distinct value."""

    def __init__(self, config: Mapping[str, Any], client_auths: Mapping[str, str] | None = None):
        self.config = config
        self.client_auths = dict(client_auths or {})
        self._stamp = files_stamp(self.config)
        self._contexts = self._build()
        self._task: asyncio.Task | None = None

    def _build(self) -> dict[str | None, ssl.SSLContext]:
        modes = set(self.client_auths.values()) or {None}
        return {mode: build_server_context(self.config if mode is None else
                                           ChainMap({"ssl.client.auth": mode}, self.config)) for mode in modes}

    @property
    def current(self) -> ssl.SSLContext:
        """The context of a broker whose TLS listeners all share one ssl.client.auth (any one otherwise)."""
        return next(iter(self._contexts.values()))

    def context(self, listener: str) -> ssl.SSLContext:
        """The current context for new connections on `listener`."""
        return self._contexts[self.client_auths.get(listener)]

    def reload(self, reason: str) -> bool:
        """Builds a fresh context for new connections; on failure keeps the old one and logs why."""
        self._stamp = files_stamp(self.config)
        try:
            contexts = self._build()
        except ConfigError as exc:
            log.error("TLS reload (%s) failed, keeping the previous certificates: %s", reason, exc)
            return False
        self._contexts = contexts
        log.info("TLS reloaded (%s): new connections use the new certificate, CA bundle and CRL", reason)
        return True

    def start_watching(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop_watching(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL_S)
            if files_stamp(self.config) != self._stamp:
                self.reload("files changed")
