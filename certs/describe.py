"""`keystream certs show`: what a certificate, chain, keystore .pem or CRL file contains. A private
key is only ever reported as present (and whether it is encrypted), never shown."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keystream.certs.crl import REASONS
from keystream.certs.files import CertError, read_bytes
from keystream.certs.issue import EKU_NAMES
from keystream.certs.keys import load_key

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_EKU_BY_OID = {oid: name for name, oid in EKU_NAMES.items()}
# cryptography's attribute names -> the RFC 5280 names openssl and keytool print
_KEY_USAGES = {"digital_signature": "digitalSignature", "content_commitment": "nonRepudiation",
               "key_encipherment": "keyEncipherment", "data_encipherment": "dataEncipherment",
               "key_agreement": "keyAgreement", "key_cert_sign": "keyCertSign", "crl_sign": "cRLSign"}
_REASON_NAMES = {flag: name for name, flag in REASONS.items()}


def describe(path: Path) -> dict[str, Any]:
    """A JSON-friendly summary: `certificates` (leaf first), `private_key` (None, "encrypted" or
    "unencrypted"), `key_matches_certificate` when an unencrypted key sits beside a certificate,
    and `crl` for a CRL file."""
    path = Path(path)
    data = read_bytes(path, "file")
    blocks = [(label.decode(), body) for label, body in _BLOCK.findall(data)]
    certs = _certificates(data, blocks)
    result: dict[str, Any] = {"file": str(path), "certificates": [_cert_info(c) for c in certs],
                              "private_key": _key_state(blocks), "crl": None}
    if result["private_key"] == "unencrypted" and certs:
        key_block = next(b for b in _pem_blocks(data) if b"PRIVATE KEY" in b.split(b"\n", 1)[0])
        try:
            key = load_key(key_block)
        except CertError:
            key = None  # e.g. an Ed25519 key: still reported as present, just not compared
        if key is not None:
            result["key_matches_certificate"] = _spki(key.public_key()) == _spki(certs[0].public_key())
    crl_blocks = [b for b in _pem_blocks(data) if b.startswith(b"-----BEGIN X509 CRL-----")]
    if crl_blocks:
        result["crl"] = _crl_info(x509.load_pem_x509_crl(crl_blocks[0]))
    if not certs and result["private_key"] is None and result["crl"] is None:
        raise CertError(f"{path}: no certificate, private key or CRL found")
    return result


def _pem_blocks(data: bytes) -> list[bytes]:
    return [m.group(0) for m in _BLOCK.finditer(data)]


def _certificates(data: bytes, blocks: list[tuple[str, bytes]]) -> list[x509.Certificate]:
    if any(label == "CERTIFICATE" for label, _ in blocks):
        certs_pem = b"".join(b + b"\n" for b in _pem_blocks(data) if b.startswith(b"-----BEGIN CERTIFICATE-----"))
        try:
            return x509.load_pem_x509_certificates(certs_pem)
        except ValueError as exc:
            raise CertError(f"a certificate in the file cannot be parsed: {exc}") from None
    if not blocks:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CertError("not a PEM or DER certificate file") from None
    return []


def _key_state(blocks: list[tuple[str, bytes]]) -> str | None:
    for label, body in blocks:
        if label == "ENCRYPTED PRIVATE KEY" or (label.endswith("PRIVATE KEY") and b"ENCRYPTED" in body[:200]):
            return "encrypted"
        if label.endswith("PRIVATE KEY"):
            return "unencrypted"
    return None


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _fingerprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    return cert.fingerprint(algorithm).hex(":").upper()


def _ext(cert: x509.Certificate, cls: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _key_info(public_key: Any) -> dict[str, Any]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"type": "RSA", "size": public_key.key_size}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"type": "EC", "size": public_key.key_size, "curve": public_key.curve.name}
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return {"type": type(public_key).__name__.removesuffix("PublicKey"), "size": None}
    return {"type": type(public_key).__name__, "size": None}


def _san_text(name: x509.GeneralName) -> str:
    prefix = {x509.DNSName: "DNS", x509.IPAddress: "IP", x509.UniformResourceIdentifier: "URI",
              x509.RFC822Name: "email"}.get(type(name))
    return f"{prefix}:{name.value}" if prefix else f"{type(name).__name__}:{name.value}"


def _cert_info(cert: x509.Certificate) -> dict[str, Any]:
    sans = _ext(cert, x509.SubjectAlternativeName)
    key_usage = _ext(cert, x509.KeyUsage)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    basic = _ext(cert, x509.BasicConstraints)
    usages = []
    if key_usage is not None:
        usages = [name for attr, name in _KEY_USAGES.items() if getattr(key_usage, attr)]
        if key_usage.key_agreement:
            usages += [name for attr, name in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
                       if getattr(key_usage, attr)]
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:X}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "validity": _validity(cert),
        "sans": [_san_text(n) for n in sans] if sans is not None else [],
        "fingerprints": {"sha256": _fingerprint(cert, hashes.SHA256()),
                         "sha1": _fingerprint(cert, hashes.SHA1())},  # noqa: S303 - display only
        "key": _key_info(cert.public_key()),
        "key_usage": usages,
        "extended_key_usage": [_EKU_BY_OID.get(o, o.dotted_string) for o in eku] if eku is not None else [],
        "ca": bool(basic and basic.ca),
        "self_signed": cert.issuer == cert.subject,
    }


def _validity(cert: x509.Certificate) -> str:
    now = dt.datetime.now(dt.UTC)
    if now < cert.not_valid_before_utc:
        return "not yet valid"
    return "expired" if now > cert.not_valid_after_utc else "valid"


def _crl_info(crl: x509.CertificateRevocationList) -> dict[str, Any]:
    revoked = []
    for entry in crl:
        try:
            flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            reason = _REASON_NAMES.get(flag, flag.name)
        except x509.ExtensionNotFound:
            reason = "unspecified"
        revoked.append({"serial": f"{entry.serial_number:X}",
                        "revoked_at": entry.revocation_date_utc.isoformat(), "reason": reason})
    next_update = crl.next_update_utc
    return {"issuer": crl.issuer.rfc4514_string(), "last_update": crl.last_update_utc.isoformat(),
            "next_update": next_update.isoformat() if next_update else None, "revoked": revoked}


def render(info: dict[str, Any]) -> str:
    """Human text for `keystream certs show`."""
    lines = [f"File: {info['file']}"]
    if info["private_key"]:
        lines.append(f"Contains a private key ({info['private_key']}; not shown)")
        if "key_matches_certificate" in info:
            lines.append(f"Key matches the certificate: {'yes' if info['key_matches_certificate'] else 'NO'}")
    for number, cert in enumerate(info["certificates"]):
        role = "Certificate" if number == 0 else f"Chain certificate {number}"
        key = cert["key"]
        lines += [
            "",
            f"{role}:",
            f"  Subject:      {cert['subject']}",
            f"  Issuer:       {cert['issuer']}",
            f"  Serial:       {cert['serial']}",
            f"  Not before:   {cert['not_before']}",
            f"  Not after:    {cert['not_after']} ({cert['validity']})",
            f"  SANs:         {', '.join(cert['sans']) or '(none)'}",
            f"  Key:          {key['type']}" + (f" {key['size']} bits" if key.get("size") else "")
            + (f" ({key['curve']})" if key.get("curve") else ""),
            f"  Key usage:    {', '.join(cert['key_usage']) or '(none)'}",
            f"  Extended key usage: {', '.join(cert['extended_key_usage']) or '(none)'}",
            f"  CA:           {'yes' if cert['ca'] else 'no'}",
            f"  SHA-256:      {cert['fingerprints']['sha256']}",
            f"  SHA-1:        {cert['fingerprints']['sha1']}",
        ]
    crl = info.get("crl")
    if crl:
        lines += ["", "CRL:", f"  Issuer:       {crl['issuer']}", f"  Last update:  {crl['last_update']}",
                  f"  Next update:  {crl['next_update']}", f"  Revoked:      {len(crl['revoked'])}"]
        lines += [f"    {r['serial']} at {r['revoked_at']} ({r['reason']})" for r in crl["revoked"]]
    return "\n".join(lines)
