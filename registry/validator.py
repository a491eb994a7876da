"""Broker-side Avro validation: every produced record of a validating topic must be a Confluent
wire-format payload (magic 0, 4-byte schema id) whose id is registered under the topic's subject and
whose bytes decode fully, with nothing left over, under that schema.

Unlike Confluent Server, which checks only the id, the whole payload is decoded with fastavro. Null
keys and values pass, as in Confluent Server (tombstones must stay possible on compacted topics).
The per-record loop is synchronous and allocation-lean: it walks the batch body in place, decodes
every payload from one BytesIO over the body (seek, read, compare the position with the payload's
end) and only leaves the loop to fetch a schema it has not seen, then starts the batch again.
"""

from __future__ import annotations

import logging
import struct
import time
from io import BytesIO

from fastavro import schemaless_reader

try:  # fastavro's decoder without schemaless_reader's per-call set-up (0.4 us of its 2.7 us per record)
    from fastavro._read import _read_data
except ImportError:  # another fastavro layout: the public entry point, same result
    def _read_data(fo, schema, named, reader_schema, options):
        return schemaless_reader(fo, schema)

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.records import HEADER_SIZE, decompress, read_varint, validate_batches
from keystream.registry.avro_guard import GuardError, compile_guard
from keystream.registry.schema_client import SUBJECTS_TTL_S, CachedSchema, SchemaClient

log = logging.getLogger("keystream.registry.validator")

_WIRE = struct.Struct(">Bi")  # magic byte, schema id
_STRATEGY_PACKAGE = "io.confluent.kafka.serializers.subject."
MAX_FETCHES = 32  # distinct schemas fetched while validating one partition's records

try:
    from prometheus_client import Counter

    FAILURES = Counter("keystream_schema_validation_failures", "Produced batches refused by schema validation",
                       ["topic", "reason"])
except ImportError:  # the counter on the validator still counts
    FAILURES = None


_OPTIONS: dict = {}  # fastavro's read options: none (strict UTF-8, plain records)


class Decoder:
    """What validating one payload under one schema id needs, built once per id."""

    __slots__ = ("schema", "named", "guard")

    def __init__(self, parsed):
        self.schema = _raw(parsed)
        named = self.schema.get("__named_schemas", {}) if isinstance(self.schema, dict) else {}
        self.named = {"writer": named, "reader": {}}
        self.guard = compile_guard(parsed)


def _raw(parsed):
    """A copy of a fastavro-parsed schema without logical types: the validator checks the encoding, and
    a valid long need not be a datetime Python can represent (it also skips the conversions)."""
    if isinstance(parsed, list):
        return [_raw(b) for b in parsed]
    if not isinstance(parsed, dict):
        return parsed
    out = {k: _raw(v) for k, v in parsed.items() if k not in ("logicalType", "__named_schemas")}
    if "__named_schemas" in parsed:
        out["__named_schemas"] = {n: _raw(s) for n, s in parsed["__named_schemas"].items()}
    return out


