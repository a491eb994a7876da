"""Checks SASL/PLAIN passwords against an LDAP directory and turns its groups into `Group:` principals.

The event loop never waits on the directory: python-ldap calls run in a small thread pool, and each
login is bounded by `ldap.timeout.ms` as a whole, so when the directory is down or hangs logins fail
closed in bounded time (one warning when it goes away, one info line when it is back) while the
sessions already authenticated keep working. Input is checked before anything reaches the
directory: an empty password would be an anonymous bind that "succeeds", and the filter value is
escaped. Every refusal gives the client the same message, whether or not the user exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from keystream.auth.ldap_bind import LdapSettings, Refused, Unavailable, login
from keystream.auth.ldap_cache import LoginCache
from keystream.auth.principal import Principal
from keystream.auth.sasl import Authenticated, SaslAuthenticationError
from keystream.auth.sasl.plain import FAILED
from keystream.configdef import ConfigError

log = logging.getLogger(__name__)

MAX_FIELD_BYTES = 1024  # longest user name or password accepted (UTF-8 bytes)
LDAP_THREADS = 4  # concurrent logins against the directory; more wait in the pool's queue
HASH_THREADS = 2  # the cache's password hashing, apart so cache hits never queue behind the directory


def settings_from_config(config: Mapping[str, Any]) -> LdapSettings:
    """The ldap.* properties of a broker Config, checked; the service password is read here."""
    url = config.get("ldap.url")
    if not url or not url.lower().startswith(("ldap://", "ldaps://")):
        raise ConfigError(f"Invalid value {url!r} for configuration ldap.url: "
                          "expected ldaps://host:port or ldap://host:port (StartTLS)")
    if not config.get("ldap.user.search.base"):
        raise ConfigError("Missing value for configuration ldap.user.search.base (needed by ldap.url)")
    bind_dn, password_file = config.get("ldap.bind.dn"), config.get("ldap.bind.password.file")
    if (bind_dn is None) != (password_file is None):
        raise ConfigError("ldap.bind.dn and ldap.bind.password.file are set together or not at all")
    return LdapSettings(
        url=url,
        bind_dn=bind_dn,
        bind_password=None if password_file is None else _read_password(password_file),
        user_base=config["ldap.user.search.base"],
        user_attribute=config["ldap.user.name.attribute"],
        group_base=config.get("ldap.group.search.base"),
        group_name_attribute=config["ldap.group.name.attribute"],
        group_member_attributes=tuple(config["ldap.group.member.attribute"]),
        ca_file=config.get("ldap.tls.ca.location"),
        timeout_s=config["ldap.timeout.ms"] / 1000,
    )


def _read_password(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Invalid value {path!r} for configuration ldap.bind.password.file: {exc}") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError(f"Invalid value {path!r} for configuration ldap.bind.password.file: the file is empty")
    return password


def check_credentials(username: str, password: str) -> None:
    """Refuse what must never reach the directory: empty fields (an empty password is an
    unauthenticated bind), oversized ones, NUL bytes and text that is not valid UTF-8."""
    for value in (username, password):
        if not value or "\0" in value:
            raise SaslAuthenticationError(FAILED)
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates, e.g. from surrogateescape-decoded bytes
            raise SaslAuthenticationError(FAILED) from None
        if size > MAX_FIELD_BYTES:
            raise SaslAuthenticationError(FAILED)


class LdapDirectory:
    """`await authenticate(user, password)` -> Authenticated(User:<name>, groups=(Group:<cn>, ...))."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.settings = settings_from_config(config)
        self.cache = LoginCache(config["ldap.cache.ttl.ms"] / 1000, config["ldap.cache.max.entries"])
        self._ldap = ThreadPoolExecutor(LDAP_THREADS, thread_name_prefix="ldap")
        self._hash = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="ldap-cache")
        self._down = False

    async def authenticate(self, username: str, password: str) -> Authenticated:
        check_credentials(username, password)
        loop = asyncio.get_running_loop()
        digest = b""
        if self.cache.enabled:
            digest = await loop.run_in_executor(self._hash, self.cache.digest, username, password)
            cached = self.cache.lookup(username, digest)
            if cached is not None:
                return cached
        try:
            name, groups = await asyncio.wait_for(
                loop.run_in_executor(self._ldap, login, self.settings, username, password),
                self.settings.timeout_s)
        except Refused as exc:
            self._reachable()
            who = _shown(username) if exc.user_known else "(name not shown: no single entry has it)"
            log.info("ldap: login refused for user %s: %s", who, exc)
            raise SaslAuthenticationError(FAILED) from None
        except Unavailable as exc:
            self._unreachable(str(exc))
            raise SaslAuthenticationError(FAILED) from None
        except TimeoutError:
            self._unreachable(f"no answer within {self.settings.timeout_s * 1000:.0f} ms")
            raise SaslAuthenticationError(FAILED) from None
        self._reachable()
        result = Authenticated(Principal("User", name), tuple(Principal("Group", g) for g in groups))
        self.cache.store(username, digest, result)
        return result

    def _unreachable(self, reason: str) -> None:
        """One warning when the directory goes away; while it stays away, debug lines only."""
        level = logging.DEBUG if self._down else logging.WARNING
        log.log(level, "ldap: directory %s unavailable, PLAIN logins fail until it answers: %s",
                self.settings.url, reason)
        self._down = True

    def _reachable(self) -> None:
        if self._down:
            log.info("ldap: directory %s answers again", self.settings.url)
        self._down = False

    def close(self) -> None:
        """Stop the worker threads (a login still waiting on a dead directory is abandoned)."""
        self._ldap.shutdown(wait=False, cancel_futures=True)
        self._hash.shutdown(wait=False, cancel_futures=True)


def _shown(username: str) -> str:
    """A user name fit for a log line: quoted, escaped, at most 64 characters."""
    return repr(username[:64] + ("..." if len(username) > 64 else ""))
