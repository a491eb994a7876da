"""`/config` and `/mode`, global and per subject. The global ones are authorized on the cluster
(subject None), the others on the subject."""

from __future__ import annotations

from aiohttp import web

from keystream.registry import errors
from keystream.registry.access import Action
from keystream.registry.routes_common import SERVICE, authorize, body, flag, reply, subject

routes = web.RouteTableDef()


def _target(request: web.Request) -> str | None:
    return subject(request) if "subject" in request.match_info else None


@routes.get("/config")
@routes.get("/config/{subject}")
async def get_config(request: web.Request) -> web.Response:
    name = _target(request)
    authorize(request, Action.READ_CONFIG, name, errors.subject_level_compat_not_configured)
    return reply(await request.app[SERVICE].get_config(name, flag(request, "defaultToGlobal")))


@routes.put("/config")
@routes.put("/config/{subject}")
async def set_config(request: web.Request) -> web.Response:
    name = _target(request)
    authorize(request, Action.WRITE_CONFIG, name)
    return reply(await request.app[SERVICE].set_config(name, await body(request)))


@routes.delete("/config")
@routes.delete("/config/{subject}")
async def delete_config(request: web.Request) -> web.Response:
    name = _target(request)
    authorize(request, Action.WRITE_CONFIG, name)
    return reply(await request.app[SERVICE].delete_config(name))


@routes.get("/mode")
@routes.get("/mode/{subject}")
async def get_mode(request: web.Request) -> web.Response:
    name = _target(request)
    authorize(request, Action.READ_CONFIG, name, errors.subject_level_mode_not_configured)
    return reply(await request.app[SERVICE].get_mode(name, flag(request, "defaultToGlobal")))


@routes.put("/mode")
@routes.put("/mode/{subject}")
async def set_mode(request: web.Request) -> web.Response:
    name = _target(request)
    authorize(request, Action.WRITE_CONFIG, name)
    wanted = await body(request)
    if isinstance(wanted, dict) and str(wanted.get("mode", "")).upper() == "IMPORT":
        # IMPORT registers under ids the caller picks in the one id space all subjects share (and tells
        # whether an id is taken): the cluster's permission, even for a subject the caller owns
        authorize(request, Action.WRITE_CONFIG, None)
    return reply(await request.app[SERVICE].set_mode(name, wanted, flag(request, "force")))


@routes.delete("/mode/{subject}")
async def delete_mode(request: web.Request) -> web.Response:
    name = subject(request)
    authorize(request, Action.WRITE_CONFIG, name)
    return reply(await request.app[SERVICE].delete_mode(name))
