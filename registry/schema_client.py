"""The broker's client to the schema registry: schemas by id over HTTPS, in a bounded LRU cache.

Concurrent requests for one id share one fetch; unknown ids are remembered for
confluent.missing.id.cache.ttl.sec; an id's subjects are fetched again (at most once a second) when a
record names a subject the cached set lacks. A registry that cannot answer (down, 5xx, 401/403,
timeout) fails closed with REQUEST_TIMED_OUT, which producers retry.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import OrderedDict
from urllib.parse import quote

import aiohttp

from keystream.auth.tls import client_context
from keystream.broker.errors import ErrorCode, KafkaError
from keystream.configdef import ConfigError
from keystream.registry.schema import ParsedSchema, Reference, SchemaError, parse_schema

REFRESH_INTERVAL_S = 1.0  # an id's subjects are fetched again at most this often
# How long the subjects of an id are trusted: a schema deleted from a subject stops validating that
# subject's records within this time (one registry request per id in use per period).
SUBJECTS_TTL_S = 30.0
MAX_REFERENCES = 100  # schemas fetched to resolve the references of one schema


class CachedSchema:
    """A schema by id, the subjects it is registered under (trusted for SUBJECTS_TTL_S), and the
    validator's decoder for it."""

    __slots__ = ("schema_id", "schema", "subjects", "refreshed_at", "decoder")

    def __init__(self, schema_id: int, schema: ParsedSchema, subjects):
        self.schema_id, self.schema = schema_id, schema
        self.subjects = frozenset(subjects)
        self.refreshed_at = time.monotonic()
        self.decoder = None

    @property
    def subjects_stale(self) -> bool:
        return time.monotonic() - self.refreshed_at > SUBJECTS_TTL_S


class _Unusable(Exception):
    """The registry answered, and the answer means the id cannot validate anything (cached briefly)."""


