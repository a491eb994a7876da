"""SASL/PLAIN against a real slapd, attacked through a real broker: LDAP filter and DN injection in
the user name, unknown users and wrong passwords all answered alike (SASL_AUTHENTICATION_FAILED,
one message); the directory stopped or hung mid-run (sessions authenticated before keep producing,
new logins fail within a bound and recover); no password in the broker's log; and PLAIN refused on a
listener without TLS unless explicitly allowed, at start-up."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from keystream.broker.errors import ErrorCode
from keystream.broker.protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from keystream.broker.protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from tests.fixtures.clients import admin, create_topic
from tests.fixtures.records import build_batch, simple_records
from tests.fixtures.sasl import confluent_sasl, sasl_wire
from tests.fixtures.slapd import PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import unique_name

pytestmark = pytest.mark.keystream_only

DELAY_MS = 200  # connection.failed.authentication.delay.ms
TIMEOUT_MS = 1000  # ldap.timeout.ms in the outage tests
MARGIN_S = 2.0  # scheduling slack on a busy 2-core machine
FAILED = "Authentication failed: invalid credentials"
ALICE = PASSWORDS["alice"]
WRONG = "wrong-Jd4-" + ALICE  # distinctive too, so the log check can look for it


@pytest.fixture(scope="module")
def broker(module_broker_factory, slapd):
    return module_broker_factory(tls=True, sasl="PLAIN", **slapd.properties(),
                                 **{"connection.failed.authentication.delay.ms": DELAY_MS,
                                    "super.users": "User:CN=admin;User:alice"})


def plain_login(client, user: str, password: str, *, version: int = 2):
    """SaslHandshake v1 PLAIN + one SaslAuthenticate; returns (response, seconds it took)."""
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    started = time.monotonic()
    token = b"\0" + user.encode() + b"\0" + password.encode()
    response = client.request(SaslAuthenticateRequest(auth_bytes=token), version, timeout=30)
    return response, time.monotonic() - started


def refused(broker, user: str, password: str) -> tuple[str, float]:
    """Asserts the login is refused with SASL_AUTHENTICATION_FAILED and then closed; returns
    (the message, seconds until the answer)."""
    with sasl_wire(broker, timeout=30) as c:
        response, elapsed = plain_login(c, user, password)
        assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED, response
        assert response.auth_bytes == b""
        assert c.closed_within(5)
    return response.error_message, elapsed


def logs_in(broker, user: str, password: str) -> bool:
    with sasl_wire(broker) as c:
        response, _ = plain_login(c, user, password)
        return response.error_code == 0


INJECTIONS = {
    "filter *)(uid=*": "*)(uid=*",
    "filter admin)(|(uid=*": "admin)(|(uid=*",
    "filter alice)(uid=*": "alice)(uid=*",
    "wildcard ali*": "ali*",
    "full DN": f"uid=alice,{PEOPLE}",
    "DN tail": f"alice,{PEOPLE}",
    "service DN": SERVICE_DN,
}


@pytest.mark.parametrize("user", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_injected_user_names_are_refused_like_a_wrong_password(broker, user):
    """With alice's real password: a filter that matched her by wildcard, or a DN bound directly,
    would log in. Each gets exactly what a wrong password gets."""
    wrong_password, _ = refused(broker, "alice", WRONG)
    injected, _ = refused(broker, user, ALICE)
    assert injected == wrong_password == FAILED


def test_unknown_user_and_wrong_password_get_the_same_answer(broker):
    unknown, t_unknown = refused(broker, "mallory", ALICE)
    wrong, t_wrong = refused(broker, "alice", WRONG)
    assert unknown == wrong == FAILED
    # Both wait out the failure delay before answering.
    assert min(t_unknown, t_wrong) >= DELAY_MS / 1000 * 0.9, (t_unknown, t_wrong)


def _directory_work(slapd, login) -> dict[str, int]:
    """What `login()` cost the directory, from slapd's stats log: connections, simple binds and
    binds refused with invalidCredentials (err=49)."""
    def settled_log(start: int = 0) -> str | None:
        """The log from `start` once every connection in it that slapd accepted is closed again."""
        text = slapd.log_path.read_text(errors="replace")[start:]
        return text if text.count(" ACCEPT from ") == text.count(" closed") else None

    start = len(wait_for(settled_log, 10, message="slapd to go idle"))
    login()
    part = wait_for(lambda: (t := settled_log(start)) and " ACCEPT from " in t and t, 10,
                    message="the login's LDAP connections to close")
    return {"connections": part.count(" ACCEPT from "), "binds": part.count(" method=128"),
            "refused binds": part.count("RESULT tag=97 err=49 ")}


def test_unknown_user_costs_the_directory_what_a_wrong_password_costs(broker, slapd):
    """Timing: an unknown name used to skip the user bind (1.9 ms against 3.5 ms for a wrong
    password, cache off); now it binds a decoy DN on its own connection, so both do the same work."""
    wrong = _directory_work(slapd, lambda: refused(broker, "alice", WRONG))
    assert wrong == {"connections": 2, "binds": 2, "refused binds": 1}
    for user in ("mallory", "*)(uid=*", "dave"):  # unknown, injected, ambiguous (two entries)
        assert _directory_work(slapd, lambda u=user: refused(broker, u, ALICE)) == wrong, user


def test_the_service_password_does_not_log_in_as_anyone(broker):
    assert refused(broker, "keystream", SERVICE_PASSWORD)[0] == FAILED
    assert refused(broker, "alice", SERVICE_PASSWORD)[0] == FAILED


def test_alice_still_logs_in_and_acts_after_the_attacks(broker):
    """No lockout and no negative caching: the real password works, and the session can produce."""
    topic = unique_name("after")
    create_topic(broker, topic)
    with sasl_wire(broker) as c:
        response, _ = plain_login(c, "alice", ALICE)
        assert response.error_code == 0 and response.session_lifetime_ms == 0, response
        assert c.produce(topic, 0, build_batch(simple_records(2))).error_code == 0


def test_no_password_in_the_broker_log(broker):
    """Runs after the tests above: the failures were logged, but no password used in this module
    (nor the service bind password read from ldap.bind.password.file) is in the broker's log."""
    for user in ("alice", "bob", "carol"):
        assert logs_in(broker, user, PASSWORDS[user])
    refused(broker, ALICE, ALICE)  # a password typed as the user name
    text = broker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "SASL PLAIN authentication from 127.0.0.1 on listener SASL_SSL failed" in text
    assert "SASL PLAIN authenticated User:bob" in text
    for secret in (*PASSWORDS.values(), WRONG, SERVICE_PASSWORD):
        assert secret not in text


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_directory_outage_mid_run(broker_factory, private_slapd, outage):
    """slapd stopped (connections refused) or hung (SIGSTOP: connections accepted, never answered):
    a producer that logged in before keeps producing, new logins fail closed within ldap.timeout.ms
    plus the failure delay, the broker logs one clear line, and logins succeed again once slapd is back."""
    b = broker_factory(tls=True, sasl="PLAIN",
                       **private_slapd.properties(**{"ldap.timeout.ms": TIMEOUT_MS, "ldap.cache.ttl.ms": 0}),
                       **{"connection.failed.authentication.delay.ms": DELAY_MS, "super.users": "User:CN=admin"})
    topic = unique_name("outage")
    create_topic(b, topic)
    acl = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "Group:producers", "*",
                     AclOperation.WRITE, AclPermissionType.ALLOW)
    client = admin(b)
    for future in client.create_acls([acl], request_timeout=30).values():
        assert future.result() is None

    producer = Producer(confluent_sasl(b, "alice", ALICE, "PLAIN", **{"linger.ms": 0}))
    wire = sasl_wire(b, timeout=30)
    try:
        assert plain_login(wire, "bob", PASSWORDS["bob"])[0].error_code == 0
        producer.produce(topic, b"before")
        assert producer.flush(30) == 0

        if outage == "stopped":
            private_slapd.stop()
        else:
            private_slapd.pause()
        try:
            for user in ("carol", "bob"):
                message, elapsed = refused(b, user, PASSWORDS[user])
                assert message == FAILED
                assert elapsed < (TIMEOUT_MS + DELAY_MS) / 1000 + MARGIN_S, elapsed
            # Sessions authenticated before the outage never ask the directory again.
            for i in range(3):
                producer.produce(topic, f"during-{i}".encode())
                assert producer.flush(30) == 0
                assert wire.produce(topic, 0, build_batch(simple_records(1))).error_code == 0
        finally:
            if outage == "stopped":
                private_slapd.start()
            else:
                private_slapd.resume()

        wait_for(lambda: logs_in(b, "carol", PASSWORDS["carol"]), 20, message="PLAIN logins to recover")
        producer.produce(topic, b"after")
        assert producer.flush(30) == 0
    finally:
        wire.close()
    log = b.log_path.read_text(encoding="utf-8", errors="replace")
    assert log.count("PLAIN logins fail until it answers") == 1, log  # one warning per outage
    assert "answers again" in log
    for secret in (*PASSWORDS.values(), SERVICE_PASSWORD):
        assert secret not in log


def test_plain_without_tls_is_refused_at_start_up(broker_factory, slapd):
    """A SASL_PLAINTEXT listener offering PLAIN would carry directory passwords in clear text: the
    broker refuses to start, naming the listener (config-level checks: tests/unit/test_sasl_config.py);
    with sasl.mechanism.plain.allow.insecure=true it starts and PLAIN works there."""
    b = broker_factory(start=False, sasl="PLAIN", **slapd.properties())
    assert b.sasl_protocol == "SASL_PLAINTEXT"
    with pytest.raises(AssertionError, match="exited with code"):
        b.start(timeout=20)
    log = b.tail_log(50)
    assert "PLAIN on the SASL_PLAINTEXT listener SASL_PLAINTEXT" in log, log
    assert "sasl.mechanism.plain.allow.insecure" in log, log

    allowed = broker_factory(sasl="PLAIN", **slapd.properties(), **{"sasl.mechanism.plain.allow.insecure": "true"})
    assert logs_in(allowed, "alice", ALICE)
