"""The registry's operations, one async method per REST operation, in Confluent's JSON shapes.

Reads answer from the Store; writes run under one lock (check, then write to the topic, then wait
until the reader applied it), so the registry is the single writer of its topic. Behaviour follows
Confluent Schema Registry: soft delete before permanent delete, ids shared by equal schemas across
subjects, soft-deleted versions skipped by compatibility checks but still readable by id.
Keystream differences: ids are never reused (Store.max_id survives compaction via ID_HWM records),
and subject names with control characters, longer than MAX_SUBJECT_CHARS, or empty are refused (42208).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from . import compat, errors
from .kafkastore import KafkaStore
from .schema import ParsedSchema, Reference, SchemaError, parse_schema
from .store import ID_HWM_KEY, Store, Version, schema_key, schema_value, subject_key

MAX_SUBJECT_CHARS = 1000
MAX_VERSION = 2**31 - 1
MODES = ("READWRITE", "READONLY", "IMPORT")
RESERVED_SUBJECTS = ("__GLOBAL", "__EMPTY")  # Confluent's internal names
Readable = Callable[[str], bool]  # whether the caller may read a subject; None: everything


class Log(Protocol):
    async def start(self) -> None: ...
    async def write(self, key: dict, value: dict | None) -> int: ...
    async def close(self) -> None: ...


def check_subject(subject: str) -> None:
    """Refuse names Confluent refuses (control characters) and ones we cannot store safely."""
    if (not subject or len(subject) > MAX_SUBJECT_CHARS or subject in RESERVED_SUBJECTS
            or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in subject)):
        raise errors.invalid_subject(subject)


def _version_number(text: str | int) -> int | None:
    """A version path segment: None for latest ("latest", -1), else 1..2^31-1 (42202 otherwise)."""
    text = str(text).strip()
    if text.lower() == "latest" or text == "-1":
        return None
    if text.isdigit() and 1 <= int(text) <= MAX_VERSION:
        return int(text)
    raise errors.invalid_version(text)


def _shape(v: Version, *, subject: bool = True) -> dict:
    """Confluent's schema object: schemaType only when not AVRO, references only when present."""
    out: dict[str, Any] = {"subject": v.subject, "version": v.version, "id": v.id} if subject else {}
    if v.schema_type != "AVRO":
        out["schemaType"] = v.schema_type
    if v.references:
        out["references"] = [{"name": n, "subject": s, "version": ver} for n, s, ver in v.references]
    out["schema"] = v.schema
    return out



@functools.lru_cache(maxsize=256)
def _parse_plain(text: str, schema_type: str) -> ParsedSchema:
    """Serializers register the same schema again and again: parsing it is half the cost of such a
    request (578 us of registry CPU per request before, bench/README.md)."""
    return parse_schema(text, schema_type)