class _Invalid(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class _Missing(Exception):
    """The loop needs the registry: fetch schema `schema_id` (or refresh its subjects)."""

    def __init__(self, schema_id: int, refresh: bool):
        self.schema_id, self.refresh = schema_id, refresh


class _Side:
    """Validation of keys or of values on one topic: the subject rule and the ids already admitted."""

    __slots__ = ("validator", "topic", "what", "strategy", "admitted")

    def __init__(self, validator: SchemaValidator, topic: str, what: str, strategy: str):
        self.validator, self.topic, self.what = validator, topic, what
        self.strategy = strategy.removeprefix(_STRATEGY_PACKAGE)
        self.admitted: dict[int, Decoder] = {}

    def subject(self, entry: CachedSchema) -> str:
        if self.strategy == "TopicNameStrategy":
            return f"{self.topic}-{self.what}"
        if entry.schema.fullname is None:
            raise _Invalid("wrong_subject", f"schema id {entry.schema_id} is not a named type, which "
                                            f"{self.strategy} needs")
        if self.strategy == "RecordNameStrategy":
            return entry.schema.fullname
        return f"{self.topic}-{entry.schema.fullname}"

    def admit(self, schema_id: int, fresh: set[int]) -> Decoder:
        """The decoder for an id seen for the first time on this side, or _Missing/_Invalid; `fresh`
        holds the ids fetched during this call (their subjects are not fetched again)."""
        client = self.validator.client
        entry = client.cached(schema_id)
        if entry is None:
            why = client.known_missing(schema_id)
            if why is not None:
                raise _Invalid("unknown_id", why)
            raise _Missing(schema_id, refresh=False)
        subject = self.subject(entry)
        if (subject not in entry.subjects or entry.subjects_stale) and schema_id not in fresh:
            raise _Missing(schema_id, refresh=True)  # registered under `subject` since, or deleted from it
        if subject not in entry.subjects:
            raise _Invalid("wrong_subject", f"schema id {schema_id} is not registered under subject {subject}")
        if entry.decoder is None:
            entry.decoder = Decoder(entry.schema.parsed)
        if len(self.admitted) >= client.max_cache_size:
            self.admitted.clear()
        self.admitted[schema_id] = entry.decoder
        return entry.decoder

    def check(self, bio: BytesIO, body: bytes, start: int, end: int, fresh: set[int]) -> None:
        """One non-null key or value in body[start:end]."""
        if end - start < 5:
            raise _Invalid("wire_format", f"{self.what} of {end - start} bytes is too short for the "
                                          "Confluent wire format (magic byte, 4-byte schema id)")
        magic, schema_id = _WIRE.unpack_from(body, start)
        if magic != 0:
            raise _Invalid("wire_format", f"{self.what} starts with magic byte {magic}, not 0")
        dec = self.admitted.get(schema_id) or self.admit(schema_id, fresh)
        if dec.guard is not None:
            dec.guard.check(body, start + 5, end)
        bio.seek(start + 5)
        _read_data(bio, dec.schema, dec.named, None, _OPTIONS)
        if bio.tell() != end:
            self.leftover(bio.tell(), end)

    def leftover(self, pos: int, end: int):
        raise _Invalid("decode", f"{self.what} has {end - pos} bytes after its Avro data" if pos < end
                       else f"{self.what} is truncated: its Avro data runs past its end")


class SchemaValidator:
    """Validates produced records of topics with confluent.{key,value}.schema.validation=true."""

    def __init__(self, config, client: SchemaClient | None = None):
        self.client = client if client is not None else SchemaClient(config)
        self.failures = 0
        self._sides: dict[tuple[str, str, str], _Side] = {}
        self._admitted_at = time.monotonic()

    async def close(self) -> None:
        await self.client.close()

    def _side(self, topic: str, what: str, strategy: str) -> _Side:
        now = time.monotonic()
        if now - self._admitted_at > SUBJECTS_TTL_S:  # admit every id again: its subjects may have changed
            self._admitted_at = now
            for side in self._sides.values():
                side.admitted.clear()
        key = (topic, what, strategy)
        side = self._sides.get(key)
        if side is None:
            if len(self._sides) >= 4096:  # topics come and go: keep this bounded
                self._sides.clear()
            side = self._sides[key] = _Side(self, topic, what, strategy)
        return side

    async def validate(self, topic: str, cfg, records, batches=None) -> None:
        """Raise KafkaError(INVALID_RECORD) with record_errors if any record is invalid, or
        KafkaError(REQUEST_TIMED_OUT) when the registry cannot answer (fail closed)."""
        key = self._side(topic, "key", cfg.confluent_key_subject_name_strategy) \
            if cfg.confluent_key_schema_validation else None
        value = self._side(topic, "value", cfg.confluent_value_subject_name_strategy) \
            if cfg.confluent_value_schema_validation else None
        if key is None and value is None:
            return
        if batches is None:
            batches = validate_batches(records)
        bodies = _bodies(records, batches)
        fresh: set[int] = set()
        for _ in range(MAX_FETCHES):
            try:
                return _check_all(bodies, key, value, fresh)
            except _Missing as m:
                try:
                    await self.client.fetch(m.schema_id, refresh=m.refresh)
                except KafkaError as e:
                    self._count(topic, "registry_unavailable")
                    log.warning("refused records produced to %s: %s", topic, e.message)
                    raise
                fresh.add(m.schema_id)
            except _Failed as f:
                self._count(topic, f.reason)
                log.warning("refused records produced to %s: record %d: %s", topic, f.index, f.message)
                raise KafkaError(ErrorCode.INVALID_RECORD, f"record {f.index}: {f.message}",
                                 record_errors=[(f.index, f.message)]) from None
        raise KafkaError(ErrorCode.INVALID_RECORD, f"records use more than {MAX_FETCHES} schemas not seen before")

    def _count(self, topic: str, reason: str) -> None:
        self.failures += 1
        if FAILURES is not None:
            FAILURES.labels(topic, reason).inc()


class _Failed(Exception):
    def __init__(self, index: int, reason: str, message: str):
        self.index, self.reason, self.message = index, reason, message


def _bodies(records, batches) -> list[tuple[bytes, int]]:
    """(records section as bytes, record count) per batch, decompressed."""
    view = memoryview(records)
    out = []
    for h in batches:
        body = view[h.position + HEADER_SIZE: h.position + h.size]
        out.append((bytes(decompress(h.compression, body) if h.compression else body), h.records_count))
    return out


def _check_all(bodies, key: _Side | None, value: _Side | None, fresh: set[int]) -> None:
    index = 0
    for body, count in bodies:
        _check_body(body, count, index, key, value, fresh)
        index += count


def _check_body(body: bytes, count: int, first: int, key: _Side | None, value: _Side | None,
                fresh: set[int]) -> None:
    """Walk `count` records of one batch body (Kafka's record framing, single-byte varints inline); the
    value check is inlined too: this loop and fastavro are the whole per-record cost."""
    bio = BytesIO(body)
    seek, tell = bio.seek, bio.tell
    wire = _WIRE.unpack_from
    admitted = value.admitted if value is not None else None
    end = len(body)
    pos = 0
    i = first
    try:
        for i in range(first, first + count):  # noqa: B007 - the except clauses name record i
            b = body[pos]
            if b < 0x80:
                length, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif body[pos + 1] < 0x80:  # records of 64 B to 8 KiB
                b = (b & 0x7F) | (body[pos + 1] << 7)
                length, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                length, pos = read_varint(body, pos, end)
            rend = pos + length
            if length < 6 or rend > end:
                raise _Invalid("framing", f"record length {length} does not fit the batch")
            p = pos + 1  # attributes
            while body[p] > 0x7F:  # timestamp delta
                p += 1
            p += 1
            while body[p] > 0x7F:  # offset delta
                p += 1
            b = body[p + 1]
            if b < 0x80:
                klen, p = (b >> 1) ^ -(b & 1), p + 2
            else:
                klen, p = read_varint(body, p + 1, rend)
            kstart = p
            if klen > 0:
                p += klen
            b = body[p]
            if b < 0x80:
                vlen, p = (b >> 1) ^ -(b & 1), p + 1
            elif body[p + 1] < 0x80:
                b = (b & 0x7F) | (body[p + 1] << 7)
                vlen, p = (b >> 1) ^ -(b & 1), p + 2
            else:
                vlen, p = read_varint(body, p, rend)
            vend = p + vlen
            if klen < -1 or vlen < -1 or vend > rend:
                raise _Invalid("framing", "record key or value length does not fit the record")
            if key is not None and klen >= 0:
                key.check(bio, body, kstart, kstart + klen, fresh)
            if admitted is not None and vlen >= 0:  # value.check, inlined
                if vlen < 5 or body[p]:
                    value.check(bio, body, p, vend, fresh)  # raises the reason
                dec = admitted.get(wire(body, p)[1]) or value.admit(wire(body, p)[1], fresh)
                if dec.guard is not None:
                    dec.guard.check(body, p + 5, vend)
                seek(p + 5)
                _read_data(bio, dec.schema, dec.named, None, _OPTIONS)
                if tell() != vend:
                    value.leftover(tell(), vend)
            pos = rend
    except _Missing:
        raise
    except _Invalid as e:
        raise _Failed(i, e.reason, str(e)) from None
    except GuardError as e:
        raise _Failed(i, "bounds", f"Avro data refused: {e}") from None
    except EOFError:
        raise _Failed(i, "decode", "Avro data is truncated: it needs more bytes than the payload has") from None
    except UnicodeDecodeError:
        raise _Failed(i, "decode", "Avro string is not valid UTF-8") from None
    except KafkaError as e:  # a corrupt varint in the record framing
        raise _Failed(i, "framing", e.message or e.code.name) from None
    except Exception as e:  # noqa: BLE001 - fastavro raises EOFError, ValueError, IndexError, KeyError...
        raise _Failed(i, "decode", f"not valid Avro under its schema: {type(e).__name__}: {e}") from None
