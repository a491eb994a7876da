"""SASL/GSSAPI attacks against the server exchange, with a real MIT KDC: tickets for another service,
an expired ticket, a replayed AP-REQ, a principal the rules do not map, garbage tokens, and clients
that skip or bend RFC 4752's security-layer step. Each is refused with SaslAuthenticationError and
the client-facing message only; no token bytes reach any log."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time

import gssapi
import pytest

from keystream.auth.principal import Principal
from keystream.auth.sasl import SaslAuthenticationError
from keystream.auth.sasl.kerberos import FAILED
from tests.fixtures.kdc import OTHER_SERVICE, SERVICE
from tests.fixtures.kerberos_client import KafkaGssapiClient, authenticate
from tests.fixtures.waiting import wait_for


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def refused(coro) -> None:
    with pytest.raises(SaslAuthenticationError) as info:
        asyncio.run(coro)
    assert str(info.value) == FAILED


def assert_not_logged(logs, *tokens: bytes) -> None:
    """No token, nor a recognisable piece of it in any common rendering, is in the captured logs."""
    text = logs.text
    assert text, "nothing was logged: the refusal should be logged for the operator"
    for token in tokens:
        for piece in (token[:16], token[-16:]):
            for rendering in (piece.hex(), repr(piece)[2:-1], base64.b64encode(piece).decode()[:20]):
                assert rendering not in text, f"token bytes in the logs: {rendering}"


def test_ticket_for_another_service_not_in_the_keytab(kdc, mechanism, logs):
    client = KafkaGssapiClient(kdc, "alice", service="other@localhost")
    refused(mechanism().new_exchange("127.0.0.1").step(client.ap_req()))
    assert_not_logged(logs, *client.sent)


def test_ticket_for_another_service_whose_key_the_broker_holds(kdc, mechanism, logs, tmp_path):
    """Acceptor credentials are bound to the service principal, not to every key in the keytab."""
    both = tmp_path / "both.keytab"
    kdc.kadmin(f"ktadd -norandkey -k {both} {kdc.principal(SERVICE)} {kdc.principal(OTHER_SERVICE)}")
    mech = mechanism(sasl_kerberos_keytab=str(both))
    ok = asyncio.run(authenticate(mech.new_exchange("127.0.0.1"), KafkaGssapiClient(kdc, "alice")))
    assert ok.principal == Principal("User", "alice")  # the keytab itself is fine
    client = KafkaGssapiClient(kdc, "alice", service="other@localhost")
    refused(mech.new_exchange("127.0.0.1").step(client.ap_req()))
    assert_not_logged(logs, *client.sent)


def test_expired_ticket(kdc, mechanism, logs, tmp_path):
    """An AP-REQ made while the ticket was valid and presented after it expired (krb5 itself would
    still accept it within its 5-minute clock skew)."""
    ccache = kdc.kinit("alice", tmp_path / "short.cc", lifetime="2s")
    client = KafkaGssapiClient(kdc, "alice", ccache=ccache)
    ends = time.time() + client.creds.lifetime
    ap_req = client.ap_req()
    wait_for(lambda: time.time() > ends + 1, timeout=10, message="alice's 2-second ticket to expire")
    refused(mechanism().new_exchange("127.0.0.1").step(ap_req))
    assert_not_logged(logs, *client.sent)
    assert "expired" in logs.text


def test_replayed_ap_req(kdc, mechanism, logs):
    mech = mechanism()
    client = KafkaGssapiClient(kdc, "alice")
    ap_req = client.ap_req()
    asyncio.run(mech.new_exchange("127.0.0.1").step(ap_req))
    refused(mech.new_exchange("127.0.0.1").step(ap_req))
    assert_not_logged(logs, *client.sent)


def test_principal_not_mapped_by_the_rules(kdc, mechanism, logs):
    mech = mechanism(sasl_kerberos_principal_to_local_rules="RULE:[1:$1](bob), RULE:[2:$1]")
    client = KafkaGssapiClient(kdc, "alice")
    refused(authenticate(mech.new_exchange("127.0.0.1"), client))
    assert "alice@KEYSTREAM.TEST" in logs.text and "No rules apply" in logs.text
    assert_not_logged(logs, *client.sent)
    bob = asyncio.run(authenticate(mech.new_exchange("127.0.0.1"), KafkaGssapiClient(kdc, "bob")))
    assert bob.principal == Principal("User", "bob")


@pytest.mark.parametrize("token", [b"", b"\x00", b"`\x82\x02\xc5garbage", os.urandom(700), os.urandom(1 << 20)],
                         ids=["empty", "one-byte", "fake-gss-header", "random-ap-req-size", "random-1MiB"])
def test_garbage_first_token(mechanism, logs, token):
    exchange = mechanism().new_exchange("127.0.0.1")
    refused(exchange.step(token))
    refused(exchange.step(token))  # a failed exchange stays failed
    if token:
        assert_not_logged(logs, token)


def test_spnego_token_is_not_kerberos(kdc, mechanism, logs):
    target = gssapi.Name("kafka@localhost", gssapi.NameType.hostbased_service)
    client = KafkaGssapiClient(kdc, "alice")
    spnego = gssapi.SecurityContext(name=target, creds=client.creds, usage="initiate",
                                    mech=gssapi.Mechanism.from_sasl_name("SPNEGO"))
    token = spnego.step(None)
    refused(mechanism().new_exchange("127.0.0.1").step(token))
    assert_not_logged(logs, token)


async def _established(mech, client):
    exchange = mech.new_exchange("127.0.0.1")
    client.finish(await exchange.step(client.ap_req()))
    return exchange


def test_client_skips_the_empty_token(kdc, mechanism, logs):
    """The client answers the AP-REP with a security-layer choice instead of the empty token."""
    client = KafkaGssapiClient(kdc, "alice")

    async def run():
        exchange = await _established(mechanism(), client)
        await exchange.step(client.wrap(b"\x01\x01\x00\x00"))

    refused(run())
    assert_not_logged(logs, *client.sent)


def test_client_stops_after_the_empty_token(kdc, mechanism):
    """Without the client's choice there is no result: nothing is authenticated."""
    client = KafkaGssapiClient(kdc, "alice")

    async def run():
        exchange = await _established(mechanism(), client)
        await exchange.step(b"")
        return exchange

    assert asyncio.run(run()).result is None


