"""keystream.certs on real files: the CA, issued certificates, key protection, revocation, show."""

import datetime as dt
import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from keystream.certs import CertError, describe, init_ca, issue, load_ca, parse_sans, render, revoke
from keystream.certs.keys import load_key


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def chain(path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture
def ca_dir(tmp_path):
    init_ca(tmp_path / "ca")
    return tmp_path / "ca"


@pytest.mark.parametrize("key_type, key_class, size", [("ec", ec.EllipticCurvePrivateKey, 256),
                                                      ("rsa", rsa.RSAPrivateKey, 3072)])
def test_init_ca_writes_a_ca_certificate_key_and_empty_crl(tmp_path, key_type, key_class, size):
    ca = init_ca(tmp_path / "ca", key_type=key_type, common_name="Test CA", days=30)
    assert isinstance(ca.private_key, key_class) and ca.private_key.key_size == size
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=Test CA" and cert.issuer == cert.subject
    assert ext(cert, x509.BasicConstraints).value.ca and ext(cert, x509.BasicConstraints).critical
    usage = ext(cert, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    assert dt.timedelta(days=29) < cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=30)
    crl = x509.load_pem_x509_crl(ca.crl.read_bytes())
    assert len(crl) == 0 and crl.is_signature_valid(cert.public_key())
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)
    assert mode(ca.key) == 0o600 and mode(tmp_path / "ca") == 0o700
    assert (tmp_path / "ca" / "index.json").exists()
    assert load_ca(tmp_path / "ca").certificate == cert


def test_init_rejects_bad_arguments_before_writing(tmp_path):
    for kwargs, message in (({"key_type": "dsa"}, "unknown key type"), ({"common_name": " "}, "empty"),
                            ({"days": 0}, "at least 1")):
        with pytest.raises(CertError, match=message):
            init_ca(tmp_path / "ca", **kwargs)
    assert not (tmp_path / "ca").exists()


def test_init_refuses_to_overwrite_unless_forced(ca_dir):
    before = (ca_dir / "ca.crt").read_bytes()
    with pytest.raises(CertError, match="already exists"):
        init_ca(ca_dir)
    assert (ca_dir / "ca.crt").read_bytes() == before
    init_ca(ca_dir, force=True)
    assert (ca_dir / "ca.crt").read_bytes() != before
    assert mode(ca_dir / "ca.key") == 0o600


