"""ACLs kept durably in the broker's metadata log and in memory as the index the authorizer reads.

Each binding is its own record, keyed by the whole binding (`acl\\0` + JSON), so compaction keeps
exactly the live set and a delete is a tombstone for that key. The index changes only after the
records are fsynced, so the next request sees an ACL exactly when it is durable.
"""

from __future__ import annotations

import json
import logging

from keystream.auth.acl.matching import AclIndex
from keystream.auth.acl.model import (
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

log = logging.getLogger("keystream.acl")

KEY_PREFIX = b"acl\0"


def encode_key(b: AclBinding) -> bytes:
    fields = [int(b.resource_type), b.name, int(b.pattern_type), b.principal, b.host, int(b.operation),
              int(b.permission)]
    return KEY_PREFIX + json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def decode_key(key: bytes) -> AclBinding:
    rt, name, pt, principal, host, op, perm = json.loads(key[len(KEY_PREFIX):])
    return AclBinding(ResourceType(rt), name, PatternType(pt), principal, host, Operation(op), Permission(perm))


class AclStore:
    """The set of ACLs: `load()` replays the metadata log; create/delete write it, then the index."""

    def __init__(self, metadata_log):
        self.log = metadata_log
        self.index = AclIndex()

    def load(self) -> None:
        index = AclIndex()
        for key, _value in self.log.replay(KEY_PREFIX):
            try:
                index.add(decode_key(key))
            except (ValueError, TypeError) as exc:
                log.warning("skipping unreadable ACL record %r: %s", key[:200], exc)
        self.index = index
        log.info("loaded %d ACLs", len(index))

    def add(self, bindings: list[AclBinding]) -> None:
        """Persists the new ones (already valid); existing bindings are left alone, as in Kafka."""
        new = list(dict.fromkeys(b for b in bindings if b not in self.index))
        if new:
            self.log.append_many([(encode_key(b), b"{}") for b in new])
            for b in new:
                self.index.add(b)

    def remove(self, bindings: set[AclBinding]) -> None:
        present = [b for b in bindings if b in self.index]
        if present:
            self.log.append_many([(encode_key(b), None) for b in present])
            for b in present:
                self.index.remove(b)

    def matching(self, f: AclBindingFilter) -> list[AclBinding]:
        return self.index.matching(f)
