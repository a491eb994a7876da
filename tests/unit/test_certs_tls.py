"""Certificates from keystream.certs in real TLS handshakes (Python ssl, 127.0.0.1): the server
requires a client certificate, as the broker's mTLS listener does with ssl.client.auth=required."""

import datetime as dt
import socket
import ssl
import threading

import pytest

from keystream.certs import init_ca, issue, revoke

TIMEOUT = 10


@pytest.fixture(scope="module", params=["ec", "rsa"])
def pki(request, tmp_path_factory):
    """One CA per key type with the certificates every case below needs."""
    kind = request.param
    root = tmp_path_factory.mktemp(f"pki-{kind}")
    ca = init_ca(root / "ca", key_type=kind)
    now = dt.datetime.now(dt.UTC)
    made = {
        "broker": issue(ca.dir, "broker", server=True, sans=["DNS:localhost", "IP:127.0.0.1"],
                        key_type=kind, key_password="broker-pw"),
        "alice": issue(ca.dir, "alice", client=True, organization="acme", key_type=kind),
        "server_only": issue(ca.dir, "server-only", client=True, extended_key_usages=["serverAuth"],
                             key_type=kind),
        "revoked": issue(ca.dir, "revoked", client=True, key_type=kind),
        "expired": issue(ca.dir, "expired", client=True, not_after=now - dt.timedelta(hours=1)),
        "future": issue(ca.dir, "future", client=True, not_before=now + dt.timedelta(days=1)),
    }
    revoke(ca.dir, made["revoked"].cert, reason="keyCompromise")
    init_ca(root / "other", key_type=kind)
    made["foreign"] = issue(root / "other", "foreign", client=True, organization="acme")
    return ca, made


def server_context(ca, broker, *, crl: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(broker.pem, password="broker-pw")  # key + chain in one file, like Kafka's PEM keystore
    ctx.load_verify_locations(ca.cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if crl:
        ctx.load_verify_locations(ca.crl)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def client_context(ca, client, max_version=ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.maximum_version = max_version
    if client is not None:
        ctx.load_cert_chain(client.pem)
    return ctx


def handshake(server_ctx, client_ctx, server_hostname="localhost"):
    """Run one connection; return (server_error, client_error, client_subject_seen_by_server)."""
    result: dict = {"server": None, "peer": None}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)

        def serve():
            try:
                conn, _ = listener.accept()
                conn.settimeout(TIMEOUT)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    result["peer"] = dict(x[0] for x in tls.getpeercert()["subject"])
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                result["server"] = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client_error = None
        try:
            with socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                # With TLS 1.3 the server's verdict on our certificate arrives after our handshake.
                if tls.recv(2) != b"ok":
                    client_error = "connection closed"
        except (ssl.SSLError, OSError) as exc:
            client_error = exc
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    return result["server"], client_error, result["peer"]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_client_with_client_auth_certificate_connects(pki, version, host):
    ca, made = pki
    server_error, client_error, peer = handshake(
        server_context(ca, made["broker"], crl=True), client_context(ca, made["alice"], version), host)
    assert server_error is None and client_error is None
    assert peer == {"organizationName": "acme", "commonName": "alice"}


@pytest.mark.parametrize("case, reason", [
    ("server_only", "certificate purpose"),
    ("revoked", "certificate revoked"),
    ("expired", "certificate has expired"),
    ("future", "certificate is not yet valid"),
    ("foreign", "self-signed certificate in certificate chain"),
    ("none", "peer did not return a certificate"),
])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_bad_client_certificates_are_refused(pki, case, reason, version):
    ca, made = pki
    server_error, client_error, peer = handshake(
        server_context(ca, made["broker"], crl=True), client_context(ca, made.get(case), version))
    assert isinstance(server_error, ssl.SSLError), server_error
    assert reason in str(server_error)
    assert client_error is not None and peer is None


def test_revoked_certificate_passes_without_the_crl(pki):
    """The CRL is what stops it: without VERIFY_CRL_CHECK_LEAF the same certificate is accepted."""
    ca, made = pki
    server_error, client_error, _ = handshake(server_context(ca, made["broker"], crl=False),
                                              client_context(ca, made["revoked"]))
    assert server_error is None and client_error is None


def test_server_name_must_match_a_san(pki):
    ca, made = pki
    _, client_error, _ = handshake(server_context(ca, made["broker"], crl=True),
                                   client_context(ca, made["alice"]), server_hostname="broker.elsewhere")
    assert isinstance(client_error, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in str(client_error)


def test_server_certificate_is_not_a_client_certificate(pki):
    """A broker's serverAuth-only certificate cannot be used to log in as the broker."""
    ca, made = pki
    server_error, _, _ = handshake(server_context(ca, made["broker"], crl=True),
                                   client_context(ca, None))
    assert server_error is not None
    ctx = client_context(ca, None)
    ctx.load_cert_chain(made["broker"].pem, password="broker-pw")
    server_error, _, _ = handshake(server_context(ca, made["broker"], crl=True), ctx)
    assert "certificate purpose" in str(server_error)
