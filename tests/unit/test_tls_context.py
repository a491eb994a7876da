"""Building the broker's SSLContext from ssl.* properties: floors, ciphers, keys, files, errors."""

from __future__ import annotations

import contextlib
import ssl

import pytest

from keystream.auth.tls import TlsContexts, build_server_context, grpc_key_and_chain, has_client_auth_eku
from keystream.certs import init_ca, issue
from keystream.configdef import ConfigError, Password


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = init_ca(d / "ca")
    broker = issue(d / "ca", "broker", out_dir=d, server=True, sans=("IP:127.0.0.1",))
    locked = issue(d / "ca", "locked", out_dir=d, server=True, key_password="s3cret-pw")
    client = issue(d / "ca", "client", out_dir=d, client=True)
    return {"dir": d, "ca": ca, "broker": broker, "locked": locked, "client": client}


def _config(pki, **kw):
    cfg = {
        "ssl.keystore.location": str(pki["broker"].pem),
        "ssl.truststore.location": str(pki["ca"].cert),
        "ssl.client.auth": "required",
        "ssl.enabled.protocols": ["TLSv1.2", "TLSv1.3"],
        "ssl.cipher.suites": None,
        "ssl.crl.location": None,
    }
    cfg.update({k.replace("_", "."): v for k, v in kw.items()})
    return cfg


def test_default_context(pki):
    ctx = build_server_context(_config(pki))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.options & ssl.OP_NO_COMPRESSION
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12, "some TLS 1.2 suites stay enabled"
    for c in tls12:
        assert c["kea"] == "kx-ecdhe", c["name"]
        assert c["aead"], c["name"]


def test_only_tls13(pki):
    ctx = build_server_context(_config(pki, **{"ssl.enabled.protocols": ["TLSv1.3"]}))
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3


def test_never_below_tls12(pki):
    # The config schema already refuses these; the context builder ignores them regardless.
    ctx = build_server_context(_config(pki, **{"ssl.enabled.protocols": ["TLSv1", "TLSv1.1", "TLSv1.2"]}))
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ConfigError, match="ssl.enabled.protocols"):
        build_server_context(_config(pki, **{"ssl.enabled.protocols": ["TLSv1", "SSLv3"]}))


