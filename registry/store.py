"""The registry's state, rebuilt by applying the `_schemas` topic's records in order.

Records use Confluent's key and value JSON so a topic written by Confluent Schema Registry (or
Karapace) reads back here and the other way round; keys are serialized byte-for-byte as Confluent
does (field order, compact JSON) so compaction collapses our records and theirs alike. Keystream
adds one key type, `ID_HWM` (`{"keytype":"ID_HWM","magic":0}` -> `{"id": n}`): the highest id ever
assigned, written on permanent deletes so that ids stay unique after compaction drops the deleted
schemas' records. Confluent's reader skips key types it does not know.

The store only holds and indexes state; RegistryService decides what to write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

Ref = tuple[str, str, int]  # (name, subject, version), Confluent's reference fields


@dataclass(frozen=True)
class Version:
    """One subject version, as stored in a SCHEMA record."""

    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"
    references: tuple[Ref, ...] = ()
    deleted: bool = False

    @property
    def content(self) -> tuple[str, str, tuple[Ref, ...]]:
        """What makes two versions the same schema (and so the same id)."""
        return self.schema_type, self.schema, self.references


# ------------------------------------------------------------------ record encoding

def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def schema_key(subject: str, version: int) -> dict:
    return {"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}


def subject_key(keytype: str, subject: str | None) -> dict:
    """CONFIG, MODE or DELETE_SUBJECT key; the global config/mode has no subject (Confluent omits it)."""
    key: dict = {"keytype": keytype}
    if subject:
        key["subject"] = subject
    key["magic"] = 0
    return key


NOOP_KEY = {"keytype": "NOOP", "magic": 0}
ID_HWM_KEY = {"keytype": "ID_HWM", "magic": 0}


def schema_value(v: Version) -> dict:
    value: dict = {"subject": v.subject, "version": v.version, "id": v.id}
    if v.schema_type != "AVRO":
        value["schemaType"] = v.schema_type
    if v.references:
        value["references"] = [{"name": n, "subject": s, "version": ver} for n, s, ver in v.references]
    value["schema"] = v.schema
    value["deleted"] = v.deleted
    return value


def encode(key: dict, value: dict | None) -> tuple[bytes, bytes | None]:
    return _dumps(key), None if value is None else _dumps(value)


def decode(key: bytes | None, value: bytes | None) -> tuple[dict, dict | None] | None:
    """Parse a record; None for records that are not registry records (logged, skipped)."""
    try:
        k = json.loads(key) if key else None
        v = json.loads(value) if value else None
    except (ValueError, UnicodeDecodeError):
        log.warning("skipping a _schemas record that is not JSON")
        return None
    if not isinstance(k, dict) or not isinstance(k.get("keytype"), str) or not (v is None or isinstance(v, dict)):
        log.warning("skipping a _schemas record with an unexpected shape")
        return None
    return k, v


def _version_from(value: dict) -> Version:
    refs = tuple((str(r["name"]), str(r["subject"]), int(r["version"])) for r in value.get("references") or ())
    return Version(subject=str(value["subject"]), version=int(value["version"]), id=int(value["id"]),
                   schema=str(value["schema"]), schema_type=str(value.get("schemaType") or "AVRO"),
                   references=refs, deleted=bool(value.get("deleted", False)))


# ------------------------------------------------------------------ the state

class Store:
    """Subjects, versions, ids, configs and modes; `apply()` folds in one record."""

    def __init__(self) -> None:
        self._subjects: dict[str, dict[int, Version]] = {}
        self._ids: dict[int, set[tuple[str, int]]] = {}
        self._content_ids: dict[tuple, list[int]] = {}  # equal schemas under ids of different tenants
        self._configs: dict[str | None, str] = {}
        self._modes: dict[str | None, str] = {}
        self.max_id = 0

    # ---------------------------------------------------------------- applying records
    def apply(self, key: dict, value: dict | None) -> None:
        """Fold one record in; malformed or unknown records are logged and skipped, never raised."""
        keytype = key.get("keytype")
        try:
            if keytype == "SCHEMA":
                self._apply_schema(str(key["subject"]), int(key["version"]), value)
            elif keytype == "CONFIG":
                self._apply_setting(self._configs, key.get("subject") or None, value, "compatibilityLevel")
            elif keytype == "MODE":
                self._apply_setting(self._modes, key.get("subject") or None, value, "mode")
            elif keytype == "DELETE_SUBJECT" and value is not None:
                self._soft_delete_subject(str(value["subject"]), int(value["version"]))
            elif keytype == "ID_HWM" and value is not None:
                self.max_id = max(self.max_id, int(value["id"]))
            elif keytype not in ("NOOP", "DELETE_SUBJECT", "CLEAR_SUBJECT"):
                log.debug("ignoring _schemas record of key type %s", ascii(keytype))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping malformed _schemas %s record: %s", ascii(keytype), exc)

    def _apply_schema(self, subject: str, version: int, value: dict | None) -> None:
        if value is None:
            self._remove(subject, version)
            return
        new = _version_from(value)
        if (new.subject, new.version) != (subject, version):
            raise ValueError("key and value name different subject versions")
        holder = self.by_id(new.id)
        if holder is not None and holder.content != new.content:
            log.error("ignoring schema %s version %d: id %d already names another schema", ascii(subject),
                      version, new.id)
            return
        self._remove(subject, version)
        self._subjects.setdefault(subject, {})[version] = new
        self._ids.setdefault(new.id, set()).add((subject, version))
        ids = self._content_ids.setdefault(new.content, [])
        if new.id not in ids:
            ids.append(new.id)
        self.max_id = max(self.max_id, new.id)

    def _remove(self, subject: str, version: int) -> None:
        versions = self._subjects.get(subject, {})
        old = versions.pop(version, None)
        if not versions:
            self._subjects.pop(subject, None)
        if old is None:
            return
        keys = self._ids[old.id]
        keys.discard((subject, version))
        if not keys:
            del self._ids[old.id]
            ids = self._content_ids.get(old.content, [])
            if old.id in ids:
                ids.remove(old.id)
            if not ids:
                self._content_ids.pop(old.content, None)

    def _soft_delete_subject(self, subject: str, up_to: int) -> None:
        versions = self._subjects.get(subject, {})
        for number, v in versions.items():
            if number <= up_to and not v.deleted:
                versions[number] = replace(v, deleted=True)

    @staticmethod
    def _apply_setting(table: dict, subject: str | None, value: dict | None, field: str) -> None:
        setting = None if value is None else value.get(field)
        if setting is None:
            table.pop(subject, None)
        else:
            table[subject] = str(setting).upper()

    # ---------------------------------------------------------------- queries
    def subjects(self, deleted: bool = False) -> list[str]:
        """Subjects with a live version (any version when `deleted`), sorted."""
        return sorted(s for s, vs in self._subjects.items() if deleted or any(not v.deleted for v in vs.values()))

    def versions(self, subject: str, deleted: bool = False) -> list[Version]:
        """The subject's versions, oldest first; soft-deleted ones only when `deleted`."""
        versions = self._subjects.get(subject, {})
        return [versions[n] for n in sorted(versions) if deleted or not versions[n].deleted]

    def get(self, subject: str, version: int) -> Version | None:
        return self._subjects.get(subject, {}).get(version)

    def with_id(self, schema_id: int) -> list[Version]:
        """Every version carrying `schema_id` (soft-deleted included), by subject then version."""
        return sorted((self._subjects[s][v] for s, v in self._ids.get(schema_id, ())),
                      key=lambda v: (v.subject, v.version))

    def by_id(self, schema_id: int) -> Version | None:
        """A version carrying `schema_id`, live ones first: they all hold the same schema."""
        found = self.with_id(schema_id)
        return min(found, key=lambda v: v.deleted) if found else None

    def id_for(self, content: tuple, usable: Callable[[int], bool] | None = None) -> int | None:
        """The first id already given to this (type, schema text, references) that a record still has
        and `usable` accepts (an id the writer may see: reusing a hidden one would tell it that
        another tenant registered the same schema)."""
        return next((i for i in self._content_ids.get(content, ()) if usable is None or usable(i)), None)

    def referenced_by(self, subject: str, version: int, deleted: bool = False) -> list[Version]:
        """Versions whose references name subject/version (soft-deleted referrers only when `deleted`)."""
        return [v for v in self._all() if (not v.deleted or deleted)
                and any(s == subject and n == version for _, s, n in v.references)]

    def _all(self) -> Iterable[Version]:
        for versions in self._subjects.values():
            yield from versions.values()

    def config(self, subject: str | None) -> str | None:
        return self._configs.get(subject)

    def mode(self, subject: str | None) -> str | None:
        return self._modes.get(subject)
