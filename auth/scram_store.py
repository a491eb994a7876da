"""SCRAM credentials kept durably in the broker's metadata log and in memory for logins.

One record per (user, mechanism), keyed `scram\\0<user>\\0<mechanism>`, so compaction keeps exactly
the live credentials and a delete is a tombstone. The value is compact JSON with base64 bytes: the
salt, iterations, StoredKey and ServerKey, never a password. Memory changes only after the records
are fsynced, so a login sees a credential exactly when it is durable. `lookup` runs on the event
loop for every SCRAM login and never waits for a write's fsync.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable

from keystream.auth.sasl.scram import HASHES, ScramCredential

log = logging.getLogger("keystream.scram")

KEY_PREFIX = b"scram\0"


def encode_key(user: str, mechanism: str) -> bytes:
    return KEY_PREFIX + user.encode("utf-8") + b"\0" + mechanism.encode("ascii")


def decode_key(key: bytes) -> tuple[str, str]:
    user, sep, mechanism = key[len(KEY_PREFIX):].rpartition(b"\0")  # a user name may hold NUL, a mechanism not
    if not sep or mechanism.decode("ascii") not in HASHES:
        raise ValueError("not a SCRAM credential key")
    return user.decode("utf-8"), mechanism.decode("ascii")


def encode_value(cred: ScramCredential) -> bytes:
    fields = {"salt": cred.salt, "stored_key": cred.stored_key, "server_key": cred.server_key}
    doc = {name: base64.b64encode(value).decode("ascii") for name, value in fields.items()}
    doc["iterations"] = cred.iterations
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def decode_value(mechanism: str, value: bytes) -> ScramCredential:
    doc = json.loads(value)
    return ScramCredential(mechanism, base64.b64decode(doc["salt"]), int(doc["iterations"]),
                           base64.b64decode(doc["stored_key"]), base64.b64decode(doc["server_key"]))


class ScramStore:
    """The credential set: `load()` replays the metadata log; `alter` writes it, then memory."""

    def __init__(self, metadata_log):
        self.log = metadata_log
        self._lock = threading.Lock()  # the in-memory map
        self._write_lock = threading.Lock()  # keeps writers in log order
        self._credentials: dict[tuple[str, str], ScramCredential] = {}

    def load(self) -> None:
        credentials = {}
        for key, value in self.log.replay(KEY_PREFIX):
            try:
                user, mechanism = decode_key(key)
                credentials[(user, mechanism)] = decode_value(mechanism, value)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("skipping unreadable SCRAM record %r: %s", key[:200], type(exc).__name__)
        with self._lock:
            self._credentials = credentials
        log.info("loaded %d SCRAM credentials", len(credentials))

    def lookup(self, user: str, mechanism: str) -> ScramCredential | None:
        with self._lock:
            return self._credentials.get((user, mechanism))

    def alter(self, upserts: Iterable[tuple[str, ScramCredential]] = (),
              deletes: Iterable[tuple[str, str]] = ()) -> None:
        """Applies the upserts (user, credential) and deletions (user, mechanism) as one atomic batch."""
        upserts, deletes = list(upserts), list(deletes)
        entries = [(encode_key(u, c.mechanism), encode_value(c)) for u, c in upserts]
        entries += [(encode_key(u, m), None) for u, m in deletes]
        if not entries:
            return
        with self._write_lock:  # lookups never wait for the fsync
            self.log.append_many(entries)
            with self._lock:
                for user, cred in upserts:
                    self._credentials[(user, cred.mechanism)] = cred
                for key in deletes:
                    self._credentials.pop(key, None)

    def upsert(self, user: str, credential: ScramCredential) -> None:
        self.alter(upserts=[(user, credential)])

    def delete(self, user: str, mechanism: str) -> None:
        self.alter(deletes=[(user, mechanism)])

    def describe(self) -> dict[str, dict[str, int]]:
        """{user: {mechanism: iterations}} for every user with a credential."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (user, mechanism), cred in self._credentials.items():
                out.setdefault(user, {})[mechanism] = cred.iterations
        return out
