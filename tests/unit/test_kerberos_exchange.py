"""SASL/GSSAPI server exchange against a real MIT KDC: kafka-python's own GSSAPI client and an
in-process client playing the Kafka steps authenticate as User:<short name>, with the ticket's
remaining lifetime as the session limit; the factory refuses a keytab without the service key."""

from __future__ import annotations

import asyncio

import pytest
from kafka.net.sasl.gssapi import SaslMechanismGSSAPI

from keystream.auth.principal import Principal
from keystream.auth.sasl.kerberos import default_realm
from keystream.configdef import ConfigError
from tests.fixtures.kerberos_client import KafkaGssapiClient, authenticate

DAY_MS = 86_400_000


def test_alice_authenticates_as_user_alice(kdc, mechanism):
    mech = mechanism()
    assert mech.principal == "kafka/localhost@KEYSTREAM.TEST"
    result = asyncio.run(authenticate(mech.new_exchange("127.0.0.1"), KafkaGssapiClient(kdc, "alice")))
    assert result.principal == Principal("User", "alice")
    assert result.groups == ()
    assert 0 < result.lifetime_ms <= DAY_MS


def test_kafka_python_gssapi_client(kdc, mechanism, monkeypatch, tmp_path):
    """kafka-python's SaslMechanismGSSAPI, with the default credentials a real client process uses."""
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", str(kdc.keytab("bob")))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'bob.cc'}")
    client = SaslMechanismGSSAPI(sasl_kerberos_service_name="kafka", host="localhost")
    exchange = mechanism().new_exchange("127.0.0.1")

    async def run():
        while not client.is_done():
            client.receive(await exchange.step(client.auth_bytes()))

    asyncio.run(run())
    assert client.is_authenticated()
    assert exchange.result.principal == Principal("User", "bob")


def test_client_without_mutual_authentication_gets_the_offer_at_once(kdc, mechanism):
    """No AP-REP to send, so the server's first answer is the security-layer offer (as in Java)."""
    client = KafkaGssapiClient(kdc, "alice", mutual=False)
    exchange = mechanism().new_exchange("127.0.0.1")

    async def run():
        offer = await exchange.step(client.ap_req())
        assert client.ctx.complete
        assert await exchange.step(client.choose(offer)) == b""

    asyncio.run(run())
    assert exchange.result.principal == Principal("User", "alice")


def test_authzid_is_ignored(kdc, mechanism):
    result = asyncio.run(authenticate(mechanism().new_exchange("127.0.0.1"), KafkaGssapiClient(kdc, "alice"),
                                      authzid=b"bob"))
    assert result.principal == Principal("User", "alice")


def test_rules_map_the_name(kdc, mechanism):
    mech = mechanism(sasl_kerberos_principal_to_local_rules="RULE:[1:$1@$0](alice@KEYSTREAM.TEST)s/.*/ops/")
    result = asyncio.run(authenticate(mech.new_exchange("127.0.0.1"), KafkaGssapiClient(kdc, "alice")))
    assert result.principal == Principal("User", "ops")


def test_session_lifetime_follows_the_ticket(kdc, mechanism, tmp_path):
    ccache = kdc.kinit("alice", tmp_path / "a.cc", lifetime="90s")
    result = asyncio.run(authenticate(mechanism().new_exchange("127.0.0.1"),
                                      KafkaGssapiClient(kdc, "alice", ccache=ccache)))
    assert 0 < result.lifetime_ms <= 90_000


def test_default_realm_comes_from_krb5_conf(kdc):
    assert default_realm() == "KEYSTREAM.TEST"


def test_default_principal_is_service_slash_advertised_sasl_host(kdc, mechanism):
    mech = mechanism(sasl_kerberos_principal=None, listeners="SASL_PLAINTEXT://localhost:0",
                     sasl_kerberos_service_name="kafka")
    assert mech.principal == "kafka/localhost@KEYSTREAM.TEST"


def test_keytab_without_the_service_key_fails_start_up(kdc, mechanism):
    with pytest.raises(ConfigError, match="sasl.kerberos.keytab"):
        mechanism(sasl_kerberos_keytab=str(kdc.keytab("alice")))
    with pytest.raises(ConfigError, match="sasl.kerberos.keytab"):
        mechanism(sasl_kerberos_keytab=str(kdc.dir / "missing.keytab"))
