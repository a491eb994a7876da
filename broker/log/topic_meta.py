"""Durable topic metadata (name, 16-byte id, partition count, config overrides, internal flag), one
small JSON file per topic under `<first log.dir>/__keystream_meta/`, replaced atomically (temp file,
fsync, rename, fsync of the directory) so a crash leaves the old or the new version.
Also Kafka's topic-name rules.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from keystream.broker.errors import ErrorCode, KafkaError
from keystream.broker.log.fileio import fsync_dir, read_json, remove_quietly, write_json

META_DIR = "__keystream_meta"
MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: str) -> None:
    """Kafka's org.apache.kafka.common.internals.Topic.validate rules."""
    if not name:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, 'Topic name cannot be "." or ".."')
    if len(name) > MAX_NAME_LENGTH:
        raise KafkaError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}",
        )
    if not _LEGAL.fullmatch(name):
        raise KafkaError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, "
            "'.', '_' and '-'",
        )


def collides(a: str, b: str) -> bool:
    """'.' and '_' map to the same metric name in Kafka, so such topics may not coexist."""
    return a != b and a.replace(".", "_") == b.replace(".", "_")


@dataclass
class TopicMeta:
    name: str
    topic_id: bytes
    partitions: int
    overrides: dict[str, str] = field(default_factory=dict)
    internal: bool = False


class TopicMetaStore:
    """One JSON file per topic, named by topic id (a 249-character name would not fit a file name)."""

    def __init__(self, log_dir: str):
        self.dir = os.path.join(log_dir, META_DIR)
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, topic_id: bytes) -> str:
        return os.path.join(self.dir, f"{topic_id.hex()}.json")

    def save(self, meta: TopicMeta) -> None:
        write_json(self._path(meta.topic_id), {
            "version": 1, "name": meta.name, "topic_id": meta.topic_id.hex(), "partitions": meta.partitions,
            "overrides": meta.overrides, "internal": meta.internal,
        })

    def delete(self, topic_id: bytes) -> None:
        remove_quietly(self._path(topic_id))
        fsync_dir(self.dir)

    def load_all(self) -> list[TopicMeta]:
        metas = []
        for fname in sorted(os.listdir(self.dir)):
            if not fname.endswith(".json"):
                continue
            data = read_json(os.path.join(self.dir, fname))
            try:
                meta = TopicMeta(data["name"], bytes.fromhex(data["topic_id"]), int(data["partitions"]),
                                 {str(k): str(v) for k, v in data["overrides"].items()}, bool(data["internal"]))
                if len(meta.topic_id) != 16 or fname != f"{meta.topic_id.hex()}.json":
                    raise ValueError("inconsistent metadata")
            except (TypeError, KeyError, ValueError, AttributeError) as e:
                # Refuse to start rather than hide a topic whose data is still on disk.
                raise RuntimeError(f"unreadable topic metadata {os.path.join(self.dir, fname)}: {e}") from None
            metas.append(meta)
        return metas