@pytest.mark.parametrize("layer", [0, 2, 4, 7])
def test_client_picks_a_security_layer_other_than_none(kdc, mechanism, logs, layer):
    client = KafkaGssapiClient(kdc, "alice")

    async def run():
        exchange = await _established(mechanism(), client)
        try:
            await exchange.step(client.choose(await exchange.step(b""), layer=layer))
        finally:
            assert exchange.result is None

    refused(run())
    assert f"security layer {layer}" in logs.text
    assert_not_logged(logs, *client.sent)


@pytest.mark.parametrize("answer", ["short", "unwrapped", "garbage"])
def test_bad_security_layer_answer(kdc, mechanism, logs, answer):
    client = KafkaGssapiClient(kdc, "alice")

    async def run():
        exchange = await _established(mechanism(), client)
        offer = await exchange.step(b"")
        plain = bytes([1]) + client.ctx.unwrap(offer).message[1:4]
        token = {"short": lambda: client.wrap(b"\x01\x01"), "unwrapped": lambda: plain,
                 "garbage": lambda: os.urandom(47)}[answer]()
        await exchange.step(token)

    refused(run())
    assert_not_logged(logs, *client.sent)


def test_no_step_after_success(kdc, mechanism):
    client = KafkaGssapiClient(kdc, "alice")
    exchange = mechanism().new_exchange("127.0.0.1")
    assert asyncio.run(authenticate(exchange, client)).principal == Principal("User", "alice")
    refused(exchange.step(b""))
