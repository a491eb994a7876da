"""LdapDirectory against a real slapd: principals, LDAP groups, TLS both ways, the login cache."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from keystream.auth.ldap import LdapDirectory
from keystream.auth.principal import Principal
from keystream.auth.sasl import SaslAuthenticationError
from keystream.config import Config
from keystream.configdef import ConfigError
from tests.fixtures.slapd import PASSWORDS
from tests.fixtures.waiting import wait_for


@pytest.fixture
def make_directory():
    """`make_directory(slapd, **ldap_overrides)`; every directory made is closed at the end."""
    made: list[LdapDirectory] = []

    def make(server, **overrides) -> LdapDirectory:
        made.append(LdapDirectory(Config(server.properties(**overrides))))
        return made[-1]

    yield make
    for d in made:
        d.close()


def login(directory: LdapDirectory, user: str, password: str | None = None):
    return asyncio.run(directory.authenticate(user, PASSWORDS.get(user, "") if password is None else password))


def refused(directory: LdapDirectory, user: str, password: str | None = None) -> bool:
    try:
        login(directory, user, password)
    except SaslAuthenticationError:
        return True
    return False


def groups(*names: str) -> tuple[Principal, ...]:
    return tuple(Principal("Group", n) for n in names)


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_users_get_their_principal_and_groups(slapd, make_directory, scheme):
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    d = make_directory(slapd, ldap_url=url)
    alice, bob, carol = (login(d, u) for u in ("alice", "bob", "carol"))
    assert alice.principal == Principal("User", "alice") and alice.groups == groups("producers")
    # bob is a `member` of producers (groupOfNames) and a `memberUid` of consumers (posixGroup)
    assert bob.principal == Principal("User", "bob") and bob.groups == groups("consumers", "producers")
    assert carol.groups == groups("admins", "consumers")
    assert alice.lifetime_ms is None


def test_every_bind_travels_encrypted(slapd, make_directory):
    """slapd's own log: each bind the broker made (service and users) ran at a TLS ssf, never in clear."""
    for url in (slapd.url, slapd.ldaps_url):
        login(make_directory(slapd, ldap_url=url, **{"ldap.cache.ttl.ms": 0}), "alice")

    def binds() -> list[str]:
        lines = slapd.log_path.read_text().splitlines()
        found = [line for line in lines if " mech=SIMPLE " in line and 'dn="cn=admin,' not in line]
        return found if len([b for b in found if "uid=alice" in b]) >= 2 else []

    found = wait_for(binds, 5, message="slapd to log the binds")
    assert all(re.search(r" ssf=(\d+)", b) and int(re.search(r" ssf=(\d+)", b)[1]) >= 128 for b in found), found


@pytest.mark.parametrize(("attributes", "expected"), [
    ("member", ("producers",)), ("memberUid", ("consumers",)), ("member,memberUid", ("consumers", "producers")),
])
def test_group_member_attribute_decides_dn_or_name(slapd, make_directory, attributes, expected):
    d = make_directory(slapd, **{"ldap.group.member.attribute": attributes, "ldap.cache.ttl.ms": 0})
    assert login(d, "bob").groups == groups(*expected)


def test_group_name_attribute_and_no_group_base(slapd, make_directory):
    by_gid = make_directory(slapd, **{"ldap.group.member.attribute": "memberUid", "ldap.group.name.attribute": "gidNumber"})
    assert login(by_gid, "carol").groups == groups("20001")
    no_groups = make_directory(slapd, **{"ldap.group.search.base": None})
    assert login(no_groups, "bob").groups == ()


def test_principal_takes_the_directory_spelling(slapd, make_directory):
    """uid matches case-insensitively; `ALICE` must not become a principal an ACL on alice misses."""
    d = make_directory(slapd)
    assert login(d, "ALICE", PASSWORDS["alice"]).principal == Principal("User", "alice")


def test_cache_answers_while_the_directory_is_down(private_slapd, make_directory):
    d = make_directory(private_slapd, **{"ldap.cache.ttl.ms": 60000})
    first = login(d, "alice")
    private_slapd.stop()
    assert login(d, "alice") == first  # a hit: the directory is not asked
    assert refused(d, "alice", "not-" + PASSWORDS["alice"])  # a miss goes to the dead directory
    assert refused(d, "bob")  # never cached
    private_slapd.start()
    assert login(d, "bob").principal == Principal("User", "bob")


def test_cache_entries_expire(private_slapd, make_directory):
    d = make_directory(private_slapd, **{"ldap.cache.ttl.ms": 300})
    login(d, "alice")
    private_slapd.stop()
    wait_for(lambda: refused(d, "alice"), 5, message="the cached login to expire")


def test_cache_is_bounded_and_can_be_off(private_slapd, make_directory):
    lru = make_directory(private_slapd, **{"ldap.cache.max.entries": 1})
    off = make_directory(private_slapd, **{"ldap.cache.ttl.ms": 0})
    login(lru, "alice")
    login(lru, "bob")  # evicts alice
    login(off, "alice")
    assert len(lru.cache) == 1 and len(off.cache) == 0
    private_slapd.stop()
    assert not refused(lru, "bob")
    assert refused(lru, "alice")
    assert refused(off, "alice")


def test_cache_keeps_no_password(slapd, make_directory):
    d = make_directory(slapd)
    login(d, "alice")
    (entry,) = d.cache._entries.values()
    assert PASSWORDS["alice"].encode() not in entry.digest and len(entry.digest) == 32
    assert PASSWORDS["alice"] not in repr(entry)


def test_event_loop_runs_while_the_directory_hangs(private_slapd, make_directory):
    """The LDAP calls run in worker threads: the loop keeps ticking during a hung login."""
    d = make_directory(private_slapd, **{"ldap.timeout.ms": 800, "ldap.cache.ttl.ms": 0})

    async def scenario() -> int:
        ticks = 0
        task = asyncio.ensure_future(d.authenticate("alice", PASSWORDS["alice"]))
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(SaslAuthenticationError):
            task.result()
        return ticks

    private_slapd.pause()
    try:
        assert asyncio.run(scenario()) > 20
    finally:
        private_slapd.resume()


def test_service_bind_refused_is_logged_for_the_operator(slapd, make_directory, tmp_path, caplog):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-service-password\n")
    d = make_directory(slapd, **{"ldap.bind.password.file": str(wrong)})
    with caplog.at_level(logging.INFO, logger="keystream.auth.ldap"):
        assert refused(d, "alice")
    assert "ldap.bind.dn" in caplog.text and "not-the-service-password" not in caplog.text


@pytest.mark.parametrize(("overrides", "named"), [
    ({"ldap.url": "http://127.0.0.1:1"}, "ldap.url"),
    ({"ldap.url": None}, "ldap.url"),
    ({"ldap.user.search.base": None}, "ldap.user.search.base"),
    ({"ldap.bind.password.file": "/nonexistent/ldap.password"}, "ldap.bind.password.file"),
    ({"ldap.bind.password.file": None}, "ldap.bind.password.file"),
    ({"ldap.group.member.attribute": ""}, "ldap.group.member.attribute"),
    ({"ldap.timeout.ms": 0}, "ldap.timeout.ms"),
])
def test_bad_settings_fail_naming_the_property(slapd, overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        LdapDirectory(Config(slapd.properties(**overrides)))


def test_empty_service_password_file_is_refused(slapd, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        LdapDirectory(Config(slapd.properties(**{"ldap.bind.password.file": str(empty)})))
