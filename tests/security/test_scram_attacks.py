"""Attacks on SCRAM: replayed and transplanted client-final messages, wrong nonces, a proof made for
another user, oversized and non-UTF-8 user names, probing for which users exist (the exchange
level, until the SASL framework wires it into connections); and on its administration over the
wire: iteration counts below 4096, non-admin principals changing or reading credentials."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest
from kafka.net.sasl.scram import ScramClient

from keystream.auth.sasl import SaslAuthenticationError
from keystream.auth.sasl.scram import FAILED, ScramMechanism, make_credential, salted_password
from keystream.auth.scram_store import ScramStore
from keystream.broker.errors import ErrorCode
from keystream.broker.log import LogManager
from keystream.broker.metadata_log import MetadataLog
from keystream.broker.protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
    ScramCredentialUpsertion,
)
from keystream.broker.protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from keystream.broker.protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
)
from tests.fixtures.wire import WireClient

SHA512 = "SCRAM-SHA-512"


@pytest.fixture
def store(tmp_path):
    logs = LogManager([str(tmp_path / "data")], {})
    logs.load()
    s = ScramStore(MetadataLog(logs))
    s.load()
    s.upsert("alice", make_credential("alice-pw", SHA512, 8192))
    s.upsert("bob", make_credential("bob-pw", SHA512, 8192))
    yield s
    logs.close()


def step(exchange, token: bytes) -> bytes:
    return asyncio.run(exchange.step(token))


def refused(exchange, token: bytes) -> str:
    with pytest.raises(SaslAuthenticationError) as e:
        step(exchange, token)
    assert exchange.result is None
    return str(e.value)


def started(store, user: str, password: str) -> tuple[object, ScramClient]:
    """An exchange after client-first/server-first, and kafka-python's client ready to send its final."""
    client = ScramClient(user, password, SHA512)
    exchange = ScramMechanism(store, SHA512).new_exchange("192.0.2.1")
    client.process_server_first_message(step(exchange, client.first_message()))
    return exchange, client


def test_replayed_client_final(store):
    exchange, client = started(store, "alice", "alice-pw")
    first, final = client.first_message(), client.final_message()
    step(exchange, final)
    assert str(exchange.result.principal) == "User:alice"
    refused(exchange, final)  # the same exchange again (and its result is withdrawn)

    # An eavesdropper replays both messages on a new exchange: a fresh server nonce defeats it.
    replay = ScramMechanism(store, SHA512).new_exchange("192.0.2.66")
    step(replay, first)
    refused(replay, final)


def test_client_final_from_another_exchange(store):
    one, client_one = started(store, "alice", "alice-pw")
    two, _ = started(store, "alice", "alice-pw")
    refused(two, client_one.final_message())
    step(one, client_one.final_message())  # it was valid for its own exchange


def test_wrong_nonce(store):
    exchange, client = started(store, "alice", "alice-pw")
    final = client.final_message()
    nonce = re.search(rb"r=([^,]+)", final)[1]
    refused(exchange, final.replace(nonce, nonce[:-1] + (b"A" if nonce[-1:] != b"A" else b"B")))
    exchange, client = started(store, "alice", "alice-pw")
    final = client.final_message()
    nonce = re.search(rb"r=([^,]+)", final)[1]
    client_nonce = nonce[:32]  # kafka-python's client nonce is 32 hex digits
    refused(exchange, final.replace(nonce, client_nonce))  # the client's part only


def test_proof_for_another_user(store):
    # Bob knows his own password and says he is alice, proving with his own keys.
    exchange = ScramMechanism(store, SHA512).new_exchange("192.0.2.1")
    client = ScramClient("alice", "bob-pw", SHA512)
    server_first = step(exchange, client.first_message())
    client.process_server_first_message(server_first)
    bob = store.lookup("bob", SHA512)
    client.create_salted_password(bob.salt, bob.iterations)  # bob's salt and iterations, alice's exchange
    client.client_key = client.hmac(client.salted_password, b"Client Key")
    client.client_signature = client.hmac(client.hashfunc(client.client_key).digest(), client.auth_message)
    client.client_proof = bytes(a ^ b for a, b in zip(client.client_key, client.client_signature, strict=True))
    refused(exchange, client.final_message())

    # A whole successful exchange of bob's, transplanted into one that started as alice.
    bob_exchange, bob_client = started(store, "bob", "bob-pw")
    alice_exchange = ScramMechanism(store, SHA512).new_exchange("192.0.2.1")
    step(alice_exchange, bob_client.first_message().replace(b"n=bob", b"n=alice"))
    refused(alice_exchange, bob_client.final_message())


