"""Principals of TLS clients (subject DN, mapping rules, ANONYMOUS) and start-up errors that name the
property at fault."""

from __future__ import annotations

import pytest

from tests.fixtures.broker import BrokerProcess
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only


def _log(b) -> str:
    return b.log_path.read_text(encoding="utf-8", errors="replace")


def _principal_of(b, identity=None, *, certificate=True) -> str:
    mark = len(_log(b))
    with b.tls.wire(b.bootstrap, context=b.tls.ssl_context(identity, certificate=certificate)) as c:
        assert 18 in c.api_versions(3)
    line = wait_for(lambda: next((ln for ln in _log(b)[mark:].splitlines() if "authenticated" in ln), None), 10,
                    message="the 'authenticated ... as' log line")
    return line.rsplit(" as ", 1)[1].strip()


def test_subject_dn_principal(broker_factory):
    b = broker_factory(tls=True, start=False)
    alice = b.tls.client("alice", common_name="alice", organization="acme")
    b.start()
    assert _principal_of(b, alice) == "User:CN=alice,O=acme"
    assert _principal_of(b) == "User:CN=admin"


def test_mapping_rules(broker_factory):
    b = broker_factory(tls=True, start=False, **{
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),O=acme$/$1@acme/L,DEFAULT"})
    alice = b.tls.client("alice", common_name="Alice", organization="acme")
    other = b.tls.client("carol", common_name="carol", organization="other")
    b.start()
    assert _principal_of(b, alice) == "User:alice@acme"
    assert _principal_of(b, other) == "User:CN=carol,O=other"


def test_no_matching_rule_refuses_the_client(broker_factory):
    b = broker_factory(tls=True, **{"ssl.principal.mapping.rules": "RULE:^CN=admin$/admin/"})
    carol = b.tls.client("carol")
    mark = len(_log(b))
    try:
        with b.tls.wire(b.bootstrap, carol, timeout=5) as c:
            c.api_versions(3)
    except Exception:  # noqa: BLE001
        pass
    else:
        raise AssertionError("a client no rule maps must not be served")
    wait_for(lambda: "no ssl.principal.mapping.rules entry applies to CN=carol" in _log(b)[mark:], 10,
             message="the refusal log line")


def test_requested_client_auth_without_certificate_is_anonymous(broker_factory):
    b = broker_factory(tls=True, **{"ssl.client.auth": "requested"})
    assert _principal_of(b, certificate=False) == "User:ANONYMOUS"
    assert _principal_of(b) == "User:CN=admin"


@pytest.mark.parametrize(("override", "prop"), [
    ({"ssl.keystore.location": "/nonexistent/broker.pem"}, "ssl.keystore.location"),
    ({"ssl.truststore.location": "/nonexistent/ca.crt"}, "ssl.truststore.location"),
    ({"ssl.crl.location": "/nonexistent/crl.pem"}, "ssl.crl.location"),
    ({"ssl.principal.mapping.rules": "RULE:^CN=(.*)$/$1/X"}, "ssl.principal.mapping.rules"),
])
def test_start_up_errors_name_the_property(tmp_path, override, prop):
    b = BrokerProcess(tmp_path / "b", tls=True, **override)
    with pytest.raises(AssertionError, match="exited with code"):
        b.start(timeout=15)
    log = _log(b)
    assert prop in log
    assert "Traceback" not in log