def test_key_files_are_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        ca = init_ca(tmp_path / "ca")
        issued = issue(ca.dir, "alice", client=True, out_dir=tmp_path / "out")
    finally:
        os.umask(old)
    assert mode(ca.key) == 0o600
    assert mode(issued.key) == 0o600 and mode(issued.pem) == 0o600
    assert mode(issued.cert) == 0o644
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_broker_certificate_chains_to_the_ca(ca_dir):
    issued = issue(ca_dir, "broker-0", server=True, sans=["DNS:localhost,IP:127.0.0.1", "DNS:broker-0.kafka"])
    leaf, ca_cert = chain(issued.cert)
    assert ca_cert == load_ca(ca_dir).certificate
    assert leaf.serial_number == issued.serial
    assert leaf.subject.rfc4514_string() == "CN=broker-0"
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not ext(leaf, x509.BasicConstraints).value.ca
    usage = ext(leaf, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment and not usage.key_cert_sign
    verifier = PolicyBuilder().store(Store([ca_cert])).build_server_verifier(x509.DNSName("broker-0.kafka"))
    assert verifier.verify(leaf, [])[0] == leaf
    wrong_host = PolicyBuilder().store(Store([ca_cert])).build_server_verifier(x509.DNSName("evil.example"))
    with pytest.raises(VerificationError):
        wrong_host.verify(leaf, [])


def test_another_ca_does_not_verify_our_certificates(tmp_path, ca_dir):
    other = init_ca(tmp_path / "other")
    issued = issue(ca_dir, "broker", server=True, sans=["DNS:localhost"])
    verifier = PolicyBuilder().store(Store([other.certificate])).build_server_verifier(x509.DNSName("localhost"))
    with pytest.raises(VerificationError):
        verifier.verify(chain(issued.cert)[0], [])


def test_client_certificate_subject_and_usages(ca_dir):
    issued = issue(ca_dir, "alice", client=True, common_name="alice", organization="acme",
                   organizational_unit="payments", key_type="rsa")
    leaf = chain(issued.cert)[0]
    assert leaf.subject.rfc4514_string() == "CN=alice,OU=payments,O=acme"  # Kafka's principal form
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(leaf, x509.KeyUsage).value.key_encipherment  # RSA
    leaf.verify_directly_issued_by(load_ca(ca_dir).certificate)
    key = load_key(issued.key.read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072


def test_both_usages_and_explicit_ekus(ca_dir):
    both = chain(issue(ca_dir, "both", server=True, client=True).cert)[0]
    assert set(ext(both, x509.ExtendedKeyUsage).value) == {ExtendedKeyUsageOID.SERVER_AUTH,
                                                           ExtendedKeyUsageOID.CLIENT_AUTH}
    odd = chain(issue(ca_dir, "odd", client=True, extended_key_usages=["serverAuth"]).cert)[0]
    assert list(ext(odd, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(CertError, match="--server, --client"):
        issue(ca_dir, "nothing")


def test_pem_keystore_is_key_then_chain(ca_dir):
    issued = issue(ca_dir, "broker", server=True)
    text = issued.pem.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert text.count("-----BEGIN CERTIFICATE-----") == 2
    assert text.index("PRIVATE KEY") < text.index("CERTIFICATE")
    assert text.endswith(issued.cert.read_text())


def test_encrypted_key_loads_with_the_password_only(ca_dir):
    issued = issue(ca_dir, "alice", client=True, key_password="s3cret")
    data = issued.key.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert issued.pem.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = load_key(data, "s3cret")
    assert key.public_key() == chain(issued.cert)[0].public_key()
    for wrong in (None, "wrong"):
        with pytest.raises(CertError):
            load_key(data, wrong)


def test_validity_window_overrides(ca_dir):
    now = dt.datetime.now(dt.UTC)
    expired = chain(issue(ca_dir, "expired", client=True, not_after=now - dt.timedelta(days=1)).cert)[0]
    assert expired.not_valid_after_utc < now and expired.not_valid_before_utc < expired.not_valid_after_utc
    future = chain(issue(ca_dir, "future", client=True, not_before=now + dt.timedelta(days=1)).cert)[0]
    assert future.not_valid_before_utc > now
    assert describe(ca_dir / "expired.crt")["certificates"][0]["validity"] == "expired"
    assert describe(ca_dir / "future.crt")["certificates"][0]["validity"] == "not yet valid"
    assert describe(ca_dir / "ca.crt")["certificates"][0]["validity"] == "valid"
    with pytest.raises(CertError, match="expire before"):
        issue(ca_dir, "bad", client=True, not_before=now, not_after=now - dt.timedelta(seconds=1))


def test_issue_refuses_to_clobber_and_bad_names(ca_dir, tmp_path):
    first = issue(ca_dir, "alice", client=True)
    with pytest.raises(CertError, match="already exist"):
        issue(ca_dir, "alice", client=True)
    second = issue(ca_dir, "alice", client=True, force=True)
    assert second.serial != first.serial and mode(second.key) == 0o600
    for bad in ("../evil", "a/b", ".hidden", "", "ca key"):
        with pytest.raises(CertError, match="bad name"):
            issue(ca_dir, bad, client=True)
    assert not (tmp_path / "evil.crt").exists()


def test_issue_needs_a_ca(tmp_path):
    with pytest.raises(CertError, match="no CA"):
        issue(tmp_path / "missing", "alice", client=True)


def test_parse_sans():
    names = parse_sans(["DNS:Broker.Example,IP:127.0.0.1", "IP:::1", "URI:spiffe://ks/broker",
                        "email:ops@example.com", "DNS:broker.example"])
    assert [n.value for n in names][:2] == ["broker.example", ipaddress.ip_address("127.0.0.1")]
    assert len(names) == 5  # duplicate DNS name dropped
    for bad in ("localhost", "DNS:", "IP:300.1.1.1", "FOO:bar", "DNS:bad host", "email:nobody"):
        with pytest.raises(CertError, match="bad SAN"):
            parse_sans([bad])


def test_revoke_writes_a_signed_crl_atomically(ca_dir):
    alice = issue(ca_dir, "alice", client=True)
    bob = issue(ca_dir, "bob", client=True)
    ca = load_ca(ca_dir)
    revoke(ca_dir, alice.cert, reason="keyCompromise")
    path = revoke(ca_dir, bob.pem, reason="superseded")
    crl = x509.load_pem_x509_crl(path.read_bytes())
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert {r.serial_number for r in crl} == {alice.serial, bob.serial}
    reason = crl.get_revoked_certificate_by_serial_number(alice.serial).extensions.get_extension_for_class(
        x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert not [p for p in ca_dir.iterdir() if p.name.endswith(".tmp")]
    revoke(ca_dir, alice.cert)  # again: still one entry, first reason kept
    crl = x509.load_pem_x509_crl(path.read_bytes())
    assert len(crl) == 2


def test_revoke_rejects_foreign_certificates_and_bad_reasons(tmp_path, ca_dir):
    init_ca(tmp_path / "other")
    foreign = issue(tmp_path / "other", "mallory", client=True)
    with pytest.raises(CertError, match="not issued by"):
        revoke(ca_dir, foreign.cert)
    own = issue(ca_dir, "alice", client=True)
    with pytest.raises(CertError, match="unknown revocation reason"):
        revoke(ca_dir, own.cert, reason="because")
    assert len(x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())) == 0


def test_describe_a_keystore_pem_never_shows_the_key(ca_dir):
    issued = issue(ca_dir, "broker", server=True, sans=["DNS:localhost,IP:127.0.0.1"])
    info = describe(issued.pem)
    leaf = info["certificates"][0]
    assert info["private_key"] == "unencrypted" and info["key_matches_certificate"] is True
    assert leaf["subject"] == "CN=broker" and leaf["issuer"] == "CN=Keystream dev CA"
    assert leaf["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert leaf["extended_key_usage"] == ["serverAuth"] and leaf["key_usage"] == ["digitalSignature"]
    assert leaf["key"] == {"type": "EC", "size": 256, "curve": "secp256r1"}
    assert leaf["serial"] == f"{issued.serial:X}" and not leaf["ca"]
    assert len(leaf["fingerprints"]["sha256"]) == 32 * 3 - 1 and len(leaf["fingerprints"]["sha1"]) == 20 * 3 - 1
    assert info["certificates"][1]["ca"]
    text = render(info)
    key_body = "".join(issued.key.read_text().splitlines()[1:-1])
    for chunk in (key_body[i:i + 16] for i in range(0, len(key_body), 16)):
        assert chunk not in text and chunk not in repr(info)
    assert "PRIVATE KEY-----" not in text
    assert "contains a private key (unencrypted" in text.lower()
    for word in ("Subject", "Issuer", "Serial", "Not before", "Not after", "SANs", "SHA-256", "SHA-1",
                 "Extended key usage: serverAuth", "CA:"):
        assert word in text


def test_describe_encrypted_key_crl_and_errors(tmp_path, ca_dir):
    issued = issue(ca_dir, "alice", client=True, key_password="pw", key_type="rsa")
    info = describe(issued.pem)
    assert info["private_key"] == "encrypted" and "key_matches_certificate" not in info
    assert info["certificates"][0]["key"] == {"type": "RSA", "size": 3072}
    assert describe(issued.key)["certificates"] == []
    revoke(ca_dir, issued.cert, reason="superseded")
    crl = describe(ca_dir / "crl.pem")["crl"]
    assert crl["revoked"][0]["serial"] == f"{issued.serial:X}" and crl["revoked"][0]["reason"] == "superseded"
    der = tmp_path / "leaf.der"
    der.write_bytes(chain(issued.cert)[0].public_bytes(Encoding.DER))
    assert describe(der)["certificates"][0]["subject"] == "CN=alice"
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    with pytest.raises(CertError):
        describe(junk)
    with pytest.raises(CertError, match="not found"):
        describe(tmp_path / "missing.pem")


def test_describe_spots_a_mismatched_key(tmp_path, ca_dir):
    a = issue(ca_dir, "a", client=True)
    b = issue(ca_dir, "b", client=True)
    mixed = tmp_path / "mixed.pem"
    mixed.write_bytes(a.key.read_bytes() + b.cert.read_bytes())
    assert describe(mixed)["key_matches_certificate"] is False
    assert "Key matches the certificate: NO" in render(describe(mixed))


def test_repr_of_the_ca_hides_the_key(ca_dir):
    assert "private" not in repr(load_ca(ca_dir)).lower()
