"""Revocation: the CA's CRL is rebuilt whole from its index on every change and replaced atomically,
so a broker checking `ssl.crl.location` always sees one complete, signed list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from keystream.certs.files import CertError, locked, read_bytes, write_atomic
from keystream.certs.store import CA, load_ca, now, read_index, serial_hex, write_index

NEXT_UPDATE = dt.timedelta(days=7)

# RFC 5280 reason codes by their ASN.1 names; removeFromCRL only makes sense in delta CRLs.
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def parse_reason(text: str) -> str:
    """Accept `keyCompromise`, `key_compromise`, `key-compromise`; return the canonical name."""
    wanted = text.replace("_", "").replace("-", "").lower()
    for name in REASONS:
        if name.lower() == wanted:
            return name
    raise CertError(f"unknown revocation reason {text!r} (choose one of: {', '.join(REASONS)})")


def write_crl(ca: CA, index: dict[str, Any]) -> Path:
    """Sign a full CRL of every revoked serial with a new CRL number; the caller holds the lock."""
    index["crl_number"] = int(index.get("crl_number", 0)) + 1
    issued_at = now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(issued_at)
        .next_update(issued_at + NEXT_UPDATE)
        .add_extension(x509.CRLNumber(index["crl_number"]), critical=False)
    )
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    for serial, entry in sorted(index["revoked"].items()):
        revoked = (x509.RevokedCertificateBuilder()
                   .serial_number(int(serial, 16))
                   .revocation_date(dt.datetime.fromisoformat(entry["revoked_at"])))
        if entry["reason"] != "unspecified":  # RFC 5280 5.3.1: omit rather than say unspecified
            revoked = revoked.add_extension(x509.CRLReason(REASONS[entry["reason"]]), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    crl = builder.sign(ca.private_key, hashes.SHA256())
    write_atomic(ca.crl, crl.public_bytes(Encoding.PEM))
    write_index(ca, index)
    return ca.crl


def revoke(ca_dir: Path, cert_path: Path, reason: str = "unspecified") -> Path:
    """Revoke the first certificate in `cert_path` (a .crt, chain or .pem); it must have been signed
    by this CA. Revoking twice keeps the first date and reason. Returns the CRL path."""
    reason = parse_reason(reason)
    ca = load_ca(Path(ca_dir))
    data = read_bytes(Path(cert_path), "certificate")
    try:
        cert = x509.load_pem_x509_certificates(data)[0]
    except ValueError:
        raise CertError(f"{cert_path} holds no PEM certificate") from None
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertError(f"{cert_path} was not issued by the CA in {ca.dir}") from exc
    with locked(ca.dir):
        index = read_index(ca)
        index["revoked"].setdefault(serial_hex(cert.serial_number), {
            "reason": reason,
            "revoked_at": now().isoformat(),
            "subject": cert.subject.rfc4514_string(),
        })
        return write_crl(ca, index)
