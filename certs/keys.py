"""Key generation and PKCS#8 serialisation: EC P-256 by default, RSA-3072 when asked."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keystream.certs.files import CertError

KEY_TYPES = ("ec", "rsa")
RSA_BITS = 3072

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate_key(key_type: str) -> PrivateKey:
    """A fresh key; RSA-3072 matches P-256's ~128-bit security level."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise CertError(f"unknown key type {key_type!r} (choose one of: {', '.join(KEY_TYPES)})")


def key_pem(key: PrivateKey, password: str | None = None) -> bytes:
    """PKCS#8 PEM (what Kafka's PEM keystore and Python's ssl both read), encrypted if a password is
    given."""
    if password is not None and not password:
        raise CertError("the key password is empty")
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_key(data: bytes, password: str | None = None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        # The library's message never contains key bytes; keep only its gist.
        raise CertError(f"cannot load the private key: {str(exc).splitlines()[0]}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertError("unsupported private key type (EC or RSA expected)")
    return key

