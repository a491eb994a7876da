"""The registry's aiohttp application: Confluent Schema Registry's REST API over a RegistryService.

Every request is authenticated first (except the probes `/` and `/health`, which reveal nothing), and
every answer is JSON in Confluent's media type; errors, including aiohttp's own (unknown path, wrong
method, body too large), use Confluent's `{"error_code": ..., "message": ...}` so clients report them
the way they report a Confluent registry's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from keystream.registry import routes_config, routes_schemas, routes_subjects
from keystream.registry.errors import RegistryError
from keystream.registry.routes_common import ACCEPTED_TYPES, ACCESS, SERVICE, SESSION, error_body, reply
from keystream.registry.schema import MAX_SCHEMA_BYTES

log = logging.getLogger("keystream.registry")

# A JSON request quotes the schema text (escaping can double it) and adds references around it; a
# body past this is refused with 413 while being read, before anything parses it.
MAX_BODY_BYTES = 2 * MAX_SCHEMA_BYTES + 64 * 1024
OPEN_PATHS = frozenset({"/", "/health"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(service: Any, access: Any, config: Any) -> web.Application:
    """The REST application; `config` gives the realm named in 401 answers."""
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[_errors(config["authentication.realm"]), _authenticate, _content_type])
    app[SERVICE], app[ACCESS] = service, access
    app.router.add_get("/", _root)
    app.router.add_get("/health", _health)
    for module in (routes_subjects, routes_schemas, routes_config):
        app.router.add_routes(module.routes)
    return app


async def _root(request: web.Request) -> web.Response:
    return reply({})


async def _health(request: web.Request) -> web.Response:
    """Liveness and readiness: the server only listens once the `_schemas` topic has been read."""
    return reply({"status": "UP"})


def _errors(realm: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    challenge = {"WWW-Authenticate": f'Basic realm="{realm}"'}

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except RegistryError as exc:
            headers = getattr(exc, "headers", None) or (challenge if exc.status == 401 else None)
            return error_body(exc.status, exc.error_code, exc.message, headers)
        except web.HTTPRequestEntityTooLarge:
            return error_body(413, 413, f"HTTP 413 Request Entity Too Large: the body exceeds {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:  # unknown path, wrong method: Jersey's texts
            if exc.status < 400:
                raise
            return error_body(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}", _allow(exc))
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, str(request.rel_url))
            return error_body(500, 500, "Internal Server Error")

    return errors


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


@web.middleware
async def _content_type(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bodies must come in a media type Confluent's resources consume (415 otherwise)."""
    given = request.headers.get("Content-Type")
    if request.method in ("POST", "PUT") and given is not None and request.content_type not in ACCEPTED_TYPES:
        return error_body(415, 415, "HTTP 415 Unsupported Media Type")
    return await handler(request)


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN_PATHS:
        request[SESSION] = await request.app[ACCESS].authenticate(request)
    return await handler(request)
