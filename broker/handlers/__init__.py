"""Importing this package registers every API handler in `registry.HANDLERS`."""

from keystream.broker.handlers import (  # noqa: F401
    acls,
    api_versions,
    client_quotas,
    cluster,
    configs,
    fetch,
    groups,
    log_offsets,
    metadata,
    offsets,
    produce,
    producers,
    sasl,
    scram,
    topics,
)
from keystream.broker.handlers.registry import HANDLERS

__all__ = ["HANDLERS"]
