"""Creating the dev CA: a self-signed certificate for keyCertSign and cRLSign, and an empty CRL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from keystream.certs.crl import write_crl
from keystream.certs.files import PRIVATE, CertError, locked, make_dir, write_atomic
from keystream.certs.keys import generate_key, key_pem
from keystream.certs.store import BACKDATE, CA, CA_CERT, CA_KEY, new_index, now


def init_ca(ca_dir: Path, *, key_type: str = "ec", common_name: str = "Keystream dev CA",
            days: int = 3650, force: bool = False) -> CA:
    """Create a CA in `ca_dir`; refuses to replace an existing one (its certificates would stop
    verifying) unless `force`."""
    ca_dir = Path(ca_dir)
    if days < 1:
        raise CertError("--days must be at least 1")
    if not common_name.strip():
        raise CertError("the CA common name is empty")
    if not force and any((ca_dir / n).exists() for n in (CA_CERT, CA_KEY)):
        raise CertError(f"a CA already exists in {ca_dir} (use --force to replace it)")
    key = generate_key(key_type)
    make_dir(ca_dir, private=True)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    start = now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = CA(ca_dir, cert, key)
    with locked(ca_dir):
        write_atomic(ca.key, key_pem(key), mode=PRIVATE)
        write_atomic(ca.cert, cert.public_bytes(Encoding.PEM))
        write_crl(ca, new_index())  # also writes the index
    return ca
