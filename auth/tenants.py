"""Tenants: named namespaces of topics, groups and transactional ids, with members, admins, quotas and limits.

A tenant `acme` owns every TOPIC, GROUP and TRANSACTIONAL_ID name starting `acme.`; tenant names hold
no dot, so two tenants' prefixes never overlap (`acme.` vs `acme2.` vs `acme-x.`). Members are
principals (`User:alice`) or group principals (`Group:acme-devs`, from LDAP or `principal.groups`);
admins are members too. A principal belongs to at most one tenant, which every write enforces; a session
is resolved by its principal first, then its groups (see `TenantStore.of`). Super users belong to
none: the Authorizer asks about super users before it asks the store.

Stored in the broker's metadata log, one record per tenant keyed `tenant\\0<name>` (compact JSON;
removal is a tombstone), so compaction keeps exactly the live tenants. Memory changes only after the
record is fsynced, so a request sees a tenant exactly when it is durable, without a restart.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from keystream.auth.principal import Principal, Session
from keystream.broker.quotas import QuotaError, check_value

log = logging.getLogger("keystream.tenants")

KEY_PREFIX = b"tenant\0"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
QUOTA_KEYS = frozenset({"producer_byte_rate", "consumer_byte_rate", "request_percentage"})


class InvalidTenant(ValueError):
    """A tenant the store refuses (bad name, principal, quota or limit); the text says which."""


class TenantConflict(InvalidTenant):
    """A principal named by the new tenant already belongs to another one."""


class TenantExists(ValueError):
    """`create` of a name already taken."""


class TenantNotFound(LookupError):
    """`update` of a tenant that does not exist (or no longer does)."""


def _principal_text(text: str) -> str:
    try:
        p = Principal.parse(text)
    except (ValueError, AttributeError, TypeError):
        raise InvalidTenant(f"principal {text!r} is not of the form Type:name") from None
    if p.name == "*":
        raise InvalidTenant(f"principal {text} is a wildcard; a tenant names its principals one by one")
    return str(p)


@dataclass(frozen=True)
class Tenant:
    name: str                          # [a-z0-9][a-z0-9-]{0,62}; the namespace prefix is f"{name}."
    members: frozenset[str] = frozenset()  # principals "User:alice", "Group:acme-devs"
    admins: frozenset[str] = frozenset()   # tenant-admin principals (also members: added to them)
    quotas: Mapping[str, float] = field(default_factory=dict)  # producer_byte_rate, consumer_byte_rate, ...
    max_partitions: int | None = None
    max_storage_bytes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise InvalidTenant(f"tenant name {self.name!r} must match {NAME_PATTERN.pattern}")
        admins = frozenset(_principal_text(p) for p in _strings(self.admins, "admins"))
        members = frozenset(_principal_text(p) for p in _strings(self.members, "members")) | admins
        quotas = {}
        for key, value in dict(self.quotas or {}).items():
            if key not in QUOTA_KEYS:
                raise InvalidTenant(f"unknown quota {key!r}; known: {', '.join(sorted(QUOTA_KEYS))}")
            try:
                check_value(key, value)  # the rule client quotas follow (byte rates are whole numbers)
            except QuotaError as exc:
                raise InvalidTenant(f"{exc} (not {value!r})") from None
            quotas[key] = float(value)
        for limit in ("max_partitions", "max_storage_bytes"):
            value = getattr(self, limit)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidTenant(f"{limit} must be a non-negative integer or unset, not {value!r}")
        object.__setattr__(self, "admins", admins)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "quotas", MappingProxyType(quotas))

    @property
    def prefix(self) -> str:
        return self.name + "."

    def owns(self, resource_name: str) -> bool:
        """Whether a TOPIC/GROUP/TRANSACTIONAL_ID name lies in this tenant's namespace (case-sensitive)."""
        return resource_name.startswith(self.prefix)

    def is_admin(self, session: Session) -> bool:
        """The session's principal or one of its groups is an admin of this tenant."""
        return any(p in self.admins for p in _session_principals(session))

    def has_user(self, name: str) -> bool:
        """Whether the SCRAM/quota user `name` is a member (`User:<name>`): a tenant's sessions and
        admins manage only those users' credentials and see only their quotas."""
        return f"User:{name}" in self.members

    def to_json(self) -> bytes:
        doc = {"members": sorted(self.members), "admins": sorted(self.admins), "quotas": dict(self.quotas),
               "max_partitions": self.max_partitions, "max_storage_bytes": self.max_storage_bytes}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, name: str, value: bytes) -> Tenant:
        doc = json.loads(value)
        return cls(name, frozenset(doc.get("members", ())), frozenset(doc.get("admins", ())),
                   doc.get("quotas") or {}, doc.get("max_partitions"), doc.get("max_storage_bytes"))


