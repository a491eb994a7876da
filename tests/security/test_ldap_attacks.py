"""Attacks on SASL/PLAIN checked against LDAP, with a real slapd: bad credentials, filter and DN
injection, oversized and malformed input, a directory that dies or hangs, secrets in logs.

Every refusal must be SaslAuthenticationError with one and the same message, so a client cannot
tell an unknown user from a wrong password or learn anything about the directory.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from keystream.auth.ldap import LdapDirectory
from keystream.auth.principal import Principal
from keystream.auth.sasl import SaslAuthenticationError
from keystream.auth.sasl.plain import FAILED, PlainMechanism
from keystream.certs import init_ca
from keystream.config import Config
from tests.fixtures.broker import free_port
from tests.fixtures.slapd import PASSWORDS, PEOPLE, SERVICE_PASSWORD
from tests.fixtures.waiting import wait_for

ALICE = PASSWORDS["alice"]
MIB = 1024 * 1024
TIMEOUT_MS = 1000
MARGIN_S = 1.5  # scheduling slack on a busy 2-core machine, on top of ldap.timeout.ms


@pytest.fixture
def make_plain():
    """`make_plain(slapd, **ldap_overrides)` -> PlainMechanism; closed at the end."""
    made: list[PlainMechanism] = []

    def make(server, **overrides) -> PlainMechanism:
        made.append(PlainMechanism(LdapDirectory(Config(server.properties(**overrides)))))
        return made[-1]

    yield make
    for m in made:
        m.close()


def plain(mechanism: PlainMechanism, message: bytes):
    """One PLAIN exchange: the client's single message; returns the Authenticated result."""
    async def run():
        exchange = mechanism.new_exchange("127.0.0.1")
        assert await exchange.step(message) == b""
        return exchange.result

    return asyncio.run(run())


def msg(user: str | bytes, password: str | bytes, authzid: str | bytes = b"") -> bytes:
    enc = [p.encode() if isinstance(p, str) else p for p in (authzid, user, password)]
    return b"\0".join(enc)


def assert_refused(mechanism: PlainMechanism, message: bytes) -> None:
    with pytest.raises(SaslAuthenticationError) as caught:
        plain(mechanism, message)
    assert str(caught.value) == FAILED


BAD_CREDENTIALS = {
    "wrong password": msg("alice", "not-" + ALICE),
    "another user's password": msg("alice", PASSWORDS["bob"]),
    "unknown user": msg("mallory", ALICE),
    "empty user": msg("", ALICE),
    "empty password": msg("alice", ""),  # would be an unauthenticated bind, which LDAP "accepts"
    "filter injection *)(uid=*": msg("*)(uid=*", ALICE),
    "filter injection admin)(|(uid=*": msg("admin)(|(uid=*", ALICE),
    "wildcard *": msg("*", ALICE),
    "wildcard prefix": msg("ali*", ALICE),
    "escaped-looking": msg("\\61lice", ALICE),
    "DN injection, full DN": msg(f"uid=alice,{PEOPLE}", ALICE),
    "DN injection, tail": msg(f"alice,{PEOPLE}", ALICE),
    "ambiguous user (two entries)": msg("dave", PASSWORDS["dave"]),
    "loose match (trailing space)": msg("alice ", ALICE),
    "1 MiB user": msg("a" * MIB, ALICE),
    "1 MiB password": msg("alice", "p" * MIB),
    "non-UTF-8 user": msg(b"al\xffice", ALICE),
    "non-UTF-8 password": msg("alice", b"\xc3\x28"),
    "authzid of another user": msg("alice", ALICE, authzid="bob"),
    "no separators": ALICE.encode(),
    "one separator": b"alice\0" + ALICE.encode(),
    "NUL in password": b"\0alice\0" + ALICE.encode() + b"\0x",
    "empty message": b"",
}


