"""SCRAM (RFC 5802/7677): the RFC 7677 test vector, kafka-python's SCRAM client against the exchange,
every way an exchange fails (always the same client-facing message), and the credential store on
the metadata log (durable, tombstones, no password kept)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import pytest
from kafka.net.sasl.scram import ScramClient

from keystream.auth.principal import Principal
from keystream.auth.sasl import SaslAuthenticationError
from keystream.auth.sasl.scram import (
    DEFAULT_ITERATIONS,
    FAILED,
    SALT_BYTES,
    ScramExchange,
    ScramMechanism,
    credential_from_salted_password,
    make_credential,
    salted_password,
)
from keystream.auth.scram_store import KEY_PREFIX, ScramStore, encode_key
from keystream.broker.metadata_log import MetadataLog

# RFC 7677 section 3
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SHA256, SHA512 = "SCRAM-SHA-256", "SCRAM-SHA-512"


@pytest.fixture
def store(logs) -> ScramStore:
    s = ScramStore(MetadataLog(logs()))
    s.load()
    s.upsert("user", make_credential("pencil", SHA256, 4096, salt=RFC_SALT))
    s.upsert("alice", make_credential("s3cret", SHA512, 8192))
    return s


def step(exchange, token: bytes) -> bytes:
    return asyncio.run(exchange.step(token))


def refused(exchange, token: bytes) -> None:
    with pytest.raises(SaslAuthenticationError) as e:
        step(exchange, token)
    assert str(e.value) == FAILED


def login(store, user: str, password: str, mechanism: str, *, authenticate: bool = True):
    """kafka-python's SCRAM client (a real client implementation) against a fresh exchange."""
    client = ScramClient(user, password, mechanism)
    exchange = ScramMechanism(store, mechanism).new_exchange("127.0.0.1")
    client.process_server_first_message(step(exchange, client.first_message()))
    if not authenticate:
        return exchange, client
    client.process_server_final_message(step(exchange, client.final_message()))  # checks the server's proof
    return exchange


def test_rfc7677_vector(store):
    exchange = ScramExchange(SHA256, store, "127.0.0.1", server_nonce=RFC_SERVER_NONCE)
    assert step(exchange, RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert exchange.result is None
    assert step(exchange, RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert exchange.result.principal == Principal("User", "user")
    assert exchange.result.groups == () and exchange.result.lifetime_ms is None
    refused(exchange, RFC_CLIENT_FINAL)  # replayed on the same exchange: single use


@pytest.mark.parametrize("mechanism", [SHA256, SHA512])
def test_kafka_python_client_round_trip(logs, mechanism):
    store = ScramStore(MetadataLog(logs()))
    store.upsert("bob", make_credential("hunter2-ü", mechanism, 4096))
    exchange = login(store, "bob", "hunter2-ü", mechanism)
    assert exchange.result.principal == Principal("User", "bob")
    assert exchange.mechanism == mechanism


def test_salted_password_form_matches_make_credential():
    salt = b"0123456789abcdef"
    direct = make_credential("pw", SHA512, 5000, salt=salt)
    assert credential_from_salted_password(SHA512, salt, 5000, salted_password("pw", SHA512, salt, 5000)) == direct
    assert "pw" not in repr(direct) and repr(salt) not in repr(direct)
    with pytest.raises(ValueError):
        make_credential("pw", SHA512, 4095)
    with pytest.raises(ValueError):
        make_credential("pw", "SCRAM-MD5")


def test_wrong_password(store):
    exchange, client = login(store, "alice", "wrong", SHA512, authenticate=False)
    refused(exchange, client.final_message())
    assert exchange.result is None
    refused(exchange, client.final_message())  # and it stays failed


def test_unknown_user_looks_like_a_known_one(store):
    def server_first(user: str) -> dict[str, str]:
        exchange = ScramMechanism(store, SHA512).new_exchange("127.0.0.1")
        message = step(exchange, ScramClient(user, "x", SHA512).first_message()).decode()
        return dict(p.split("=", 1) for p in message.split(",")[1:])  # s=, i=

    ghost = server_first("ghost")
    assert ghost == server_first("ghost")  # the same salt every time, like a stored credential
    assert ghost != server_first("ghost2")
    assert int(ghost["i"]) == DEFAULT_ITERATIONS
    assert len(base64.b64decode(ghost["s"])) == len(store.lookup("alice", SHA512).salt) == SALT_BYTES
    sha256 = ScramMechanism(store, SHA256).new_exchange("127.0.0.1")
    reply = step(sha256, ScramClient("ghost", "x", SHA256).first_message()).decode()
    assert len(base64.b64decode(reply.split(",")[1][2:])) == SALT_BYTES  # 64, like librdkafka's salts
    exchange, client = login(store, "ghost", "x", SHA512, authenticate=False)
    refused(exchange, client.final_message())


def test_mechanism_the_user_has_no_credential_for(store):
    exchange, client = login(store, "alice", "s3cret", SHA256, authenticate=False)
    refused(exchange, client.final_message())


def test_stored_credential_below_minimum_iterations_is_refused(store):
    salt = b"salt-salt-salt"
    weak = credential_from_salted_password(SHA512, salt, 1000, salted_password("pw", SHA512, salt, 1000))
    store.upsert("weak", weak)
    exchange, client = login(store, "weak", "pw", SHA512, authenticate=False)
    refused(exchange, client.final_message())


def _first(store, message: bytes, mechanism: str = SHA256) -> ScramExchange:
    exchange = ScramExchange(mechanism, store, "127.0.0.1", server_nonce="SNONCE")
    step(exchange, message)
    return exchange


def _final(gs2: bytes, nonce: bytes, password: str = "pencil", user: str = "user") -> tuple[bytes, bytes]:
    """(client-first, client-final) for the RFC user, computed independently of the server code."""
    bare = b"n=" + user.encode() + b",r=" + nonce
    server_first = b"r=" + nonce + b"SNONCE,s=" + base64.b64encode(RFC_SALT) + b",i=4096"
    without_proof = b"c=" + base64.b64encode(gs2) + b",r=" + nonce + b"SNONCE"
    auth = bare + b"," + server_first + b"," + without_proof
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), RFC_SALT, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    sig = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig, strict=True))
    return gs2 + bare, without_proof + b",p=" + base64.b64encode(proof)


