"""mTLS listener attacks: bad client certificates, old protocols, weak ciphers, wrong protocol on a
port, stalled handshakes. Each refused handshake must: not get a request read, leave one clear
broker log line without secrets, and not disturb other clients."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

import pytest

from keystream.certs import init_ca, issue
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import WireClient

pytestmark = pytest.mark.keystream_only
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def tls_broker(module_broker_factory, tmp_path_factory):
    b = module_broker_factory(tls=True, start=False, **{"ssl.handshake.timeout.ms": 1500})
    t = b.tls
    other_dir = tmp_path_factory.mktemp("other-ca")
    init_ca(other_dir / "ca")
    b.bad = {
        "another CA": issue(other_dir / "ca", "mallory", out_dir=other_dir, client=True),
        "expired": t.client("expired", not_before=NOW - dt.timedelta(days=10), not_after=NOW - dt.timedelta(days=1)),
        "not yet valid": t.client("future", not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9)),
        "revoked": t.client("revoked"),
        "serverAuth only": t.client("srvonly", client=False, server=True),
        "codeSigning only": t.client("codesign", client=False, extended_key_usages=["codeSigning"]),
    }
    t.revoke(b.bad["revoked"])
    return b.start()


def _log(b) -> str:
    return b.log_path.read_text(encoding="utf-8", errors="replace")


def _served(b, identity=None) -> bool:
    with b.tls.wire(b.bootstrap, identity) as c:
        return 18 in c.api_versions(3)


def _new_refusals(b, before: str, needle: str, timeout: float = 10.0) -> str:
    """Waits for a new 'refused' log line containing `needle`; returns it."""
    def found():
        for line in _log(b)[len(before):].splitlines():
            if "handshake" in line and "refused" in line and needle in line:
                return line
        return None
    return wait_for(found, timeout, message=lambda: f"a refused-handshake log line with {needle!r}")


def _assert_no_secrets(b) -> None:
    text = _log(b)
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text


def _attempt(b, context) -> str:
    """Handshake + one ApiVersions request; returns how it failed (it must fail)."""
    try:
        with b.tls.wire(b.bootstrap, context=context, timeout=5) as c:
            # TLS 1.3: the client finishes before the server checks its certificate; the refusal
            # arrives as an alert or EOF on the first read, and no response ever comes.
            c.api_versions(3)
    except Exception as exc:  # noqa: BLE001  (SSLError, reset, EOF, timeout: any refusal will do)
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the broker answered a request on a refused connection")


@pytest.mark.parametrize(("case", "reason"), [
    ("another CA", "self-signed certificate in certificate chain"),  # the chain ends in its CA
    ("expired", "certificate has expired"),
    ("not yet valid", "certificate is not yet valid"),
    ("revoked", "certificate revoked"),
    ("serverAuth only", "unsuitable certificate purpose"),
    ("codeSigning only", "unsuitable certificate purpose"),
])
def test_bad_client_certificate_refused(tls_broker, case, reason):
    b = tls_broker
    before = _log(b)
    ctx = b.tls.ssl_context(b.bad[case])
    _attempt(b, ctx)
    line = _new_refusals(b, before, reason)
    assert "authenticated" not in _log(b)[len(before):].replace(line, ""), "no session for a refused client"
    assert _served(b), "other clients are still served"
    _assert_no_secrets(b)
    assert not b.tracebacks()


def test_no_client_certificate_refused(tls_broker):
    b = tls_broker
    before = _log(b)
    _attempt(b, b.tls.ssl_context(certificate=False))
    _new_refusals(b, before, "peer did not return a certificate")
    assert _served(b)


def test_key_not_matching_certificate_cannot_even_be_loaded(tls_broker):
    """Python's ssl (OpenSSL's SSL_CTX_check_private_key) refuses to load a key that does not match
    the certificate, so a client cannot offer one; TLS would fail anyway at CertificateVerify,
    which the server checks against the certificate's public key."""
    t = tls_broker.tls
    ctx = ssl.create_default_context(cafile=str(t.ca_cert))
    with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH|key values mismatch"):
        ctx.load_cert_chain(str(tls_broker.bad["expired"].cert), str(t.admin.key))


