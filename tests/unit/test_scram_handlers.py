"""AlterUserScramCredentials and DescribeUserScramCredentials in-process, through the codecs, with
Kafka's (ScramControlManager / ScramImage) error for every bad alteration."""

from __future__ import annotations

import asyncio

import pytest
from kafka.net.sasl.scram import ScramClient

from keystream.auth.principal import Principal, Session
from keystream.auth.sasl.scram import ScramMechanism, salted_password
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import Writer
from keystream.broker.protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
    ScramCredentialUpsertion,
)
from keystream.broker.protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
    UserName,
)
from keystream.config import load_config

SHA256, SHA512 = 1, 2
ADMIN = Principal("User", "admin")
SALT = b"client-made-salt"


@pytest.fixture
def broker(tmp_path):
    props = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
             "super.users": "User:admin"}
    b = Broker(load_config(None, overrides=props, environ={}))
    b.logs.load()
    b.metadata.open()
    b.authorizer.load()
    b.scram.load()
    yield b
    b.metadata.close()
    b.logs.close()


def _wire(msg, version: int = 0) -> memoryview:
    w = Writer()
    msg.encode(w, version)
    return memoryview(b"".join(bytes(part) for part in w.getbuffers()))


def call(broker, req, principal: Principal = ADMIN):
    handler = HANDLERS[type(req).API_KEY]
    assert handler.supports(0)
    decoded_req, _ = type(req).decode(_wire(req), 0, 0)
    ctx = RequestContext(broker, 0, 7, "test", Session(principal, "127.0.0.1"))
    resp = asyncio.run(handler.fn(ctx, decoded_req))
    raw = _wire(resp)
    decoded, end = handler.response_cls.decode(raw, 0, 0)
    assert end == len(raw)
    return decoded


def upsertion(name: str, password: str = "pw", mechanism: int = SHA512, iterations: int = 8192):
    algo = "SCRAM-SHA-256" if mechanism == SHA256 else "SCRAM-SHA-512"
    # what a client would send; made with 4096 iterations where the request's count is invalid
    salted = salted_password(password, algo, SALT, iterations if iterations >= 4096 else 4096)
    return ScramCredentialUpsertion(name, mechanism, iterations, SALT, salted)


def alter(broker, deletions=(), upsertions=(), principal=ADMIN) -> dict[str, tuple[int, str | None]]:
    resp = call(broker, AlterUserScramCredentialsRequest(list(deletions), list(upsertions)), principal)
    results = {r.user: (r.error_code, r.error_message) for r in resp.results}
    assert len(results) == len(resp.results), "one result per user"
    return results


def describe(broker, *names, principal=ADMIN):
    users = [UserName(n) for n in names] if names else None
    return call(broker, DescribeUserScramCredentialsRequest(users), principal)


def described(broker, *names) -> dict[str, object]:
    resp = describe(broker, *names)
    assert (resp.error_code, resp.error_message) == (0, None)
    return {r.user: [(c.mechanism, c.iterations) for c in r.credential_infos] if r.error_code == 0 else r.error_code
            for r in resp.results}


def test_upsert_then_login_with_the_password(broker):
    assert alter(broker, upsertions=[upsertion("alice", "wonderland")]) == {"alice": (0, None)}
    client = ScramClient("alice", "wonderland", "SCRAM-SHA-512")
    exchange = ScramMechanism(broker.scram, "SCRAM-SHA-512").new_exchange("127.0.0.1")
    client.process_server_first_message(asyncio.run(exchange.step(client.first_message())))
    client.process_server_final_message(asyncio.run(exchange.step(client.final_message())))
    assert exchange.result.principal == Principal("User", "alice")
    stored = broker.scram.lookup("alice", "SCRAM-SHA-512")
    assert (stored.salt, stored.iterations) == (SALT, 8192)


def test_describe(broker):
    assert described(broker) == {}
    alter(broker, upsertions=[upsertion("alice", mechanism=SHA256, iterations=4096), upsertion("bob")])
    alter(broker, upsertions=[upsertion("alice", iterations=16384)])
    assert described(broker) == {"alice": [(SHA256, 4096), (SHA512, 16384)], "bob": [(SHA512, 8192)]}
    assert described(broker, "bob", "nobody") == {"bob": [(SHA512, 8192)], "nobody": ErrorCode.RESOURCE_NOT_FOUND}
    resp = describe(broker, "bob", "alice", "bob")
    assert {r.user: r.error_code for r in resp.results} == {"bob": ErrorCode.DUPLICATE_RESOURCE, "alice": 0}
    assert "same user twice" in resp.results[0].error_message
    assert described(broker, "") == {"": ErrorCode.RESOURCE_NOT_FOUND}