@pytest.mark.parametrize("gs2", [b"n,,", b"y,,", b"n,a=user,", b"y,a=user,"])
def test_accepted_gs2_headers(store, gs2):
    first, final = _final(gs2, b"abc")
    exchange = _first(store, first)
    assert step(exchange, final).startswith(b"v=")
    assert exchange.result.principal.name == "user"


def test_channel_binding_must_echo_the_gs2_header(store):
    first, final = _final(b"y,,", b"abc")
    _, other = _final(b"n,,", b"abc")  # c=biws where "y,," was sent: a downgrade
    refused(_first(store, first), other)


def test_saslname_escapes(logs):
    store = ScramStore(MetadataLog(logs()))
    store.upsert("a,b=c", make_credential("pw", SHA256, 4096, salt=RFC_SALT))
    first, final = _final(b"n,,", b"xyz", "pw", "a=2Cb=3Dc")
    exchange = _first(store, first)
    step(exchange, final)
    assert exchange.result.principal.name == "a,b=c"
    # "=3D2C" is "=" then "2C", not ","
    store.upsert("=2C", make_credential("pw", SHA256, 4096, salt=RFC_SALT))
    first, final = _final(b"n,,", b"xyz", "pw", "=3D2C")
    exchange = _first(store, first)
    step(exchange, final)
    assert exchange.result.principal.name == "=2C"


@pytest.mark.parametrize("message", [
    b"p=tls-unique,,n=user,r=abc",            # channel binding: Kafka has none
    b"x,,n=user,r=abc",                        # unknown gs2 flag
    b"n,a=other,n=user,r=abc",                 # authzid for another user
    b"n,,n=user,r=abc,tokenauth=true",         # delegation-token extension
    b"n,,m=ext,n=user,r=abc",                  # reserved mandatory extension
    b"n,,n=,r=abc",                            # empty user
    b"n,,n=us=41er,r=abc",                     # bad saslname escape
    b"n,,n=user,r=",                           # empty nonce
    b"n,,n=user,r=a\x7fb",                     # nonce outside printable
    b"n,,n=user",                              # no nonce
    b"n,,r=abc,n=user",                        # attributes out of order
    b"n,n=user,r=abc",                         # no authzid separator
    b"n,,n=\xff\xfe,r=abc",                    # not UTF-8
    b"n,,n=" + b"u" * (1 << 20) + b",r=abc",   # 1 MiB user name
    b"",
])
def test_bad_client_first(store, message):
    exchange = ScramExchange(SHA256, store, "127.0.0.1")
    refused(exchange, message)
    refused(exchange, RFC_CLIENT_FIRST)  # a failed exchange cannot be restarted


def test_bad_client_final(store):
    first, final = _final(b"n,,", b"abc")
    good_proof = final.rsplit(b",p=", 1)[1]
    bad = [
        final.replace(b"r=abcSNONCE", b"r=abcSNONCX"),          # wrong nonce
        final.replace(b"r=abcSNONCE", b"r=abc"),                # client nonce only
        final.replace(b"c=biws", b"c=eSws"),                    # channel binding for "y,,"
        final.replace(good_proof, b"!!notbase64!!"),
        final.replace(good_proof, base64.b64encode(b"short")),  # proof of the wrong length
        final.replace(good_proof, base64.b64encode(bytes(32))),  # wrong proof
        final.rsplit(b",p=", 1)[0],                             # no proof
        final.replace(b",p=", b",x=1,p="),                      # extension
        b"\xff" + final,
        final + b"A" * 9000,
    ]
    for message in bad:
        exchange = _first(store, first)
        refused(exchange, message)
        assert exchange.result is None


# --------------------------------------------------------------------------- the store
def test_store_survives_reopen_and_keeps_no_password(logs):
    meta = MetadataLog(logs())
    store = ScramStore(meta)
    store.load()
    cred = make_credential("topsecret", SHA512, 8192)
    store.alter(upserts=[("alice", cred), ("bob", make_credential("b", SHA256, 4096))])
    store.upsert("bob", make_credential("b2", SHA512, 4096))
    store.delete("bob", SHA256)
    store.upsert("nul\0name", make_credential("n", SHA256, 4096))
    raw = b"".join(k + v for k, v in meta.replay(KEY_PREFIX))
    assert b"topsecret" not in raw
    assert salted_password("topsecret", SHA512, cred.salt, 8192) not in raw
    meta.close()

    again = ScramStore(MetadataLog(logs()))
    again.load()
    assert again.lookup("alice", SHA512) == cred
    assert again.lookup("bob", SHA256) is None
    assert again.describe() == {"alice": {SHA512: 8192}, "bob": {SHA512: 4096}, "nul\0name": {SHA256: 4096}}


def test_store_skips_unreadable_records(logs):
    meta = MetadataLog(logs())
    meta.append(encode_key("broken", SHA256), b"{not json")
    meta.append(KEY_PREFIX + b"no-mechanism", b"{}")
    meta.append(encode_key("ok", SHA256), b'{"iterations":4096,"salt":"AA==","server_key":"AA==","stored_key":"AA=="}')
    store = ScramStore(meta)
    store.load()
    assert store.describe() == {"ok": {SHA256: 4096}}
