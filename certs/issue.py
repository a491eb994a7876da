"""Issuing leaf certificates for brokers (serverAuth) and clients (clientAuth) from the dev CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from keystream.certs.files import PRIVATE, CertError, make_dir, write_atomic
from keystream.certs.keys import PrivateKey, generate_key, key_pem
from keystream.certs.store import BACKDATE, CA, load_ca, now, record_issued

# A name becomes three file names: no separators, no leading dot, nothing a shell would mangle.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

EKU_NAMES = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}


@dataclass(frozen=True)
class Issued:
    """Paths of what `issue` wrote: `cert` (leaf + CA chain), `key` (PKCS#8), `pem` (key + chain,
    Kafka's `ssl.keystore.type=PEM` keystore), and the certificate's serial number."""

    cert: Path
    key: Path
    pem: Path
    serial: int


def parse_sans(values: Iterable[str]) -> list[x509.GeneralName]:
    """`DNS:host`, `IP:1.2.3.4`/`IP:::1`, `URI:...`, `email:...`; each item may itself be a
    comma-separated list, as on the command line (`--san DNS:a,IP:127.0.0.1`)."""
    names: list[x509.GeneralName] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            kind, sep, text = item.partition(":")
            kind = kind.strip().lower()
            text = text.strip()
            if not sep or not text:
                raise CertError(f"bad SAN {item!r}: expected DNS:name, IP:address, URI:uri or email:addr")
            names.append(_san(kind, text, item))
    unique: list[x509.GeneralName] = []
    for name in names:
        if name not in unique:
            unique.append(name)
    return unique


def _san(kind: str, text: str, item: str) -> x509.GeneralName:
    if kind == "dns":
        if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?",
                            text) or len(text) > 253:
            raise CertError(f"bad SAN {item!r}: not a DNS name")
        return x509.DNSName(text.lower())
    if kind in ("ip", "ip address"):
        try:
            return x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            raise CertError(f"bad SAN {item!r}: not an IP address") from None
    if kind == "uri":
        return x509.UniformResourceIdentifier(text)
    if kind == "email":
        if "@" not in text:
            raise CertError(f"bad SAN {item!r}: not an email address")
        return x509.RFC822Name(text)
    raise CertError(f"bad SAN {item!r}: type must be DNS, IP, URI or email")


def _eku(values: Iterable[str | ObjectIdentifier]) -> list[ObjectIdentifier]:
    result: list[ObjectIdentifier] = []
    for value in values:
        if isinstance(value, ObjectIdentifier):
            result.append(value)
        elif value in EKU_NAMES:
            result.append(EKU_NAMES[value])
        elif re.fullmatch(r"\d+(\.\d+)+", value):
            result.append(ObjectIdentifier(value))
        else:
            raise CertError(f"unknown extended key usage {value!r} (a name like serverAuth or a dotted OID)")
    return result


def _subject(common_name: str, organization: str | None, unit: str | None) -> x509.Name:
    """O, OU, CN in that order, so the RFC 2253 form Kafka uses for principals reads CN=..,OU=..,O=.."""
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    try:
        return x509.Name(attrs)
    except ValueError as exc:
        raise CertError(f"bad subject: {exc}") from None


def issue(ca_dir: Path, name: str, *, out_dir: Path | None = None, server: bool = False,
          client: bool = False, common_name: str | None = None, organization: str | None = None,
          organizational_unit: str | None = None, sans: Iterable[str] = (), days: int = 825,
          key_type: str = "ec", not_before: dt.datetime | None = None,
          not_after: dt.datetime | None = None, key_password: str | None = None,
          extended_key_usages: Iterable[str | ObjectIdentifier] | None = None,
          force: bool = False) -> Issued:
    """Issue `<name>.crt/.key/.pem` into `out_dir` (default: the CA directory). `not_before` /
    `not_after` override `days` (tests use them for expired and future certificates);
    `extended_key_usages` replaces the EKUs `server`/`client` would set. Existing files are kept
    unless `force` (rotation replaces each file atomically)."""
    if not NAME_RE.fullmatch(name):
        raise CertError(f"bad name {name!r}: use letters, digits, '.', '_' and '-' (it names the files)")
    ekus = _eku(extended_key_usages) if extended_key_usages is not None else (
        ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []))
    if not ekus:
        raise CertError("say what the certificate is for: --server, --client or both")
    ca = load_ca(Path(ca_dir))
    out = Path(out_dir) if out_dir is not None else ca.dir
    paths = Issued(out / f"{name}.crt", out / f"{name}.key", out / f"{name}.pem", 0)
    existing = [str(p) for p in (paths.cert, paths.key, paths.pem) if p.exists()]
    if existing and not force:
        raise CertError(f"{', '.join(existing)} already exist(s) (use --force to replace)")
    if days < 1:
        raise CertError("--days must be at least 1")
    not_before, not_after = _utc(not_before), _utc(not_after)
    start = not_before or now() - BACKDATE
    if not_before is None and not_after is not None:
        start = min(start, not_after - dt.timedelta(days=days))  # an expired cert still has a span
    end = not_after or start + dt.timedelta(days=days)
    if end <= start:
        raise CertError("the certificate would expire before it becomes valid")
    key = generate_key(key_type)
    cert = _build(ca, key, _subject(common_name or name, organization, organizational_unit),
                  parse_sans(sans), ekus, start, end)
    make_dir(out)
    chain = cert.public_bytes(Encoding.PEM) + ca.certificate.public_bytes(Encoding.PEM)
    private = key_pem(key, key_password)
    write_atomic(paths.key, private, mode=PRIVATE)
    write_atomic(paths.pem, private + chain, mode=PRIVATE)
    write_atomic(paths.cert, chain)
    record_issued(ca, cert, name)
    return Issued(paths.cert, paths.key, paths.pem, cert.serial_number)


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    """Naive datetimes mean UTC, as in cryptography's builders."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=dt.UTC)


def _build(ca: CA, key: PrivateKey, subject: x509.Name, sans: list[x509.GeneralName], ekus: list[ObjectIdentifier],
           start: dt.datetime, end: dt.datetime) -> x509.Certificate:
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=isinstance(key, rsa.RSAPrivateKey),  # RSA key exchange (TLS 1.2)
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())
