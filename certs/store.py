"""Where a CA lives on disk: the CA object, loading it, and its index of issued/revoked serials."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from keystream.certs.files import CertError, locked, read_bytes, write_atomic
from keystream.certs.keys import PrivateKey, load_key

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CRL = "crl.pem"
INDEX = "index.json"
DEFAULT_CA_DIR = Path(".keystream") / "ca"
BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between hosts


@dataclass(frozen=True)
class CA:
    """A loaded CA. `cert`, `key`, `crl` are paths (use `cert` as the truststore); the objects are
    kept out of repr so a stray print never shows key material."""

    dir: Path
    certificate: x509.Certificate = field(repr=False)
    private_key: PrivateKey = field(repr=False)

    @property
    def cert(self) -> Path:
        return self.dir / CA_CERT

    @property
    def key(self) -> Path:
        return self.dir / CA_KEY

    @property
    def crl(self) -> Path:
        return self.dir / CRL

    @property
    def index(self) -> Path:
        return self.dir / INDEX


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def load_ca(ca_dir: Path) -> CA:
    ca_dir = Path(ca_dir)
    if not (ca_dir / CA_CERT).exists():
        raise CertError(f"no CA in {ca_dir} (run `keystream certs init --dir {ca_dir}` first)")
    try:
        cert = x509.load_pem_x509_certificate(read_bytes(ca_dir / CA_CERT, "CA certificate"))
    except ValueError:
        raise CertError(f"{ca_dir / CA_CERT} is not a PEM certificate") from None
    key = load_key(read_bytes(ca_dir / CA_KEY, "CA key"))
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise CertError(f"{ca_dir / CA_KEY} does not match {ca_dir / CA_CERT}")
    return CA(ca_dir, cert, key)


def new_index() -> dict[str, Any]:
    return {"version": 1, "crl_number": 0, "issued": {}, "revoked": {}}


def read_index(ca: CA) -> dict[str, Any]:
    """The serial index; a CA made by another tool gets an empty one on first use."""
    if not ca.index.exists():
        return new_index()
    try:
        index = json.loads(read_bytes(ca.index, "CA index"))
    except ValueError:
        raise CertError(f"{ca.index} is corrupt (not JSON)") from None
    if not isinstance(index, dict) or index.get("version") != 1:
        raise CertError(f"{ca.index} has an unknown format")
    return index


def write_index(ca: CA, index: dict[str, Any]) -> None:
    write_atomic(ca.index, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())


def serial_hex(serial: int) -> str:
    return f"{serial:X}"


def record_issued(ca: CA, cert: x509.Certificate, name: str) -> None:
    with locked(ca.dir):
        index = read_index(ca)
        index["issued"][serial_hex(cert.serial_number)] = {
            "name": name,
            "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        }
        write_index(ca, index)