def _old_protocol_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 hides TLS 1.0/1.1 above security level 0
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(tls_broker, version):
    """The client is forced to exactly one old version (at OpenSSL security level 0, so it can
    offer it); if even that is impossible locally, the test fails saying so rather than skipping."""
    version = getattr(ssl.TLSVersion, version)
    b = tls_broker
    before = _log(b)
    ctx = _old_protocol_context(version)
    with socket.create_connection((b.host, b.port), timeout=5) as raw:
        try:
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except ssl.SSLError as exc:
            error = str(exc)
        else:
            raise AssertionError(f"{version.name} handshake succeeded")
    if "NO_PROTOCOLS_AVAILABLE" in error.upper() or "no protocols available" in error:
        pytest.fail(f"the local OpenSSL cannot offer {version.name} at all ({error}); not a broker test")
    _new_refusals(b, before, "unsupported protocol")
    assert _served(b)


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256",
                                    "AES256-SHA", "DHE-RSA-AES128-GCM-SHA256"])
def test_weak_tls12_ciphers_refused(tls_broker, cipher):
    b = tls_broker
    before = _log(b)
    ctx = b.tls.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    with pytest.raises(ssl.SSLError), b.tls.wire(b.bootstrap, context=ctx, timeout=5):
        pass
    _new_refusals(b, before, "no shared cipher")
    assert _served(b)


def test_tls12_with_a_strong_suite_works(tls_broker):
    ctx = tls_broker.tls.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_broker.tls.wire(tls_broker.bootstrap, context=ctx) as c:
        assert c.sock.version() == "TLSv1.2"
        assert "GCM" in c.sock.cipher()[0] or "CHACHA20" in c.sock.cipher()[0]
        assert 18 in c.api_versions(3)


def test_plaintext_to_tls_port_closed_cleanly(tls_broker):
    b = tls_broker
    before = _log(b)
    with WireClient(b.bootstrap, timeout=5) as c:
        c.send_frame(b"\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")  # an ApiVersions v0 header
        assert c.closed_within(5), "a Kafka request on a TLS port must get the connection closed"
        assert not c.unexpected or c.unexpected[0] == 0x15, "at most a TLS alert, never a Kafka response"
    _new_refusals(b, before, "wrong version number")  # OpenSSL's reading of a non-TLS record
    assert _served(b)
    assert not b.tracebacks()


def test_tls_to_plaintext_port_closed_cleanly(module_broker_factory, tls_broker):
    plain = module_broker_factory()
    before = _log(plain)
    ctx = tls_broker.tls.ssl_context()
    with pytest.raises((ssl.SSLError, OSError)), socket.create_connection((plain.host, plain.port), timeout=5) as raw:
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    wait_for(lambda: "TLS handshake on PLAINTEXT listener" in _log(plain)[len(before):], 10,
             message="a log line saying TLS reached the PLAINTEXT listener")
    with WireClient(plain.bootstrap) as c:
        assert 18 in c.api_versions(3)
    assert not plain.tracebacks()


@pytest.mark.parametrize("first_bytes", [b"", b"\x16\x03\x01\x02\x00\x01"], ids=["silent", "partial-hello"])
def test_stalled_handshake_cut_off(tls_broker, first_bytes):
    b = tls_broker
    before = _log(b)
    with socket.create_connection((b.host, b.port), timeout=10) as stalled:
        stalled.sendall(first_bytes)
        deadline = Deadline(8)
        assert _served(b), "another client is served while one handshake stalls"
        stalled.settimeout(deadline.left())
        try:
            assert stalled.recv(1024) == b"", "nothing but EOF on a stalled handshake"
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError("the stalled connection was not cut off by ssl.handshake.timeout.ms") from None
    _new_refusals(b, before, "ssl.handshake.timeout.ms=1500")
    assert not b.tracebacks()
