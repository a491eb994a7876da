"""Certificate rotation: new certificate/CRL files are picked up on SIGHUP or when the files change,
for new connections only; an established connection keeps working; a bad file keeps the old TLS."""

from __future__ import annotations

import os
import signal

import pytest
from cryptography import x509

from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only


def _log(b) -> str:
    return b.log_path.read_text(encoding="utf-8", errors="replace")


def _server_cn(b) -> str:
    with b.tls.wire(b.bootstrap) as c:
        der = c.sock.getpeercert(binary_form=True)
        assert 18 in c.api_versions(3)
    return x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


def _refused(b, identity) -> bool:
    try:
        with b.tls.wire(b.bootstrap, identity, timeout=5) as c:
            c.api_versions(3)
    except Exception:  # noqa: BLE001  (SSLError, reset, EOF: any refusal will do)
        return True
    return False


def _reissue_broker(b, cn: str) -> None:
    from keystream.certs import issue  # noqa: PLC0415

    issue(b.tls.ca_dir, "broker", out_dir=b.tls.dir, server=True, common_name=cn,
          sans=("DNS:localhost", f"IP:{b.host}"), force=True)


def test_sighup_reload(broker_factory):
    b = broker_factory(tls=True, start=False)
    bob = b.tls.client("bob")
    b.start()
    assert _server_cn(b) == "broker"
    established = b.tls.wire(b.bootstrap)
    assert 18 in established.api_versions(3)
    assert not _refused(b, bob)

    _reissue_broker(b, "broker-v2")
    b.tls.revoke(bob)
    mark = len(_log(b))
    os.kill(b.pid, signal.SIGHUP)
    wait_for(lambda: "TLS reloaded" in _log(b)[mark:], 10, message="the reload log line")
    assert _server_cn(b) == "broker-v2", "new connections see the new certificate"
    assert _refused(b, bob), "a client revoked by the new CRL is refused"
    wait_for(lambda: "certificate revoked" in _log(b)[mark:], 10, message="a 'certificate revoked' log line")
    assert 18 in established.api_versions(3), "the established connection keeps working"

    # A broken keystore: the reload fails, the old certificate stays in use.
    pem = b.tls.broker_cert.pem
    good = pem.read_bytes()
    pem.write_text("not a certificate\n")
    mark = len(_log(b))
    os.kill(b.pid, signal.SIGHUP)
    wait_for(lambda: "TLS reload (SIGHUP) failed" in _log(b)[mark:], 10, message="the failed-reload log line")
    assert "ssl.keystore.location" in _log(b)[mark:]
    assert _server_cn(b) == "broker-v2"
    assert 18 in established.api_versions(3)
    pem.write_bytes(good)

    # Without a signal: changed files are noticed by the watcher.
    _reissue_broker(b, "broker-v3")
    wait_for(lambda: _server_cn(b) == "broker-v3", 20, message="the watcher to load broker-v3")
    assert 18 in established.api_versions(3)
    established.close()
    text = _log(b)
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
