"""What every route shares: Confluent's JSON responses, request bodies, query parameters, subjects
from the path, and the authorization check."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from keystream.registry.access import Action
from keystream.registry.errors import RegistryError, forbidden, subject_not_found
from keystream.registry.service import check_subject

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# What Confluent's resources consume; a request without a Content-Type is taken as octet-stream.
ACCEPTED_TYPES = frozenset({CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json",
                            "application/octet-stream"})

SERVICE: web.AppKey = web.AppKey("service", object)
ACCESS: web.AppKey = web.AppKey("access", object)
SESSION = "keystream.session"
HIDDEN_ACTIONS = frozenset({Action.READ, Action.DELETE, Action.READ_CONFIG})


def reply(value: Any, status: int = 200) -> web.Response:
    """A JSON response in Confluent's compact form and media type."""
    return web.Response(body=_encode(value), status=status, content_type=CONTENT_TYPE)


def raw_schema(text: str) -> web.Response:
    """The `/schema` endpoints return the schema text itself, not a JSON object around it."""
    return web.Response(body=text.encode(), content_type=CONTENT_TYPE)


def error_body(status: int, error_code: int, message: str, headers: Any = None) -> web.Response:
    body = _encode({"error_code": error_code, "message": message})
    return web.Response(body=body, status=status, content_type=CONTENT_TYPE, headers=headers)


def _encode(value: Any) -> bytes:
    """Compact UTF-8 JSON, as Jackson writes it (bytes, so no charset parameter is added)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def body(request: web.Request) -> dict:
    """The request's JSON object; anything else is Confluent's 400 (a Jackson parse/mapping error).
    Reading more than the app's client_max_size raises aiohttp's 413 before json parses anything."""
    data = await request.read()
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RegistryError(400, 400, f"Unrecognized JSON in the request body: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise RegistryError(400, 400, f"The request body must be a JSON object, not {type(value).__name__}")
    return value


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as Jersey reads one: `true` in any case is true, anything else false."""
    value = request.query.get(name)
    return default if value is None else value.strip().lower() == "true"


def subject(request: web.Request) -> str:
    """The `{subject}` path segment (percent-decoded, so `a%2Fb` is `a/b`), refused (42208) before
    anything (authorization, logs) sees it when it cannot be a subject."""
    name = request.match_info["subject"]
    check_subject(name)
    return name


def printable(text: str, limit: int = 200) -> str:
    """A quoted, escaped, shortened rendering of untrusted text for messages and logs (no raw newlines)."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(shown)


def schema_id(request: web.Request) -> int:
    """The `{id}` path segment; a non-number is Jersey's plain 404, a number no schema has is 40403."""
    text = request.match_info["id"]
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise web.HTTPNotFound()
    return int(text)


def authorize(request: web.Request, action: Any, name: str | None,
              missing: Callable[[str], RegistryError] = subject_not_found) -> None:
    """403/40301 unless the request's principal may do `action` on the subject (None: global).

    A tenant member asking to read, delete or read the config of a subject outside its namespace
    gets `missing(subject)`, the route's answer for a subject that does not exist (40401 unless the
    route says otherwise), whether it exists or not. Writes there get the 40301 anyone gets, existing
    subject or not (a missing one could be created)."""
    access, session = request.app[ACCESS], request[SESSION]
    if access.allowed(session, action, name):
        return
    if name is not None and action in HIDDEN_ACTIONS and access.outside_tenant(session, name):
        raise missing(name)
    target = "the global configuration" if name is None else f"subject {printable(name)}"
    raise forbidden(f"User is denied operation {action.name} on {target}")


def can_read(request: web.Request) -> Callable[[str], bool]:
    """Whether the principal may read a subject: what references in a request body may name."""
    access, session = request.app[ACCESS], request[SESSION]
    return lambda name: access.allowed(session, Action.READ, name)


def readable(request: web.Request, action: Any, names: list[str]) -> list[str]:
    """The subjects of `names` the principal may see (lists are filtered, never refused)."""
    allowed = request.app[ACCESS].allowed
    return [name for name in names if allowed(request[SESSION], action, name)]
