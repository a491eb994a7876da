"""`/schemas/...`: schemas by their global id, and every schema. A schema is visible to a principal
that may read one subject holding it; otherwise it is reported missing (40403), as if it did not exist."""

from __future__ import annotations

from aiohttp import web

from keystream.registry.access import Action
from keystream.registry.errors import schema_not_found
from keystream.registry.routes_common import SERVICE, flag, raw_schema, readable, reply, schema_id

routes = web.RouteTableDef()
SCHEMA_TYPES = ["AVRO"]


async def _visible(request: web.Request, ident: int) -> list[str]:
    """The subjects holding `ident` that the principal may read (soft-deleted ones count: a client
    decoding old records still needs the schema); 40403 when there is none."""
    names = readable(request, Action.READ, await request.app[SERVICE].subjects_for_id(ident, True))
    if not names:
        raise schema_not_found(ident)
    return names


@routes.get("/schemas/ids/{id}")
async def by_id(request: web.Request) -> web.Response:
    ident = schema_id(request)
    await _visible(request, ident)
    return reply(await request.app[SERVICE].schema_by_id(ident, request.query.get("subject")))


@routes.get("/schemas/ids/{id}/schema")
async def by_id_raw(request: web.Request) -> web.Response:
    ident = schema_id(request)
    await _visible(request, ident)
    found = await request.app[SERVICE].schema_by_id(ident, request.query.get("subject"))
    return raw_schema(found["schema"])


@routes.get("/schemas/ids/{id}/subjects")
async def subjects_for_id(request: web.Request) -> web.Response:
    ident = schema_id(request)
    await _visible(request, ident)
    names = await request.app[SERVICE].subjects_for_id(ident, flag(request, "deleted"))
    return reply(readable(request, Action.READ, names))


@routes.get("/schemas/ids/{id}/versions")
async def versions_for_id(request: web.Request) -> web.Response:
    ident = schema_id(request)
    allowed = set(await _visible(request, ident))
    found = await request.app[SERVICE].versions_for_id(ident, flag(request, "deleted"))
    return reply([entry for entry in found if entry["subject"] in allowed])


@routes.get("/schemas/types")
async def schema_types(request: web.Request) -> web.Response:
    return reply(SCHEMA_TYPES)


@routes.get("/schemas")
async def all_schemas(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].schemas(request.query.get("subjectPrefix", ""), flag(request, "deleted"),
                                               flag(request, "latestOnly"))
    allowed = set(readable(request, Action.READ, sorted({entry["subject"] for entry in found})))
    visible = [entry for entry in found if entry["subject"] in allowed]
    offset, limit = max(_int(request, "offset", 0), 0), _int(request, "limit", -1)
    return reply(visible[offset:] if limit < 0 else visible[offset:offset + limit])


def _int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name, "")
    try:
        return max(int(text), -1) if text else default
    except ValueError:
        raise web.HTTPNotFound() from None  # Jersey answers a malformed int query parameter with 404