@pytest.mark.parametrize("iterations,code", [(4095, ErrorCode.UNACCEPTABLE_CREDENTIAL), (4096, 0), (16384, 0),
                                             (16385, ErrorCode.UNACCEPTABLE_CREDENTIAL),
                                             (-1, ErrorCode.UNACCEPTABLE_CREDENTIAL)])
def test_iteration_bounds(broker, iterations, code):
    assert alter(broker, upsertions=[upsertion("u", iterations=iterations)])["u"][0] == code
    assert (broker.scram.lookup("u", "SCRAM-SHA-512") is None) == (code != 0)


def test_bad_alterations(broker):
    alter(broker, upsertions=[upsertion("present")])
    results = alter(broker, deletions=[
        ScramCredentialDeletion("", SHA512),
        ScramCredentialDeletion("missing", SHA512),
        ScramCredentialDeletion("present", SHA256),  # has only SHA-512
        ScramCredentialDeletion("mech", 0),
    ], upsertions=[
        upsertion("unknown-mech", mechanism=3),
        upsertion("", iterations=8192),
        ScramCredentialUpsertion("no-salt", SHA512, 8192, b"", b"x" * 64),
        ScramCredentialUpsertion("no-secret", SHA512, 8192, SALT, b""),
    ])
    assert {u: code for u, (code, _) in results.items()} == {
        "": ErrorCode.UNACCEPTABLE_CREDENTIAL,
        "missing": ErrorCode.RESOURCE_NOT_FOUND,
        "present": ErrorCode.RESOURCE_NOT_FOUND,
        "mech": ErrorCode.UNSUPPORTED_SASL_MECHANISM,
        "unknown-mech": ErrorCode.UNSUPPORTED_SASL_MECHANISM,
        "no-salt": ErrorCode.UNACCEPTABLE_CREDENTIAL,
        "no-secret": ErrorCode.UNACCEPTABLE_CREDENTIAL,
    }
    assert all(message for _, message in results.values())
    assert described(broker) == {"present": [(SHA512, 8192)]}


def test_the_same_user_twice(broker):
    alter(broker, upsertions=[upsertion("a"), upsertion("b", mechanism=SHA256)])
    results = alter(broker, deletions=[ScramCredentialDeletion("a", SHA512), ScramCredentialDeletion("b", SHA256)],
                    upsertions=[upsertion("a", mechanism=SHA256), upsertion("c"), upsertion("c", mechanism=SHA256),
                                upsertion("d")])
    assert {u: code for u, (code, _) in results.items()} == {
        "a": ErrorCode.DUPLICATE_RESOURCE, "b": 0, "c": ErrorCode.DUPLICATE_RESOURCE, "d": 0}
    assert "twice" in results["a"][1]
    assert described(broker) == {"a": [(SHA512, 8192)], "d": [(SHA512, 8192)]}


def test_delete(broker):
    alter(broker, upsertions=[upsertion("a", mechanism=SHA256)])
    alter(broker, upsertions=[upsertion("a")])
    assert alter(broker, deletions=[ScramCredentialDeletion("a", SHA256)]) == {"a": (0, None)}
    assert described(broker) == {"a": [(SHA512, 8192)]}
    alter(broker, deletions=[ScramCredentialDeletion("a", SHA512)])
    assert described(broker, "a") == {"a": ErrorCode.RESOURCE_NOT_FOUND}
    assert alter(broker, deletions=[ScramCredentialDeletion("a", SHA512)])["a"][0] == ErrorCode.RESOURCE_NOT_FOUND


def test_cluster_authorization(broker):
    alter(broker, upsertions=[upsertion("victim", "old")])
    mallory = Principal("User", "mallory")
    results = alter(broker, deletions=[ScramCredentialDeletion("victim", SHA512)],
                    upsertions=[upsertion("victim", "new"), upsertion("mallory")], principal=mallory)
    assert {u: code for u, (code, _) in results.items()} == {"victim": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                                             "mallory": ErrorCode.CLUSTER_AUTHORIZATION_FAILED}
    # The denial is per result (a nameless one for "all users"), never top-level: librdkafka
    # corrupts its heap on a top-level error in this response.
    resp = describe(broker, principal=mallory)
    assert resp.error_code == 0
    assert [(r.user, r.error_code, r.credential_infos) for r in resp.results] == [
        ("", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, [])]
    resp = describe(broker, "victim", "x", "victim", principal=mallory)
    assert resp.error_code == 0
    assert [(r.user, r.error_code, r.credential_infos) for r in resp.results] == [
        ("victim", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, []), ("x", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, [])]
    assert described(broker) == {"victim": [(SHA512, 8192)]}
    assert broker.scram.lookup("mallory", "SCRAM-SHA-512") is None


def test_versions_advertised():
    for key in (50, 51):
        assert (HANDLERS[key].min_version, HANDLERS[key].max_version) == (0, 0)
        assert HANDLERS[key].flexible(0)
