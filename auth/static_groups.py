"""Static group membership from config (`principal.groups`), for principals that carry no groups
of their own: mTLS certificates, SCRAM users, Kerberos principals. LDAP users get theirs from the
directory; both end up in Session.groups, which ACLs and super.users match as `Group:<name>`.

Syntax: `group=Principal|Principal;group=...`, e.g. `devs=User:alice|User:bob;ops=User:CN=carol,O=acme`.
Groups are split on `;`, a group from its members at the first `=`, members on `|` (an RFC 2253 DN
may hold `,` and `=`, but not an unescaped `;`).
"""

from __future__ import annotations

from keystream.auth.principal import Principal
from keystream.configdef import Validator


def parse_static_groups(text: str | None) -> dict[Principal, tuple[Principal, ...]]:
    """{member: (Group:a, Group:b, ...)}; raises ValueError saying what is malformed."""
    groups: dict[Principal, list[Principal]] = {}
    for entry in (text or "").split(";"):
        if not entry.strip():
            continue
        group, sep, members = entry.partition("=")
        group = group.strip()
        if not sep or not group or not members.strip():
            raise ValueError(f"'{entry.strip()}' is not of the form group=Type:name|Type:name")
        for member in members.split("|"):
            principal = Principal.parse(member.strip())
            found = groups.setdefault(principal, [])
            if Principal("Group", group) not in found:
                found.append(Principal("Group", group))
    return {member: tuple(found) for member, found in groups.items()}


def _problem(text: str) -> str | None:
    try:
        parse_static_groups(text)
    except ValueError as exc:
        return str(exc)
    return None


STATIC_GROUPS = Validator(_problem, "group=Type:name\\|Type:name;...")