class RegistryService:
    """Holds the Store and the log that feeds it (the `_schemas` topic unless another is given)."""

    def __init__(self, config: Mapping[str, Any], log: Log | None = None):
        self.store = Store()
        self.log = log if log is not None else KafkaStore(config, self.store.apply)
        self.default_compatibility = str(config.get("schema.compatibility.level") or "BACKWARD").upper()
        self.mode_mutability = bool(config.get("mode.mutability", True))
        self._lock = asyncio.Lock()
        self._parsed: dict[int, ParsedSchema] = {}

    async def start(self) -> None:
        """Read the topic to its end; serve only after this returns."""
        await self.log.start()

    async def close(self) -> None:
        await self.log.close()

    # ---------------------------------------------------------------- parsing
    def _resolve(self, ref: Reference, readable: Readable | None = None) -> ParsedSchema:
        """A referenced schema; one the caller may not read is reported missing, with the same text."""
        v = self.store.get(ref.subject, ref.version)
        if v is None or (readable is not None and not readable(ref.subject)):
            raise SchemaError(f"Invalid schema reference {ref.name!r}: subject {ref.subject!r} version "
                              f"{ref.version} not found")
        return self._parse_stored(v)

    def _parse_stored(self, v: Version) -> ParsedSchema:
        """Parsed form of a stored version, cached by id (an id always names the same schema)."""
        parsed = self._parsed.get(v.id)
        if parsed is None:
            refs = [Reference(*r) for r in v.references]
            parsed = self._parsed[v.id] = parse_schema(v.schema, v.schema_type, refs, self._resolve)
        return parsed

    def _parse_body(self, body: object, readable: Readable | None = None) -> ParsedSchema:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str) or not body["schema"].strip():
            raise errors.invalid_schema("Empty schema" if isinstance(body, dict) and "schema" in body
                                        else "The request has no \"schema\" field")
        refs = []
        for r in body.get("references") or ():
            if not (isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("subject"), str)
                    and isinstance(r.get("version"), int) and not isinstance(r.get("version"), bool)):
                raise errors.invalid_schema(f"Invalid schema reference {r!r}")
            refs.append(Reference(r["name"], r["subject"], r["version"]))
        try:
            if not refs:  # what a referenced schema resolves to can change; a plain one cannot
                return _parse_plain(body["schema"], str(body.get("schemaType") or "AVRO"))
            return parse_schema(body["schema"], str(body.get("schemaType") or "AVRO"), refs,
                                functools.partial(self._resolve, readable=readable))
        except SchemaError as exc:
            raise errors.invalid_schema(str(exc)) from None
        except RecursionError:
            raise errors.invalid_schema("Schema is nested too deeply") from None

    # ---------------------------------------------------------------- effective settings
    def _compatibility(self, subject: str | None) -> str:
        return (subject and self.store.config(subject)) or self.store.config(None) or self.default_compatibility

    def _mode(self, subject: str | None) -> str:
        return (subject and self.store.mode(subject)) or self.store.mode(None) or "READWRITE"

    def _check_writable(self, subject: str | None) -> None:
        if self._mode(subject) == "READONLY":
            raise errors.operation_not_permitted(f"Subject {subject or '(global)'} is in read-only mode")

    def _existing(self, subject: str, deleted: bool = False) -> list[Version]:
        check_subject(subject)
        versions = self.store.versions(subject, deleted)
        if not versions:
            raise errors.subject_not_found(subject)
        return versions

    def _find(self, subject: str, version_str: str | int, deleted: bool) -> Version:
        number = _version_number(version_str)
        versions = self._existing(subject, deleted)
        if number is None:
            return versions[-1]
        for v in versions:
            if v.version == number:
                return v
        raise errors.version_not_found(number)

    # ---------------------------------------------------------------- schemas under subjects
    async def register(self, subject: str, body: dict, normalize: bool = False, readable: Readable | None = None) -> dict:
        """`readable` limits what references may name and which existing ids an equal schema reuses."""
        check_subject(subject)
        given_id, given_version = self._import_fields(body)
        async with self._lock:
            mode = self._mode(subject)
            self._check_writable(subject)
            if given_id is not None and mode != "IMPORT":
                raise errors.operation_not_permitted(f"Subject {subject} is not in import mode")
            if given_id is None and mode != "READWRITE":
                raise errors.operation_not_permitted(f"Subject {subject} is not in read-write mode")
            new = self._parse_body(body, readable)
            text = new.normalized if normalize else new.canonical
            refs = tuple((r.name, r.subject, r.version) for r in new.references)
            content = (new.schema_type, text, refs)
            every = self.store.versions(subject, deleted=True)
            live = [v for v in every if not v.deleted]
            known_id = self.store.id_for(content, None if readable is None else functools.partial(
                self._id_visible, readable=readable))
            if given_id is None:
                for v in reversed(live):
                    if v.content == content or self._parse_stored(v).identity(normalize) == new.identity(normalize):
                        return {"id": v.id}
            else:
                self._check_import(subject, given_id, given_version, content, every)
                same = [v for v in live if v.id == given_id and v.content == content]
                if same and given_version in (None, same[-1].version):
                    return {"id": given_id}
            if mode != "IMPORT":
                problems = compat.check(self._compatibility(subject), new, [self._parse_stored(v) for v in live])
                if problems:
                    raise errors.incompatible(f"Schema being registered is incompatible with an earlier schema for "
                                              f"subject \"{subject}\", details: [{', '.join(problems)}]")
            next_version = max((v.version for v in every), default=0) + 1
            if given_version is not None and given_version != next_version and mode != "IMPORT":
                raise errors.invalid_schema("Version is not one more than previous version")
            schema_id = given_id if given_id is not None else (known_id or self.store.max_id + 1)
            record = Version(subject, given_version or next_version, schema_id, text, new.schema_type, refs)
            # Like Confluent: a soft-deleted older version with the same id makes way for the new one.
            for old in every:
                if old.deleted and old.id == schema_id and not self.store.referenced_by(subject, old.version, True):
                    await self.log.write(schema_key(subject, old.version), None)
            self._parsed.setdefault(schema_id, new)
            await self.log.write(schema_key(subject, record.version), schema_value(record))
            return {"id": schema_id}

    @staticmethod
    def _import_fields(body: object) -> tuple[int | None, int | None]:
        if not isinstance(body, dict):
            raise errors.invalid_schema("The request body must be a JSON object")
        out = []
        for name in ("id", "version"):
            value = body.get(name)
            if value is None or value in (0, -1):
                out.append(None)
            elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_VERSION:
                out.append(value)
            else:
                raise errors.invalid_schema(f"Invalid {name} {value!r}")
        return out[0], out[1]

    def _check_import(self, subject: str, schema_id: int, version: int | None, content: tuple,
                      every: list[Version]) -> None:
        holder = self.store.by_id(schema_id)
        if holder is not None and holder.content != content:
            raise errors.operation_not_permitted(f"Overwrite new schema with id {schema_id} is not permitted.")
        taken = next((v for v in every if v.version == version), None)
        if taken is not None and (taken.id != schema_id or taken.content != content):
            raise errors.operation_not_permitted(f"Overwrite new schema for subject {subject} version {version}"
                                                 " is not permitted.")

    def _id_visible(self, schema_id: int, readable: Readable) -> bool:
        return any(readable(v.subject) for v in self.store.with_id(schema_id))

    async def lookup(self, subject: str, body: dict, normalize: bool = False, deleted: bool = False,
                     readable: Readable | None = None) -> dict:
        versions = self._existing(subject, deleted)
        new = self._parse_body(body, readable)
        wanted = new.identity(normalize)
        for v in reversed(versions):
            if self._parse_stored(v).identity(normalize) == wanted:
                return _shape(v)
        raise errors.schema_not_found()

    async def subjects(self, prefix: str | None = None, deleted: bool = False) -> list[str]:
        prefix = "" if prefix in (None, ":*:") else prefix
        return [s for s in self.store.subjects(deleted) if s.startswith(prefix)]

    async def versions(self, subject: str, deleted: bool = False) -> list[int]:
        return [v.version for v in self._existing(subject, deleted)]

    async def get_version(self, subject: str, version_str: str, deleted: bool = False) -> dict:
        return _shape(self._find(subject, version_str, deleted))

    async def referenced_by(self, subject: str, version_str: str) -> list[int]:
        v = self._find(subject, version_str, True)
        return sorted({r.id for r in self.store.referenced_by(subject, v.version)})

    async def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        async with self._lock:
            every = self._existing(subject, deleted=True)
            self._check_writable(subject)
            live = [v for v in every if not v.deleted]
            if not permanent and not live:
                raise errors.subject_soft_deleted(subject)
            if permanent and live:
                raise errors.subject_not_soft_deleted(subject)
            targets = live if not permanent else every
            for v in targets:
                if any(r.subject != subject for r in self.store.referenced_by(subject, v.version, permanent)):
                    raise errors.reference_exists(subject, v.version)
            if not permanent:
                await self.log.write(subject_key("DELETE_SUBJECT", subject),
                                     {"subject": subject, "version": live[-1].version})
            else:
                await self._keep_id_hwm()
                for v in reversed(every):
                    await self.log.write(schema_key(subject, v.version), None)
                await self._drop_settings(subject)
            return [v.version for v in targets]

    async def delete_version(self, subject: str, version_str: str, permanent: bool = False) -> int:
        number = _version_number(version_str)
        async with self._lock:
            every = self._existing(subject, deleted=True)
            self._check_writable(subject)
            if number is None:
                candidates = every if permanent else [v for v in every if not v.deleted]
                if not candidates:
                    raise errors.subject_soft_deleted(subject)
                target = candidates[-1]
            else:
                target = next((v for v in every if v.version == number), None)
                if target is None:
                    raise errors.version_not_found(number)
            if not permanent and target.deleted:
                raise errors.version_soft_deleted(subject, target.version)
            if permanent and not target.deleted:
                raise errors.version_not_soft_deleted(subject, target.version)
            if self.store.referenced_by(subject, target.version, permanent):
                raise errors.reference_exists(subject, target.version)
            if not permanent:
                await self.log.write(schema_key(subject, target.version), schema_value(replace(target, deleted=True)))
            else:
                await self._keep_id_hwm()
                await self.log.write(schema_key(subject, target.version), None)
                if not self.store.versions(subject, deleted=True):
                    await self._drop_settings(subject)
            return target.version

    async def _keep_id_hwm(self) -> None:
        """Record the highest id before records that carry it may be compacted away."""
        await self.log.write(ID_HWM_KEY, {"id": self.store.max_id})

    async def _drop_settings(self, subject: str) -> None:
        if self.store.mode(subject) is not None:
            await self.log.write(subject_key("MODE", subject), None)
        if self.store.config(subject) is not None:
            await self.log.write(subject_key("CONFIG", subject), None)

    # ---------------------------------------------------------------- schemas by id
    def _with_id(self, schema_id: int, deleted: bool) -> list[Version]:
        found = [v for v in self.store.with_id(int(schema_id)) if deleted or not v.deleted]
        if not found:
            raise errors.schema_not_found(schema_id)
        return found

    async def schema_by_id(self, schema_id: int, subject: str | None = None) -> dict:
        found = self._with_id(schema_id, True)
        chosen = next((v for v in found if v.subject == subject), None) or self.store.by_id(int(schema_id))
        return _shape(chosen, subject=False)

    async def subjects_for_id(self, schema_id: int, deleted: bool = False) -> list[str]:
        return sorted({v.subject for v in self._with_id(schema_id, deleted)})

    async def versions_for_id(self, schema_id: int, deleted: bool = False) -> list[dict]:
        return [{"subject": v.subject, "version": v.version} for v in self._with_id(schema_id, deleted)]

    async def schemas(self, prefix: str | None = None, deleted: bool = False, latest_only: bool = False) -> list[dict]:
        out = []
        for subject in await self.subjects(prefix, deleted):
            versions = self.store.versions(subject, deleted)
            out += [_shape(v) for v in (versions[-1:] if latest_only else versions)]
        return out

    # ---------------------------------------------------------------- config and mode
    async def get_config(self, subject: str | None = None, default_to_global: bool = False) -> dict:
        if subject is None:
            return {"compatibilityLevel": self._compatibility(None)}
        check_subject(subject)
        level = self.store.config(subject)
        if level is None:
            if not default_to_global:
                raise errors.subject_level_compat_not_configured(subject)
            level = self._compatibility(None)
        return {"compatibilityLevel": level}

    async def set_config(self, subject: str | None, body: dict) -> dict:
        if subject is not None:
            check_subject(subject)
        level = body.get("compatibility", body.get("compatibilityLevel")) if isinstance(body, dict) else None
        if not isinstance(level, str) or level.upper() not in compat.LEVELS:
            raise errors.invalid_compatibility_level()
        level = level.upper()
        async with self._lock:
            self._check_writable(subject)
            await self.log.write(subject_key("CONFIG", subject), {**({"subject": subject} if subject else {}),
                                                                   "compatibilityLevel": level})
        return {"compatibility": level}

    async def delete_config(self, subject: str | None = None) -> dict:
        async with self._lock:
            if subject is None:
                before = self._compatibility(None)
            else:
                check_subject(subject)
                before = self.store.config(subject)
                if before is None:
                    raise errors.subject_level_compat_not_configured(subject)
            self._check_writable(subject)
            if self.store.config(subject) is not None:
                await self.log.write(subject_key("CONFIG", subject), None)
        return {"compatibilityLevel": before}

    async def get_mode(self, subject: str | None = None, default_to_global: bool = False) -> dict:
        if subject is None:
            return {"mode": self._mode(None)}
        check_subject(subject)
        mode = self.store.mode(subject)
        if mode is None:
            if not default_to_global:
                raise errors.subject_level_mode_not_configured(subject)
            mode = self._mode(None)
        return {"mode": mode}

    async def set_mode(self, subject: str | None, body: dict, force: bool = False) -> dict:
        if subject is not None:
            check_subject(subject)
        if not self.mode_mutability:
            raise errors.operation_not_permitted("Mode changes are not allowed")
        mode = body.get("mode") if isinstance(body, dict) else None
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise errors.invalid_mode()
        mode = mode.upper()
        async with self._lock:
            if mode == "IMPORT" and self._mode(subject) != "IMPORT" and not force:
                live = self.store.subjects() if subject is None else self.store.versions(subject)
                if live:
                    raise errors.operation_not_permitted("Cannot import since found existing subjects")
            await self.log.write(subject_key("MODE", subject), {**({"subject": subject} if subject else {}),
                                                                 "mode": mode})
        return {"mode": mode}

    async def delete_mode(self, subject: str | None = None) -> dict:
        if subject is not None:
            check_subject(subject)
        if not self.mode_mutability:
            raise errors.operation_not_permitted("Mode changes are not allowed")
        async with self._lock:
            before = self.store.mode(subject)
            if before is None:
                if subject is not None:
                    raise errors.subject_level_mode_not_configured(subject)
                return {"mode": self._mode(None)}
            await self.log.write(subject_key("MODE", subject), None)
        return {"mode": before}

    # ---------------------------------------------------------------- compatibility
    async def test_compatibility(self, subject: str, version_str: str | None, body: dict,
                                 verbose: bool = False, readable: Readable | None = None) -> dict:
        check_subject(subject)
        new = self._parse_body(body, readable)
        live = self.store.versions(subject)
        if version_str is None:
            previous = live
        elif not live and _version_number(version_str) is None:
            previous = []  # "latest" of a subject with no versions: nothing to be incompatible with
        else:
            previous = [self._find(subject, version_str, False)]
        problems = compat.check(self._compatibility(subject), new, [self._parse_stored(v) for v in previous])
        out: dict[str, Any] = {"is_compatible": not problems}
        if verbose:
            out["messages"] = list(problems)
        return out
