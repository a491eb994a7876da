"""`/subjects/...` and `/compatibility/...`: registering, looking up, listing and deleting versions."""

from __future__ import annotations

from aiohttp import web

from keystream.registry.access import Action
from keystream.registry.routes_common import (
    SERVICE,
    authorize,
    body,
    can_read,
    flag,
    raw_schema,
    readable,
    reply,
    subject,
)

routes = web.RouteTableDef()
VERSION = "/subjects/{subject}/versions/{version}"


@routes.get("/subjects")
async def list_subjects(request: web.Request) -> web.Response:
    names = await request.app[SERVICE].subjects(request.query.get("subjectPrefix", ""), flag(request, "deleted"))
    return reply(readable(request, Action.READ, names))


@routes.get("/subjects/{subject}/versions")
async def list_versions(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.READ, name)
    return reply(await request.app[SERVICE].versions(name, flag(request, "deleted")))


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.WRITE, name)
    return reply(await request.app[SERVICE].register(name, await body(request), flag(request, "normalize"),
                                                     can_read(request)))


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.READ, name)
    found = await request.app[SERVICE].lookup(name, await body(request), flag(request, "normalize"),
                                              flag(request, "deleted"), can_read(request))
    return reply(found)


@routes.delete("/subjects/{subject}")
async def delete_subject(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.DELETE, name)
    return reply(await request.app[SERVICE].delete_subject(name, flag(request, "permanent")))


@routes.get(VERSION)
async def get_version(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.READ, name)
    version = request.match_info["version"]
    return reply(await request.app[SERVICE].get_version(name, version, flag(request, "deleted")))


@routes.get(VERSION + "/schema")
async def get_version_schema(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.READ, name)
    found = await request.app[SERVICE].get_version(name, request.match_info["version"], flag(request, "deleted"))
    return raw_schema(found["schema"])


@routes.get(VERSION + "/referencedby")
async def referenced_by(request: web.Request) -> web.Response:
    """Only ids the principal could read (a schema of another tenant referring here stays hidden)."""
    name = subject(request)
    authorize(request, Action.READ, name)
    service = request.app[SERVICE]
    ids = await service.referenced_by(name, request.match_info["version"])
    return reply([i for i in ids if readable(request, Action.READ, await service.subjects_for_id(i, True))])


@routes.delete(VERSION)
async def delete_version(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.DELETE, name)
    version = request.match_info["version"]
    return reply(await request.app[SERVICE].delete_version(name, version, flag(request, "permanent")))


@routes.post("/compatibility/subjects/{subject}/versions")
@routes.post("/compatibility/subjects/{subject}/versions/{version}")
async def test_compatibility(request: web.Request) -> web.Response:
    """Without a version the new schema is checked against what the subject's level names (Confluent 7+)."""
    name = subject(request)
    authorize(request, Action.READ, name)
    result = await request.app[SERVICE].test_compatibility(name, request.match_info.get("version"),
                                                           await body(request), flag(request, "verbose"),
                                                           can_read(request))
    return reply(result)
