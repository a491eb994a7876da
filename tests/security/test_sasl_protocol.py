"""The SASL exchange as an attacker drives it, on a real broker's SASL_SSL listener: requests out of
order, unknown mechanisms, wrong passwords and garbage tokens are refused with Kafka's codes, answered
only after connection.failed.authentication.delay.ms and followed by a close; a guesser's delay
does not slow anyone else; v0 handshakes (raw tokens) and KIP-368 re-authentication work."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest

from keystream.broker.errors import ErrorCode
from keystream.broker.protocol.messages.list_groups_request import ListGroupsRequest
from keystream.broker.protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from keystream.broker.protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse
from keystream.broker.protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from tests.fixtures.records import build_batch, simple_records
from tests.fixtures.sasl import sasl_wire, scram_client, scram_login, scram_user
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import ConnectionClosed, encode_request, frame, unique_name

pytestmark = pytest.mark.keystream_only

DELAY_MS = 400
PASSWORD = "p4ss-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    b = module_broker_factory(tls=True, sasl="SCRAM-SHA-256,SCRAM-SHA-512",
                              **{"connection.failed.authentication.delay.ms": DELAY_MS})
    scram_user(b, "alice", PASSWORD, "SCRAM-SHA-512")
    scram_user(b, "alice", PASSWORD, "SCRAM-SHA-256")
    scram_user(b, "bob", PASSWORD + "-bob", "SCRAM-SHA-512")
    return b


def _failed_login(client, password: str, mechanism: str = "SCRAM-SHA-512"):
    """Handshake + client-first, then a final message with a wrong proof: returns (response, seconds waited)."""
    assert client.request(SaslHandshakeRequest(mechanism=mechanism), 1).error_code == 0
    scram = scram_client("alice", password, mechanism)
    first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first_message()), 2)
    scram.process_server_first_message(bytes(first.auth_bytes))
    started = time.monotonic()
    final = client.request(SaslAuthenticateRequest(auth_bytes=scram.final_message()), 2)
    return final, time.monotonic() - started


def test_produce_before_authenticating_is_refused_and_writes_nothing(broker):
    topic = unique_name("pre-auth")
    with broker.tls.wire(broker.address) as admin:
        admin.create_topic(topic)
    with sasl_wire(broker) as c:
        c.send(_produce(topic), 9)
        assert c.closed_within(DELAY_MS / 1000 + 5)
        assert c.unexpected == b""  # ProduceResponse has no top-level error code: Kafka closes unanswered
    with broker.tls.wire(broker.address) as admin:
        assert admin.list_offset(topic, 0).offset == 0
    wait_for(lambda: "ProduceRequest during SASL handshake (ILLEGAL_SASL_STATE)" in broker.tail_log(), 5)


def test_request_with_an_error_code_before_authenticating_gets_illegal_sasl_state(broker):
    with sasl_wire(broker) as c:
        c.api_versions()  # allowed before the handshake, as in Kafka
        resp = c.request(ListGroupsRequest(), 4)
        assert resp.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert c.closed_within(5)


def test_sasl_handshake_twice_is_illegal(broker):
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == 0
        started = time.monotonic()
        again = c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1)
        assert again.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert time.monotonic() - started >= DELAY_MS / 1000 * 0.9
        assert c.closed_within(5)


@pytest.mark.parametrize("mechanism", ["PLAIN", "GSSAPI", "scram-sha-512", "X" * 300, ""])
def test_unsupported_mechanism_lists_the_enabled_ones(broker, mechanism):
    with sasl_wire(broker) as c:
        resp = c.request(SaslHandshakeRequest(mechanism=mechanism), 1)
        assert resp.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
        assert resp.mechanisms == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
        assert c.closed_within(5)


def test_per_listener_mechanisms(broker_factory):
    b = broker_factory(tls=True, sasl="SCRAM-SHA-256,SCRAM-SHA-512",
                       **{"listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    with sasl_wire(b) as c:
        resp = c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1)
        assert (resp.error_code, resp.mechanisms) == (ErrorCode.UNSUPPORTED_SASL_MECHANISM, ["SCRAM-SHA-512"])


def test_wrong_password_fails_after_the_delay_and_closes(broker):
    with sasl_wire(broker) as c:
        final, waited = _failed_login(c, "not-" + PASSWORD)
        assert final.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert final.error_message and "alice" not in final.error_message
        assert waited >= DELAY_MS / 1000 * 0.9
        assert c.closed_within(5)
    log = broker.tail_log(400)
    assert "SASL SCRAM-SHA-512 authentication from 127.0.0.1 on listener SASL_SSL failed" in log
    assert PASSWORD not in broker.log_path.read_text()


def test_unknown_user_gets_the_same_answer(broker):
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == 0
        scram = scram_client("nobody-" + unique_name(), PASSWORD, "SCRAM-SHA-512")
        first = c.request(SaslAuthenticateRequest(auth_bytes=scram.first_message()), 2)
        assert first.error_code == 0  # a server-first message, as for a real user
        scram.process_server_first_message(bytes(first.auth_bytes))
        final = c.request(SaslAuthenticateRequest(auth_bytes=scram.final_message()), 2)
        assert final.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    with sasl_wire(broker) as c:
        known, _ = _failed_login(c, "not-" + PASSWORD)
    assert final.error_message == known.error_message


def test_failed_logins_are_slowed_without_slowing_other_clients(broker):
    """Eight guessers hammer the listener while alice's authenticated connection keeps answering:
    each guess waits the full delay, none of her requests waits anywhere near it."""
    stop = threading.Event()
    guesses: list[float] = []
    errors: list[BaseException] = []

    def guess() -> None:
        try:
            while not stop.is_set():
                with sasl_wire(broker) as c:
                    final, waited = _failed_login(c, "guess-" + os.urandom(4).hex())
                    assert final.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
                    guesses.append(waited)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    with sasl_wire(broker) as alice:
        scram_login(alice, "alice", PASSWORD, "SCRAM-SHA-512")
        threads = [threading.Thread(target=guess, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(guesses) >= 8, 30, message="the guessers' first failures")
            latencies = []
            for _ in range(20):
                started = time.monotonic()
                alice.metadata([], version=12)
                latencies.append(time.monotonic() - started)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    assert not errors, errors
    assert min(guesses) >= DELAY_MS / 1000 * 0.9
    assert max(latencies) < DELAY_MS / 1000 * 0.75, latencies  # a blocking delay would add >= 0.4 s


@pytest.mark.parametrize("token", [b"", b"\x00" * 64, b"n,,", b"n,,n=alice,r=", os.urandom(512),
                                   b"y,a=bob,n=alice,r=abc", "n,,n=\u00e9\udcff".encode("utf-8", "surrogatepass")],
                         ids=["empty", "zeros", "no-user", "no-nonce", "random", "authzid", "bad-utf8"])
def test_garbage_first_tokens_fail_cleanly(broker, token):
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == 0
        resp = c.request(SaslAuthenticateRequest(auth_bytes=token), 2)
        assert resp.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert c.closed_within(5)


def test_a_frame_larger_than_sasl_server_max_receive_size_closes(broker):
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == 0
        c.send_raw(struct.pack(">i", 600_000) + b"\x00" * 1024)
        assert c.closed_within(5)
    wait_for(lambda: "sasl.server.max.receive.size=524288" in broker.tail_log(), 5)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_an_oversized_token_is_an_authentication_failure(broker, version):
    """A 1 MiB SaslAuthenticate is refused unread (sasl.server.max.receive.size), yet answered."""
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == 0
        request = SaslAuthenticateRequest(auth_bytes=b"n,,n=" + b"a" * (1 << 20) + b",r=x")
        payload = encode_request(request, version, 77)
        c.send_raw(frame(payload)[:65536])  # the broker reads no further than the size anyway
        started = time.monotonic()
        answer = c.read_frame()
        assert struct.unpack_from(">i", answer)[0] == 77  # the correlation id, then a tagged header from v2
        resp, _ = SaslAuthenticateResponse.decode(answer, 5 if version >= 2 else 4, version)
        assert resp.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert time.monotonic() - started >= DELAY_MS / 1000 * 0.9
        assert c.closed_within(5)


def test_v0_handshake_then_raw_tokens(broker):
    with sasl_wire(broker) as c:
        resp = c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 0)
        assert resp.error_code == 0
        scram = scram_client("alice", PASSWORD, "SCRAM-SHA-256")
        c.send_frame(scram.first_message())
        scram.process_server_first_message(c.read_frame())
        c.send_frame(scram.final_message())
        scram.process_server_final_message(c.read_frame())  # checks the server's signature
        assert c.metadata([], version=12).cluster_id  # now an authenticated Kafka connection


def test_v0_handshake_wrong_password_closes_after_the_delay_without_an_answer(broker):
    with sasl_wire(broker) as c:
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 0).error_code == 0
        scram = scram_client("alice", "wrong", "SCRAM-SHA-256")
        c.send_frame(scram.first_message())
        scram.process_server_first_message(c.read_frame())
        started = time.monotonic()
        c.send_frame(scram.final_message())
        assert c.closed_within(5)
        assert c.unexpected == b""
        assert time.monotonic() - started >= DELAY_MS / 1000 * 0.9


def test_sasl_requests_after_authentication_without_reauth_support(broker):
    """A client that authenticated with SaslAuthenticate v0 cannot re-authenticate (KIP-368): Kafka's
    handlers answer ILLEGAL_SASL_STATE and the connection stays usable."""
    with sasl_wire(broker) as c:
        scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512", version=0)
        assert c.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
        resp = c.request(SaslAuthenticateRequest(auth_bytes=b"x"), 0)
        assert resp.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert c.metadata([], version=12).cluster_id


@pytest.fixture(scope="module")
def reauth_broker(module_broker_factory):
    b = module_broker_factory(tls=True, sasl="SCRAM-SHA-256,SCRAM-SHA-512",
                              **{"connections.max.reauth.ms": 1500, "connection.failed.authentication.delay.ms": 0})
    for user in ("alice", "bob"):
        scram_user(b, user, PASSWORD, "SCRAM-SHA-512")
        scram_user(b, user, PASSWORD, "SCRAM-SHA-256")
    return b


def _past(seconds: float) -> None:
    deadline = Deadline(seconds)
    wait_for(deadline.expired, seconds + 5, message=f"{seconds}s to pass")


def test_session_lifetime_and_expiry(reauth_broker):
    with sasl_wire(reauth_broker) as c:
        final = scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512")
        assert final.session_lifetime_ms == 1500
        assert c.metadata([], version=12).cluster_id
        _past(1.6)
        with pytest.raises(ConnectionClosed):
            c.metadata([], version=12)


def test_reauthentication_keeps_the_connection(reauth_broker):
    with sasl_wire(reauth_broker) as c:
        scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512")
        _past(1.6)
        final = scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512")
        assert final.session_lifetime_ms == 1500
        assert c.metadata([], version=12).cluster_id


def test_reauthentication_as_another_principal_is_refused(reauth_broker):
    with sasl_wire(reauth_broker) as c:
        scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512")
        with pytest.raises(AssertionError, match="Cannot change principals"):
            scram_login(c, "bob", PASSWORD, "SCRAM-SHA-512")
        assert c.closed_within(5)


def test_reauthentication_with_another_mechanism_is_refused(reauth_broker):
    with sasl_wire(reauth_broker) as c:
        scram_login(c, "alice", PASSWORD, "SCRAM-SHA-512")
        with pytest.raises(AssertionError, match="not supported for re-authentication"):
            scram_login(c, "alice", PASSWORD, "SCRAM-SHA-256")
        assert c.closed_within(5)


def _produce(topic: str):
    from keystream.broker.protocol.messages.produce_request import (  # noqa: PLC0415
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    data = PartitionProduceData(index=0, records=build_batch(simple_records(3)))
    return ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=topic, partition_data=[data])])


def test_sasl_plaintext_listener(broker_factory):
    """Without TLS: users are created over the PLAINTEXT listener (User:ANONYMOUS is the fixture's
    super user), then alice logs in on SASL_PLAINTEXT and is told that listener's address."""
    b = broker_factory(sasl="SCRAM-SHA-256")
    scram_user(b, "alice", PASSWORD, "SCRAM-SHA-256")
    with sasl_wire(b) as c, pytest.raises(ConnectionClosed):
        c.metadata([], version=12)
    with sasl_wire(b) as c:
        scram_login(c, "alice", PASSWORD, "SCRAM-SHA-256")
        (endpoint,) = c.metadata([], version=12).brokers
        assert (endpoint.host, endpoint.port) == (b.host, b.sasl_port)
