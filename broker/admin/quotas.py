"""QuotaService: Kafka's client quotas (user, client-id, their defaults and pairs) and Keystream's
tenant quotas, the same ones AlterClientQuotas/DescribeClientQuotas serve (broker/quotas.py's
QuotaStore for users and client ids, the tenant store for tenants).

Setting needs Cluster ALTER, listing Cluster DESCRIBE, for callers of no tenant, like the rest of
the admin API (the Kafka API asks ALTER_CONFIGS/DESCRIBE_CONFIGS). A tenant admin lists its own
tenant's quotas only: its members' and other tenants' quotas are not its to see, and raising its own share is the
cluster admins' call. Every alteration is validated (and its tenant looked up) before any is
applied; user/client-id changes are then one metadata-log batch, tenant ones a tenant record each.
"""

from __future__ import annotations

import dataclasses
import logging

from keystream.auth.acl import Operation
from keystream.auth.tenants import TenantNotFound
from keystream.broker.admin.base import (
    Caller,
    Service,
    blocking,
    check_count,
    check_text,
    denied,
    invalid,
    not_found,
    rpc,
)
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc
from keystream.broker.quotas import (
    CLIENT_ID,
    KEY_TYPES,
    MAX_ENTITY_NAME,
    TENANT,
    USER,
    Entity,
    QuotaError,
    check_entity,
    check_value,
    entity,
)

log = logging.getLogger("keystream.admin")

TYPES = {pb.QUOTA_ENTITY_TYPE_USER: USER, pb.QUOTA_ENTITY_TYPE_CLIENT_ID: CLIENT_ID,
         pb.QUOTA_ENTITY_TYPE_TENANT: TENANT}
CODES = {name: code for code, name in TYPES.items()}
Quotas = dict[str, float]


def _type(code: int, where: str) -> str:
    if code not in TYPES:
        raise invalid(f"{where}.type must be QUOTA_ENTITY_TYPE_USER, _CLIENT_ID or _TENANT")
    return TYPES[code]


def entity_of(m: pb.QuotaEntity, where: str) -> Entity:
    check_count(m.components, f"{where}.components", 3)
    pairs = []
    for i, c in enumerate(m.components):
        at = f"{where}.components[{i}]"
        name = check_text(c.name, f"{at}.name", MAX_ENTITY_NAME, empty_ok=True) if c.HasField("name") else None
        pairs.append((_type(c.type, at), name))
    ent = entity(pairs)
    try:
        check_entity(ent)
    except QuotaError as exc:
        raise invalid(f"{where}: {exc}") from None
    return ent


def entity_message(ent: Entity) -> pb.QuotaEntity:
    components = []
    for etype, name in sorted(ent, key=lambda p: CODES[p[0]]):  # user before client-id, as Kafka prints them
        c = pb.QuotaEntityComponent(type=CODES[etype])
        if name is not None:
            c.name = name
        components.append(c)
    return pb.QuotaEntity(components=components)


def _order(ent: Entity) -> list[tuple[int, bool, str]]:
    """Users (the default first, then by name, each before its client ids), client ids, tenants."""
    return [(CODES[t], n is not None, n or "") for t, n in sorted(ent, key=lambda p: CODES[p[0]])]


def _entry(ent: Entity, quotas: Quotas) -> pb.QuotaEntry:
    return pb.QuotaEntry(entity=entity_message(ent), quotas=dict(sorted(quotas.items())))


def _changes(m: pb.QuotaAlteration, where: str) -> dict[str, float | None]:
    check_count(m.remove, f"{where}.remove", len(KEY_TYPES))
    ops: dict[str, float | None] = {}
    try:
        for key, value in sorted(m.set.items()):
            check_value(key, value)
            ops[key] = value
        for key in m.remove:
            if key not in KEY_TYPES:
                raise QuotaError(f"Invalid configuration key {check_text(key, 'key', 100)}")
            if key in ops:
                raise QuotaError(f"{key} is both set and removed")
            ops[key] = None
    except QuotaError as exc:
        raise invalid(f"{where}: {exc}") from None
    return ops


def _apply(values: Quotas, ops: dict[str, float | None]) -> Quotas:
    out = dict(values)
    for key, value in ops.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = float(value)
    return out


def _matches(ent: Entity, components: list[tuple[str, int, str]], strict: bool) -> bool:
    names = dict(ent)
    if strict and len(names) != len(components):
        return False
    for etype, match, name in components:
        if etype not in names:
            return False
        if match == pb.QUOTA_MATCH_EXACT and names[etype] != name:
            return False
        if match == pb.QUOTA_MATCH_DEFAULT and names[etype] is not None:
            return False
    return True