def _strings(values, what: str) -> Iterable[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidTenant(f"{what} must be a collection of principals")
    return values


def _session_principals(session: Session) -> list[str]:
    return [str(session.principal), *(str(g) for g in session.groups)]


def encode_key(name: str) -> bytes:
    return KEY_PREFIX + name.encode("utf-8")


def decode_key(key: bytes) -> str:
    return key[len(KEY_PREFIX):].decode("utf-8")


class TenantStore:
    """The tenant set: `load()` replays the metadata log; `create`/`update`/`put`/`remove` write it, then memory.

    `of(session)` runs on the event loop for every authorization of a non-super user and reads an
    immutable snapshot, never waiting for a write's fsync.
    """

    def __init__(self, metadata_log):
        self.log = metadata_log
        self._write_lock = threading.Lock()  # keeps writers in log order and conflict checks exact
        self._tenants: dict[str, Tenant] = {}
        self._by_principal: dict[str, Tenant] = {}

    def _install(self, tenants: dict[str, Tenant]) -> None:
        by_principal: dict[str, Tenant] = {}
        for t in sorted(tenants.values(), key=lambda t: t.name):
            for p in t.members:
                by_principal.setdefault(p, t)  # a conflict can only come from a hand-edited log
        self._tenants, self._by_principal = tenants, by_principal  # swapped whole: readers see one or the other

    def load(self) -> None:
        tenants = {}
        for key, value in self.log.replay(KEY_PREFIX):
            try:
                name = decode_key(key)
                tenants[name] = Tenant.from_json(name, value)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("skipping unreadable tenant record %r: %s", key[:200], type(exc).__name__)
        self._install(tenants)
        log.info("loaded %d tenants", len(tenants))

    def replace(self, tenants: Iterable[Tenant]) -> None:
        """Installs a copy of another process's tenants (the registry's, fetched from the broker)."""
        self._install({t.name: t for t in tenants})

    def get(self, name: str) -> Tenant | None:
        return self._tenants.get(name)

    def all(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda t: t.name)

    def __len__(self) -> int:
        return len(self._tenants)

    def put(self, tenant: Tenant) -> None:
        """Creates or replaces the tenant of that name; TenantConflict when one of its principals
        belongs to another tenant (nothing is written then)."""
        with self._write_lock:
            self._write(tenant)

    def create(self, tenant: Tenant) -> None:
        """Stores a new tenant: TenantExists when the name is taken, TenantConflict as `put`."""
        with self._write_lock:
            if tenant.name in self._tenants:
                raise TenantExists(f"tenant {tenant.name} already exists")
            self._write(tenant)

    def update(self, name: str, change: Callable[[Tenant], Tenant]) -> tuple[Tenant, Tenant]:
        """Replaces tenant `name` by `change(current)` and answers (before, after); the read, the
        change and the write hold the write lock together, so a concurrent write is never undone
        and a removed tenant never comes back. TenantNotFound when there is no such tenant; what
        `change` raises, or TenantConflict, leaves the store as it was."""
        with self._write_lock:
            current = self._tenants.get(name)
            if current is None:
                raise TenantNotFound(f"tenant {name} does not exist")
            tenant = change(current)
            if tenant.name != name:
                raise ValueError(f"an update of tenant {name} cannot rename it to {tenant.name}")
            self._write(tenant)
        return current, tenant

    def _write(self, tenant: Tenant) -> None:
        """Under the write lock: the conflict check, the fsynced record, then memory."""
        if not isinstance(tenant, Tenant):
            raise TypeError("the tenant store stores Tenants")
        for p in sorted(tenant.members):
            owner = self._by_principal.get(p)
            if owner is not None and owner.name != tenant.name:
                raise TenantConflict(f"principal {p} already belongs to tenant {owner.name}")
        self.log.append(encode_key(tenant.name), tenant.to_json())
        self._install({**self._tenants, tenant.name: tenant})
        log.info("tenant %s stored: %d members, %d admins", tenant.name, len(tenant.members), len(tenant.admins))

    def remove(self, name: str) -> Tenant | None:
        """Deletes the tenant (its topics and groups stay, now outside any tenant) and answers it as
        it was; None when unknown."""
        with self._write_lock:
            tenant = self._tenants.get(name)
            if tenant is None:
                return None
            self.log.append(encode_key(name), None)
            self._install({n: t for n, t in self._tenants.items() if n != name})
        log.info("tenant %s removed", name)
        return tenant

    def of(self, session: Session) -> Tenant | None:
        """The session's tenant: its principal's, else the first of its groups' tenants by tenant name.

        A principal belongs to at most one tenant, but a user may sit in several LDAP groups that
        belong to different tenants; such a session is confined to one of them (the first by name,
        so the answer does not depend on the directory's group order), never to none.
        """
        by_principal = self._by_principal
        if not by_principal:
            return None
        tenant = by_principal.get(str(session.principal))
        if tenant is not None or not session.groups:
            return tenant
        found = [t for t in (by_principal.get(str(g)) for g in session.groups) if t is not None]
        return min(found, key=lambda t: t.name) if found else None
