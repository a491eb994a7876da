"""The admin API's TLS material (broker/admin/auth.py): a reload of mismatched files keeps what works."""

from __future__ import annotations

import logging
import os

from keystream.broker.admin.auth import AdminTls
from keystream.certs import init_ca, issue


def _replace(path, data: bytes) -> None:
    """A new file (new inode) in its place, as a deploy tool does: a change the stamp always sees."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def test_mismatched_key_is_not_loaded(tmp_path, caplog):
    ca = init_ca(tmp_path / "ca")
    broker = issue(tmp_path / "ca", "broker", out_dir=tmp_path, server=True, sans=("IP:127.0.0.1",))
    other = issue(tmp_path / "ca", "other", out_dir=tmp_path, client=True)
    keystore = tmp_path / "keystore.pem"
    keystore.write_bytes(broker.pem.read_bytes())
    tls = AdminTls({"ssl.keystore.location": str(keystore), "ssl.truststore.location": str(ca.cert),
                    "ssl.crl.location": str(ca.crl)})
    _replace(keystore, other.key.read_bytes() + broker.cert.read_bytes())
    with caplog.at_level(logging.ERROR, "keystream.admin"):
        assert tls._fetch() is None  # grpc's contract: None keeps serving the current certificate
    assert "ssl.keystore.location: the private key does not match the certificate" in caplog.text
    _replace(keystore, other.pem.read_bytes())  # a consistent pair is taken
    assert tls._fetch() is not None