@pytest.mark.parametrize("message", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_credentials_are_refused_alike(slapd, make_plain, message, caplog):
    with caplog.at_level(logging.DEBUG, logger="keystream.auth.ldap"):
        assert_refused(make_plain(slapd), message)
    assert "unavailable" not in caplog.text  # a refusal, not a directory error (e.g. a broken filter)


@pytest.mark.parametrize("user", ["*", "ali*", "*)(uid=*", "admin)(|(uid=*", "alice)(uid=bob", "\\2a"])
def test_filter_metacharacters_are_matched_literally(slapd, make_plain, user, caplog):
    """Escaped, the name is one literal value that no entry has; unescaped, these would match
    several entries, match alice by wildcard, or break the filter."""
    with caplog.at_level(logging.INFO, logger="keystream.auth.ldap"):
        assert_refused(make_plain(slapd), msg(user, ALICE))
    assert "no such user" in caplog.text


@pytest.mark.parametrize(("user", "password"), [
    ("alice\0", ALICE), ("alice", ALICE + "\0"), ("al\udcffice", ALICE), ("alice", "x" * 1025), ("", ""),
    ("alice", ""), ("", ALICE),
])
def test_bad_input_never_reaches_the_directory(slapd, user, password, caplog):
    """The directory checks its own input (NUL, lone surrogates, > 1 KiB, empty fields) before
    any LDAP call: pointed at a closed port, it refuses without ever noticing the server is gone."""
    d = LdapDirectory(Config(slapd.properties(**{"ldap.url": f"ldap://127.0.0.1:{free_port()}"})))
    try:
        with caplog.at_level(logging.DEBUG, logger="keystream.auth.ldap"), \
                pytest.raises(SaslAuthenticationError, match=FAILED):
            asyncio.run(d.authenticate(user, password))
    finally:
        d.close()
    assert "unavailable" not in caplog.text


def test_good_login_after_attacks_and_authzid_forms(slapd, make_plain):
    """The same mechanism still logs alice in (no negative caching; authzid empty or her own)."""
    m = make_plain(slapd)
    for message in BAD_CREDENTIALS.values():
        with pytest.raises(SaslAuthenticationError):
            plain(m, message)
    assert plain(m, msg("alice", ALICE)).principal == Principal("User", "alice")
    assert plain(m, msg("alice", ALICE, authzid="alice")).groups == (Principal("Group", "producers"),)


def test_plain_has_exactly_one_step(slapd, make_plain):
    async def run():
        exchange = make_plain(slapd).new_exchange("127.0.0.1")
        await exchange.step(msg("alice", ALICE))
        with pytest.raises(SaslAuthenticationError, match=FAILED):
            await exchange.step(msg("bob", PASSWORDS["bob"]))
        return exchange.result

    assert asyncio.run(run()).principal == Principal("User", "alice")


def test_untrusted_directory_certificate_fails_closed(slapd, make_plain, tmp_path, caplog):
    other_ca = init_ca(tmp_path / "other-ca").cert
    for url in (slapd.url, slapd.ldaps_url):
        m = make_plain(slapd, **{"ldap.url": url, "ldap.tls.ca.location": str(other_ca), "ldap.cache.ttl.ms": 0})
        with caplog.at_level(logging.WARNING, logger="keystream.auth.ldap"):
            assert_refused(m, msg("alice", ALICE))
    assert caplog.text.count("unavailable") == 2


def timed_refusal(mechanism: PlainMechanism, message: bytes) -> float:
    start = time.monotonic()
    assert_refused(mechanism, message)
    return time.monotonic() - start


def test_directory_down_fails_fast_and_recovers(private_slapd, make_plain, caplog):
    m = make_plain(private_slapd, **{"ldap.timeout.ms": TIMEOUT_MS, "ldap.cache.ttl.ms": 0})
    assert plain(m, msg("alice", ALICE)).principal == Principal("User", "alice")
    with caplog.at_level(logging.INFO, logger="keystream.auth.ldap"):
        private_slapd.stop()
        for _ in range(3):
            assert timed_refusal(m, msg("bob", PASSWORDS["bob"])) < TIMEOUT_MS / 1000 + MARGIN_S
        private_slapd.start()
        assert plain(m, msg("bob", PASSWORDS["bob"])).principal == Principal("User", "bob")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()  # one line per outage
    assert "answers again" in caplog.text


def test_hung_directory_fails_in_bounded_time_for_many_logins(private_slapd, make_plain):
    """SIGSTOP: TCP connects, nothing answers. Many concurrent logins (more than the worker
    threads) all fail within the bound instead of queueing behind each other; then it recovers."""
    m = make_plain(private_slapd, **{"ldap.timeout.ms": TIMEOUT_MS, "ldap.cache.ttl.ms": 0})

    async def many(n: int) -> list[float]:
        async def one() -> float:
            start = time.monotonic()
            with pytest.raises(SaslAuthenticationError, match=FAILED):
                await m.new_exchange("127.0.0.1").step(msg("carol", PASSWORDS["carol"]))
            return time.monotonic() - start

        return await asyncio.gather(*(one() for _ in range(n)))

    private_slapd.pause()
    try:
        elapsed = asyncio.run(many(12))
    finally:
        private_slapd.resume()
    assert max(elapsed) < TIMEOUT_MS / 1000 + MARGIN_S, elapsed
    result = wait_for(lambda: _try(m, msg("carol", PASSWORDS["carol"])), 15, message="logins to recover")
    assert result.principal == Principal("User", "carol")


def _try(mechanism: PlainMechanism, message: bytes):
    try:
        return plain(mechanism, message)
    except SaslAuthenticationError:
        return None


def test_passwords_never_reach_the_logs(private_slapd, make_plain, caplog):
    m = make_plain(private_slapd, **{"ldap.timeout.ms": TIMEOUT_MS})
    wrong = "wrong-Hh3-" + ALICE
    with caplog.at_level(logging.DEBUG):
        plain(m, msg("alice", ALICE))
        plain(m, msg("alice", ALICE))  # from the cache
        for message in (msg("alice", wrong), msg("bob", ALICE), msg(ALICE, ALICE), msg("carol", "x" * MIB)):
            with pytest.raises(SaslAuthenticationError):
                plain(m, message)
        private_slapd.stop()
        with pytest.raises(SaslAuthenticationError):
            plain(m, msg("bob", PASSWORDS["bob"]))
    text = caplog.text
    assert "refused for user 'alice'" in text and "unavailable" in text  # the failures were logged ...
    for secret in (*PASSWORDS.values(), wrong, SERVICE_PASSWORD):
        assert secret not in text  # ... but no password, not even one typed as a user name