def test_unknown_user_is_indistinguishable(store):
    messages = set()
    shapes = set()
    for user, password in (("alice", "wrong"), ("nobody", "wrong"), ("", "x")):
        client = ScramClient(user, password, SHA512)
        exchange = ScramMechanism(store, SHA512).new_exchange("192.0.2.1")
        try:
            server_first = step(exchange, client.first_message())
        except SaslAuthenticationError as exc:  # the empty user: refused at once, same message
            messages.add(str(exc))
            continue
        attrs = dict(a.split(b"=", 1) for a in server_first.split(b","))
        shapes.add((len(base64.b64decode(attrs[b"s"])), attrs[b"i"]))
        client.process_server_first_message(server_first)
        messages.add(refused(exchange, client.final_message()))
    assert messages == {FAILED}
    assert len(shapes) == 1


@pytest.mark.parametrize("name", [b"u" * (1 << 20), b"\xff\xfeadmin", b"adm\xc3in", b"admin\x00", b"\xc0\xaf"])
def test_hostile_user_names(store, name):
    exchange = ScramMechanism(store, SHA512).new_exchange("192.0.2.1")
    assert refused(exchange, b"n,,n=" + name + b",r=abcdef") == FAILED


def test_huge_client_final(store):
    exchange, client = started(store, "alice", "alice-pw")
    assert refused(exchange, client.final_message() + b"A" * (1 << 20)) == FAILED


# ------------------------------------------------------------------ administration over the wire
def _upsertion(name: str, iterations: int, password: str = "pw") -> ScramCredentialUpsertion:
    salt = b"salt-0123456789"
    return ScramCredentialUpsertion(name, 2, iterations, salt, salted_password(password, SHA512, salt, 4096))


def _alter(c: WireClient, deletions=(), upsertions=()) -> dict[str, int]:
    resp = c.request(AlterUserScramCredentialsRequest(list(deletions), list(upsertions)), 0)
    return {r.user: r.error_code for r in resp.results}


def _describe(c: WireClient):
    return c.request(DescribeUserScramCredentialsRequest(None), 0)


def test_admin_cannot_set_weak_iterations(broker_factory):
    broker = broker_factory()  # PLAINTEXT clients are User:ANONYMOUS, a super user here
    with WireClient(broker.address) as c:
        codes = _alter(c, upsertions=[_upsertion("a", 4095), _upsertion("b", 1), _upsertion("c", 0),
                                      _upsertion("d", -4096), _upsertion("e", 2**31 - 1)])
        assert codes == dict.fromkeys("abcde", ErrorCode.UNACCEPTABLE_CREDENTIAL)
        assert _describe(c).results == []
        assert _alter(c, upsertions=[_upsertion("ok", 4096)]) == {"ok": 0}


def test_non_admin_cannot_alter_or_read_credentials(broker_factory):
    broker = broker_factory()
    with WireClient(broker.address) as c:
        assert _alter(c, upsertions=[_upsertion("victim", 8192, "victim-pw")]) == {"victim": 0}
        describe_grant = AclCreation(4, "kafka-cluster", 3, "User:ANONYMOUS", "*", 8, 3)  # Cluster Describe
        assert c.request(CreateAclsRequest([describe_grant]), 3).results[0].error_code == 0
    broker.stop()
    broker.overrides["super.users"] = "User:admin"  # ANONYMOUS is now an ordinary user with Describe only
    broker.start()
    with WireClient(broker.address) as c:
        denied = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        assert _alter(c, upsertions=[_upsertion("victim", 8192, "mine")]) == {"victim": denied}
        assert _alter(c, deletions=[ScramCredentialDeletion("victim", 2)]) == {"victim": denied}
        assert _alter(c, upsertions=[_upsertion("u" * (1 << 20), 8192)]) == {"u" * (1 << 20): denied}
        resp = _describe(c)  # Describe is granted: it may see names and iterations, never keys
        assert [(r.user, [(i.mechanism, i.iterations) for i in r.credential_infos]) for r in resp.results] == [
            ("victim", [(2, 8192)])]
        assert c.api_versions()  # still connected