def _filter(request: pb.ListQuotasRequest) -> list[tuple[str, int, str]]:
    check_count(request.components, "components", 3)
    out = []
    for i, c in enumerate(request.components):
        at = f"components[{i}]"
        etype = _type(c.type, at)
        if c.match not in (pb.QUOTA_MATCH_EXACT, pb.QUOTA_MATCH_DEFAULT, pb.QUOTA_MATCH_ANY):
            raise invalid(f"{at}.match must be QUOTA_MATCH_EXACT, _DEFAULT or _ANY")
        if (c.match == pb.QUOTA_MATCH_EXACT) != bool(c.name):
            raise invalid(f"{at}.name is required with QUOTA_MATCH_EXACT and only with it")
        if any(etype == t for t, _, _ in out):
            raise invalid(f"{at}: entity type {etype} appears more than once in the filter")
        out.append((etype, c.match, check_text(c.name, f"{at}.name", MAX_ENTITY_NAME, empty_ok=True)))
    return out


class QuotaService(Service, admin_pb2_grpc.QuotaServiceServicer):
    @property
    def store(self):
        return self.broker.quotas.store

    def _tenant_quotas(self) -> list[tuple[Entity, Quotas]]:
        return [(((TENANT, t.name),), dict(t.quotas)) for t in self.broker.tenants.all() if t.quotas]

    @rpc
    async def SetQuotas(self, request: pb.SetQuotasRequest, caller: Caller) -> pb.SetQuotasResponse:
        caller.require_cluster(Operation.ALTER)
        check_count(request.alterations, "alterations")
        plan: dict[Entity, dict[str, float | None]] = {}
        for i, m in enumerate(request.alterations):
            where = f"alterations[{i}]"
            ent = entity_of(m.entity, f"{where}.entity")
            if ent in plan:
                raise invalid(f"{where}: the entity is altered twice in one request")
            if ent[0][0] == TENANT and self.broker.tenants.get(ent[0][1]) is None:
                raise not_found(f"tenant {ent[0][1]} does not exist")
            plan[ent] = _changes(m, where)
        results = {ent: _apply(self._current(ent), ops) for ent, ops in plan.items()}
        if not request.validate_only:
            results.update(await blocking(self._write, plan))
            log.info("%s set quotas %s", caller.session.principal,
                     {", ".join(f"{t}={'<default>' if n is None else n}" for t, n in e): o for e, o in plan.items()})
        return pb.SetQuotasResponse(entries=[_entry(ent, q) for ent, q in results.items()])

    def _current(self, ent: Entity) -> Quotas:
        if ent[0][0] == TENANT:
            tenant = self.broker.tenants.get(ent[0][1])
            return dict(tenant.quotas) if tenant is not None else {}
        return dict(self.store.get(ent))

    def _write(self, plan: dict[Entity, dict[str, float | None]]) -> dict[Entity, Quotas]:
        """In a worker thread (the metadata-log appends fsync); answers the tenants' quotas as written,
        each changed under the tenant store's write lock so no concurrent tenant write is undone."""
        clients = {ent: ops for ent, ops in plan.items() if ent[0][0] != TENANT}
        if clients:
            self.store.alter(clients)
        written = {}
        for ent, ops in plan.items():
            if ent[0][0] == TENANT:
                try:
                    _, tenant = self.broker.tenants.update(
                        ent[0][1], lambda t, ops=ops: dataclasses.replace(t, quotas=_apply(dict(t.quotas), ops)))
                except TenantNotFound:  # deleted since the request was checked
                    raise not_found(f"tenant {ent[0][1]} does not exist") from None
                written[ent] = dict(tenant.quotas)
        return written

    @rpc
    async def ListQuotas(self, request: pb.ListQuotasRequest, caller: Caller) -> pb.ListQuotasResponse:
        if caller.cluster_allowed(Operation.DESCRIBE):
            found = [(ent, dict(values)) for ent, values in self.store.items()] + self._tenant_quotas()
        else:
            own = caller.administered_tenant()
            if own is None:
                raise denied()
            found = [(((TENANT, own.name),), dict(own.quotas))] if own.quotas else []
        components = _filter(request)
        rows = sorted((e for e in found if _matches(e[0], components, request.strict)), key=lambda e: _order(e[0]))
        return pb.ListQuotasResponse(entries=[_entry(ent, q) for ent, q in rows])
