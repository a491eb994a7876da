"""Topic set-up through the Admin API, as a user would do it, before each phase."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import NewTopic

from bench.brokers import Broker


def unique_name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


def create(broker: Broker, name: str, partitions: int, timeout: float = 15.0) -> None:
    """Create the topic and wait until metadata shows a leader for every partition."""
    admin = broker.admin()
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if meta and meta.error is None and len(meta.partitions) == partitions and all(
            p.leader >= 0 for p in meta.partitions.values()
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"topic {name} not ready with {partitions} partitions after {timeout:.0f}s")


def delete(broker: Broker, name: str, timeout: float = 15.0) -> str | None:
    """Delete a finished topic so in-memory peers do not grow; returns the error text, if any."""
    admin = broker.admin()
    try:
        admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name].result(timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
