"""DescribeClientQuotas (48) and AlterClientQuotas (49), KIP-546, as Kafka's KRaft brokers answer them.

Entity types are Kafka's `user` and `client-id` (a null name is the type's default), plus Keystream's
`tenant`, whose quotas are the tenant's own (`Tenant.quotas`, kept by the tenant store; a tenant must
exist before it has quotas, and has no default). Kafka's `ip` (connection-rate quotas) is not
supported: a filter naming it, or any other unknown type, is answered UNSUPPORTED_VERSION as Kafka
answers an unknown type; an alteration naming it fails that entity with INVALID_REQUEST.

Describe needs DescribeConfigs on the cluster and Alter needs AlterConfigs on the cluster, else
CLUSTER_AUTHORIZATION_FAILED (Describe: top level; Alter: every entity), as in Kafka. Keys are
Kafka's producer_byte_rate and consumer_byte_rate (whole numbers) and request_percentage, all > 0
and finite (Kafka lets NaN through; Keystream does not). One request's user/client-id changes are
written as one metadata-log batch (all or nothing); an entity named twice, or a key twice in one
entity, fails that entity and nothing of it is applied.

Tenants: a tenant's session, even with those Cluster rights, sees only the quotas of its own tenant and
of its members' users (`User:<name>` among the members), and alters only its members' user (and
user/client-id) quotas: its tenant's own quotas are the platform's limit on it. Anything else is left
out of a describe and refused with CLUSTER_AUTHORIZATION_FAILED in an alter, before it is validated,
so the answers say nothing about other tenants or users.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.auth.tenants import TenantNotFound
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.alter_client_quotas_request import AlterClientQuotasRequest
from keystream.broker.protocol.messages.alter_client_quotas_response import (
    AlterClientQuotasResponse,
)
from keystream.broker.protocol.messages.alter_client_quotas_response import (
    EntityData as AlteredEntity,
)
from keystream.broker.protocol.messages.alter_client_quotas_response import (
    EntryData as AlteredEntry,
)
from keystream.broker.protocol.messages.describe_client_quotas_request import DescribeClientQuotasRequest
from keystream.broker.protocol.messages.describe_client_quotas_response import (
    DescribeClientQuotasResponse,
    EntityData,
    EntryData,
    ValueData,
)
from keystream.broker.quotas import (
    CLIENT_ID,
    IP,
    TENANT,
    USER,
    Entity,
    QuotaError,
    check_entity,
    check_value,
    entity,
)

log = logging.getLogger("keystream.quotas")

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
CLUSTER_AUTH_MESSAGE = "Cluster authorization failed."


# -- DescribeClientQuotas -------------------------------------------------------------------------------
def _filter(req: DescribeClientQuotasRequest) -> tuple[dict[str, str | None], set[str]]:
    """Kafka's ClientQuotasImage.describe checks: (exact matches, types that must be present)."""
    exact: dict[str, str | None] = {}
    present: set[str] = set()
    for c in req.components:
        if not c.entity_type:
            raise QuotaError("Invalid empty entity type.")
        if c.entity_type in exact or c.entity_type in present:
            raise QuotaError(f"Entity type {c.entity_type} cannot appear more than once in the filter.")
        if c.entity_type not in (USER, CLIENT_ID, TENANT):
            raise QuotaError(f"Unsupported entity type {c.entity_type}", unsupported=True)
        if c.match_type == MATCH_EXACT:
            if c.match is None:
                raise QuotaError("Request specified MATCH_TYPE_EXACT, but set match string to null.")
            exact[c.entity_type] = c.match
        elif c.match_type == MATCH_DEFAULT:
            if c.match is not None:
                raise QuotaError("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
            exact[c.entity_type] = None
        elif c.match_type == MATCH_SPECIFIED:
            if c.match is not None:
                raise QuotaError("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
            present.add(c.entity_type)
        else:
            raise QuotaError(f"Unknown match type {c.match_type}")
    types = set(exact) | present
    if TENANT in types and types & {USER, CLIENT_ID}:
        raise QuotaError("Invalid entity filter component combination. Tenant filter component should not be "
                         "used with user or clientId filter component.")
    return exact, present


def _matches(ent: Entity, exact: dict[str, str | None], present: set[str], strict: bool) -> bool:
    names = dict(ent)
    if strict and len(names) != len(exact) + len(present):
        return False
    return all(t in names and names[t] == n for t, n in exact.items()) and all(t in names for t in present)


def _all_quotas(ctx) -> list[tuple[Entity, dict[str, float]]]:
    out = [(ent, dict(values)) for ent, values in ctx.broker.quotas.store.items()]
    tenants = getattr(ctx.broker, "tenants", None)
    if tenants is not None:
        out += [(((TENANT, t.name),), dict(t.quotas)) for t in tenants.all() if t.quotas]
    return out


@api(DescribeClientQuotasRequest)
async def describe_client_quotas(ctx, req: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse:
    if not ctx.allowed(Operation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        return DescribeClientQuotasResponse(0, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE, None)
    try:
        exact, present = _filter(req)
    except QuotaError as e:
        code = ErrorCode.UNSUPPORTED_VERSION if e.unsupported else ErrorCode.INVALID_REQUEST
        return DescribeClientQuotasResponse(0, code, str(e), None)
    tenant = ctx.broker.authorizer.tenant_of(ctx.session)
    entries = [
        EntryData([EntityData(t, n) for t, n in ent], [ValueData(k, v) for k, v in sorted(values.items())])
        for ent, values in sorted(_all_quotas(ctx), key=lambda e: repr(e[0]))
        if _matches(ent, exact, present, req.strict) and (tenant is None or _visible(tenant, ent))
    ]
    return DescribeClientQuotasResponse(0, 0, None, entries)


def _member_user(tenant, names: dict) -> bool:
    user = names.get(USER)
    return user is not None and tenant.has_user(user)


def _visible(tenant, ent: Entity) -> bool:
    """Whether a tenant's session may see the entity's quotas: its tenant's, or a member user's."""
    names = dict(ent)
    return names.get(TENANT) == tenant.name if TENANT in names else _member_user(tenant, names)


# -- AlterClientQuotas ----------------------------------------------------------------------------------
def _ops(entry) -> dict[str, float | None]:
    ops: dict[str, float | None] = {}
    for op in entry.ops:
        if op.key in ops:
            raise QuotaError(f"Duplicate quota key {op.key} not updating quota for this entity")
        if not op.remove:
            check_value(op.key, op.value)
        ops[op.key] = None if op.remove else op.value
    return ops


def _check(ctx, entry) -> tuple[Entity, dict[str, float | None]]:
    types = [e.entity_type for e in entry.entity]
    for t in types:
        if types.count(t) > 1:
            raise QuotaError(f"Invalid client quota entity, duplicate entity entry {t}")
    ent = entity((e.entity_type, e.entity_name) for e in entry.entity)
    try:
        check_entity(ent)
    except QuotaError as e:
        if e.unsupported and IP in types:
            raise QuotaError("Client quota entity type ip is not supported by Keystream") from None
        raise
    if ent and ent[0][0] == TENANT:
        tenants = getattr(ctx.broker, "tenants", None)
        if tenants is None or tenants.get(ent[0][1]) is None:
            raise QuotaError(f"Tenant {ent[0][1]} does not exist")
    return ent, _ops(entry)


class _Unchanged(Exception):
    """The alteration leaves the tenant's quotas as they are: nothing to write."""


def _apply_tenant(tenants, name: str, ops: dict[str, float | None]) -> None:
    """In a worker thread: the tenant's quotas altered under the store's write lock (read, change,
    fsynced write), so a concurrent admin write is neither undone nor undoes this one."""
    def change(tenant):
        quotas = dict(tenant.quotas)
        for key, value in ops.items():
            if value is None:
                quotas.pop(key, None)
            else:
                quotas[key] = value
        if quotas == dict(tenant.quotas):
            raise _Unchanged
        return dataclasses.replace(tenant, quotas=quotas)

    try:
        tenants.update(name, change)
    except _Unchanged:
        pass
    except TenantNotFound:
        raise QuotaError(f"Tenant {name} does not exist") from None


@api(AlterClientQuotasRequest)
async def alter_client_quotas(ctx, req: AlterClientQuotasRequest) -> AlterClientQuotasResponse:
    # Entities by what the client sent (one answer per distinct entity, in request order).
    sent: dict[tuple, list] = {}
    for entry in req.entries:
        sent.setdefault(tuple((e.entity_type, e.entity_name) for e in entry.entity), []).append(entry)
    results: dict[tuple, tuple[int, str | None]] = {}
    if not ctx.allowed(Operation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        results = dict.fromkeys(sent, (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE))
        return _alter_response(sent, results)
    changes: dict[Entity, dict[str, float | None]] = {}
    tenant_changes: dict[str, dict[str, float | None]] = {}
    tenant = ctx.broker.authorizer.tenant_of(ctx.session)
    for raw, entries in sent.items():
        if tenant is not None and (TENANT in dict(raw) or not _member_user(tenant, dict(raw))):
            results[raw] = (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE)
            continue
        try:
            if len(entries) > 1:
                raise QuotaError(f"Ignoring duplicate entity {_describe(raw)}")
            ent, ops = _check(ctx, entries[0])
            if ent in changes or (ent[0][0] == TENANT and ent[0][1] in tenant_changes):
                raise QuotaError(f"Ignoring duplicate entity {_describe(raw)}")
        except QuotaError as e:
            results[raw] = (ErrorCode.INVALID_REQUEST, str(e))
            continue
        if ent[0][0] == TENANT:
            tenant_changes[ent[0][1]] = ops
        else:
            changes[ent] = ops
        results[raw] = (0, None)
    if not req.validate_only:
        # Metadata-log writes (fsynced) in a worker thread, off the event loop.
        loop = asyncio.get_running_loop()
        if changes:
            await loop.run_in_executor(None, ctx.broker.quotas.store.alter, changes)
        for name, ops in tenant_changes.items():
            try:
                await loop.run_in_executor(None, _apply_tenant, ctx.broker.tenants, name, ops)
            except (QuotaError, ValueError) as e:  # removed meanwhile, or refused by the tenant store
                raw = next(r for r in sent if r == ((TENANT, name),))
                results[raw] = (ErrorCode.INVALID_REQUEST, str(e))
        if changes or tenant_changes:
            log.info("%s altered client quotas: %s", ctx.session.principal,
                     {_describe(e): o for e, o in changes.items()} | {f"tenant {n}": o for n, o in tenant_changes.items()})
    return _alter_response(sent, results)


def _describe(ent) -> str:
    return ", ".join(f"{t}={'<default>' if n is None else n}" for t, n in ent) or "<empty>"


def _alter_response(sent: dict[tuple, list], results: dict[tuple, tuple[int, str | None]]) -> AlterClientQuotasResponse:
    return AlterClientQuotasResponse(0, [
        AlteredEntry(code, message, [AlteredEntity(t, n) for t, n in dict(raw).items()])
        for raw, (code, message) in ((raw, results[raw]) for raw in sent)
    ])