def _ssl_context(config) -> ssl.SSLContext:
    """TLS to the registry; an unreadable file fails broker start-up naming its property."""
    name = "confluent.ssl.truststore.location"
    try:
        ctx = client_context(config[name])
        name = "confluent.ssl.keystore.location"
        if config[name]:
            password = config["confluent.ssl.key.password"]
            ctx.load_cert_chain(config[name], password=password.value if password else None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{name}: {e}") from None
    return ctx


class SchemaClient:
    def __init__(self, config):
        self.urls = [u.rstrip("/") for u in config["confluent.schema.registry.url"]]
        self.max_cache_size = config["confluent.schema.registry.max.cache.size"]
        self.missing_ttl_s = config["confluent.missing.id.cache.ttl.sec"]
        self._timeout = aiohttp.ClientTimeout(total=config["confluent.schema.registry.timeout.ms"] / 1000)
        self._auth = None
        if config["confluent.basic.auth.credentials.source"] == "USER_INFO":
            info = config["confluent.basic.auth.user.info"]
            user, _, password = (info.value if info else "").partition(":")
            self._auth = aiohttp.BasicAuth(user, password)
        self._ssl = _ssl_context(config) if any(u.startswith("https://") for u in self.urls) else None
        self._session: aiohttp.ClientSession | None = None
        self._cache: OrderedDict[int, CachedSchema] = OrderedDict()
        self._missing: dict[int, tuple[float, str]] = {}  # id -> (expiry, why)
        self._inflight: dict[tuple[int, bool], asyncio.Task] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- cache (synchronous: the validator's loop calls these) ------------------------------------
    def cached(self, schema_id: int) -> CachedSchema | None:
        entry = self._cache.get(schema_id)
        if entry is not None:
            self._cache.move_to_end(schema_id)
        return entry

    def known_missing(self, schema_id: int) -> str | None:
        """Why a recently fetched id cannot be used (unknown, not Avro, unparseable), else None."""
        hit = self._missing.get(schema_id)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._missing[schema_id]
            return None
        return hit[1]

    def put(self, schema_id: int, schema: ParsedSchema, subjects) -> CachedSchema:
        """Cache a schema (the fetch path, and tests that need no registry)."""
        entry = self._cache[schema_id] = CachedSchema(schema_id, schema, subjects)
        self._cache.move_to_end(schema_id)
        while len(self._cache) > self.max_cache_size:
            self._cache.popitem(last=False)
        self._missing.pop(schema_id, None)
        return entry

    def _remember_missing(self, schema_id: int, why: str) -> None:
        if len(self._missing) >= self.max_cache_size:
            self._missing.clear()
        self._missing[schema_id] = (time.monotonic() + self.missing_ttl_s, why)

    # -- fetching ---------------------------------------------------------------------------------
    async def fetch(self, schema_id: int, refresh: bool = False) -> None:
        """Fetch an id's schema and subjects (or only its subjects); one request per id at a time."""
        key = (schema_id, refresh)
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.get_running_loop().create_task(self._fetch(schema_id, refresh))
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        await asyncio.shield(task)

    async def _fetch(self, schema_id: int, refresh: bool) -> None:
        try:
            entry = self._cache.get(schema_id)
            if refresh and entry is not None:
                wait = entry.refreshed_at + REFRESH_INTERVAL_S - time.monotonic()
                if wait > 0:  # rate limit: records naming a subject the id lacks cost a request a second
                    await asyncio.sleep(wait)
                entry.subjects = frozenset(await self._subjects(schema_id))
                entry.refreshed_at = time.monotonic()
                return
            body = await self._get(f"/schemas/ids/{schema_id}")
            schema = await self._parse(body, schema_id)
            self.put(schema_id, schema, await self._subjects(schema_id))
        except _Unusable as e:
            self._cache.pop(schema_id, None)
            self._remember_missing(schema_id, str(e))

    async def _subjects(self, schema_id: int) -> set[str]:
        body = await self._get(f"/schemas/ids/{schema_id}/versions")
        if not isinstance(body, list):
            raise _Unusable(f"registry answered /schemas/ids/{schema_id}/versions with {type(body).__name__}")
        return {v["subject"] for v in body if isinstance(v, dict) and isinstance(v.get("subject"), str)}

    async def _parse(self, body, schema_id: int) -> ParsedSchema:
        """Parse a registry schema body, fetching its references (and theirs) first."""
        resolved: dict[tuple[str, int], ParsedSchema] = {}

        async def parse(doc, what: str) -> ParsedSchema:
            if not isinstance(doc, dict) or not isinstance(doc.get("schema"), str):
                raise _Unusable(f"registry answered {what} without a schema")
            kind = doc.get("schemaType", "AVRO")
            if kind != "AVRO":
                raise _Unusable(f"schema id {schema_id} is a {kind} schema; the broker validates only AVRO")
            try:
                refs = tuple(Reference(r["name"], r["subject"], r["version"]) for r in doc.get("references") or ())
            except (TypeError, KeyError):
                raise _Unusable(f"{what} has malformed references") from None
            for ref in refs:
                if (ref.subject, ref.version) not in resolved:
                    if len(resolved) >= MAX_REFERENCES:
                        raise _Unusable(f"schema id {schema_id} has more than {MAX_REFERENCES} references")
                    path = f"/subjects/{quote(ref.subject, safe='')}/versions/{ref.version}"
                    resolved[(ref.subject, ref.version)] = await parse(await self._get(path), path)
            try:
                return parse_schema(doc["schema"], "AVRO", refs, lambda r: resolved[(r.subject, r.version)])
            except SchemaError as e:
                raise _Unusable(f"schema id {schema_id} cannot be parsed: {e}") from None

        return await parse(body, f"schema id {schema_id}")

    async def _get(self, path: str):
        """GET a registry path as JSON; 404 -> _Unusable; anything else that is not 200 fails closed."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auth=self._auth,
                                                  connector=aiohttp.TCPConnector(ssl=self._ssl or False))
        failure = None
        for url in self.urls:
            try:
                async with self._session.get(url + path, headers={"Accept": "application/json"}) as resp:
                    text = await resp.text()
                    if resp.status == 200:
                        return json.loads(text)
                    if resp.status == 404:
                        raise _Unusable(_not_found(path, text))
                    failure = f"HTTP {resp.status} {_message(text)}"
            except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as e:
                failure = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"schema registry {', '.join(self.urls)} unreachable: "
                                                      f"{failure}; records are refused until it answers")


def _message(text: str) -> str:
    try:
        return str(json.loads(text).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def _not_found(path: str, text: str) -> str:
    if path.startswith("/schemas/ids/"):
        return f"schema id {path.split('/')[3]} is not registered"
    return f"{path}: {_message(text) or 'not found'}"