def test_cipher_restriction(pki):
    ctx = build_server_context(_config(pki, **{"ssl.cipher.suites": ["ECDHE-ECDSA-AES256-GCM-SHA384"]}))
    assert [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"] == ["ECDHE-ECDSA-AES256-GCM-SHA384"]
    with pytest.raises(ConfigError, match="ssl.cipher.suites"):
        build_server_context(_config(pki, **{"ssl.cipher.suites": ["NO-SUCH-CIPHER"]}))


@pytest.mark.parametrize(("value", "mode"), [("required", ssl.CERT_REQUIRED), ("requested", ssl.CERT_OPTIONAL),
                                             ("none", ssl.CERT_NONE)])
def test_client_auth(pki, value, mode):
    assert build_server_context(_config(pki, **{"ssl.client.auth": value})).verify_mode == mode


def test_client_auth_none_needs_no_truststore(pki):
    build_server_context(_config(pki, **{"ssl.client.auth": "none", "ssl.truststore.location": None}))
    with pytest.raises(ConfigError, match="ssl.truststore.location"):
        build_server_context(_config(pki, **{"ssl.truststore.location": None}))


def test_encrypted_key(pki):
    pem = str(pki["locked"].pem)
    build_server_context(_config(pki, **{"ssl.keystore.location": pem, "ssl.key.password": Password("s3cret-pw")}))
    with pytest.raises(ConfigError, match="ssl.key.password") as no_pw:
        build_server_context(_config(pki, **{"ssl.keystore.location": pem}))
    with pytest.raises(ConfigError, match="ssl.key.password") as wrong:
        build_server_context(_config(pki, **{"ssl.keystore.location": pem, "ssl.key.password": Password("nope")}))
    for exc in (no_pw, wrong):
        assert "s3cret" not in str(exc.value) and "nope" not in str(exc.value)


@pytest.mark.parametrize("prop", ["ssl.keystore.location", "ssl.truststore.location", "ssl.crl.location"])
def test_missing_or_unreadable_files_name_the_property(pki, prop, tmp_path):
    with pytest.raises(ConfigError, match=prop) as missing:
        build_server_context(_config(pki, **{prop: str(tmp_path / "absent.pem")}))
    assert "absent.pem" in str(missing.value)
    with pytest.raises(ConfigError, match=prop):  # a directory cannot be read as a file
        build_server_context(_config(pki, **{prop: str(tmp_path)}))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not pem\n")
    with pytest.raises(ConfigError, match=prop):
        build_server_context(_config(pki, **{prop: str(garbage)}))


def test_keystore_is_required(pki):
    with pytest.raises(ConfigError, match="ssl.keystore.location"):
        build_server_context(_config(pki, **{"ssl.keystore.location": None}))


def test_key_not_matching_certificate(pki, tmp_path):
    mixed = tmp_path / "mixed.pem"
    mixed.write_bytes(pki["client"].key.read_bytes() + pki["broker"].cert.read_bytes())
    with pytest.raises(ConfigError, match="ssl.keystore.location.*does not match"):
        build_server_context(_config(pki, **{"ssl.keystore.location": str(mixed)}))


def test_crl_enables_leaf_check(pki):
    ctx = build_server_context(_config(pki, **{"ssl.crl.location": str(pki["ca"].crl)}))
    assert ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_eku_check(pki, tmp_path):
    d = pki["dir"]
    server_only = issue(d / "ca", "srv-only", out_dir=tmp_path, server=True)
    assert has_client_auth_eku(_der(pki["client"].cert))
    assert not has_client_auth_eku(_der(server_only.cert))


def test_reload_keeps_old_context_on_failure(pki, tmp_path):
    pem = tmp_path / "broker.pem"
    pem.write_bytes(pki["broker"].pem.read_bytes())
    tls = TlsContexts(_config(pki, **{"ssl.keystore.location": str(pem)}))
    first = tls.current
    pem.write_text("broken\n")
    assert not tls.reload("test")
    assert tls.current is first
    pem.write_bytes(pki["broker"].pem.read_bytes())
    assert tls.reload("test")
    assert tls.current is not first


def test_grpc_key_and_chain(pki):
    """The admin API's PEM pair: the key decrypted in memory, and the mistakes named as they are."""
    locked = pki["locked"].pem.read_bytes()
    key, chain = grpc_key_and_chain(locked, locked, Password("s3cret-pw"))
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----") and chain.startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match="^the private key is encrypted and no key password is set$"):
        grpc_key_and_chain(locked, locked, None)
    with pytest.raises(ValueError, match="wrong key password"):
        grpc_key_and_chain(locked, locked, "nope")
    plain = pki["broker"].pem.read_bytes()
    with pytest.raises(ValueError, match="^a key password is set but the private key is not encrypted$"):
        grpc_key_and_chain(plain, plain, "s3cret-pw")
    with pytest.raises(ValueError, match="^the private key does not match the certificate$"):
        grpc_key_and_chain(pki["client"].key.read_bytes(), pki["broker"].cert.read_bytes(), None)
    with pytest.raises(ValueError, match="no certificate"):
        grpc_key_and_chain(plain, b"", None)


def _der(path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text().split("-----END CERTIFICATE-----")[0]
                                    + "-----END CERTIFICATE-----\n")


def _pump(a_out: ssl.MemoryBIO, b_in: ssl.MemoryBIO) -> None:
    b_in.write(a_out.read())


def test_connections_from_the_context_carry_data_both_ways(pki):
    """The context's SSLObjects expose read/write/pending as the C methods (what the event loop's
    SSL protocol calls per TLS record); they must behave as ssl.SSLObject's do."""
    server_ctx = build_server_context(_config(pki))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(str(pki["ca"].cert))
    client_ctx.load_cert_chain(str(pki["client"].cert), str(pki["client"].key))
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    assert isinstance(server, ssl.SSLObject)
    for _ in range(4):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        _pump(c_out, s_in)
        _pump(s_out, c_in)
    assert server.getpeercert(binary_form=True), "the client certificate was received"

    payload = bytes(range(256)) * 100  # 25,600 bytes: two TLS records
    assert client.write(payload) == len(payload)
    _pump(c_out, s_in)
    buf = bytearray(len(payload))
    got = server.read(len(buf), buf)
    assert 0 < got < len(payload) and server.pending() == 0  # one record per read
    got += server.read(len(buf) - got, memoryview(buf)[got:])
    assert bytes(buf) == payload
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1)

    assert server.write(b"answer") == 6
    _pump(s_out, c_in)
    assert client.read(100) == b"answer"
