"""The broker's tenants for the registry: ListTenants on the broker's gRPC admin API (`admin.url`).

The registry is its own process with no metadata log, so it keeps a copy of the tenants the way it
keeps one of the ACLs. It calls with its kafkastore client certificate (the admin API requires
mTLS; the principal needs Cluster DESCRIBE, as for DescribeAcls). A tenant the registry cannot
read makes the whole fetch fail, so the previous copy stays: skipping one would free its members
from their namespace. After a failed call the channel is rebuilt from the files, so a rotated
client certificate is picked up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from keystream.auth.tenants import Tenant
from keystream.auth.tls import grpc_client_credentials, read_config_file
from keystream.configdef import ConfigError
from keystream.registry.access import TenantSource

KEYSTORE = "kafkastore.ssl.keystore.location"
TRUSTSTORE = "kafkastore.ssl.truststore.location"


def _credentials(config: Mapping[str, Any]):
    """grpc channel credentials: the CAs of the kafkastore truststore, the key (decrypted in memory
    with kafkastore.ssl.key.password) and chain of the kafkastore keystore."""
    needed_by = "admin.url, which needs the registry's client certificate (the admin API requires mTLS)"
    pem = read_config_file(config, KEYSTORE, needed_by)
    roots = read_config_file(config, TRUSTSTORE, needed_by) if config.get(TRUSTSTORE) else None
    try:
        return grpc_client_credentials(roots, pem, pem, config.get("kafkastore.ssl.key.password"))
    except ValueError as exc:
        raise ConfigError(f"Invalid value for configuration {KEYSTORE}: {exc}") from None


def admin_tenant_source(config: Mapping[str, Any]) -> TenantSource:
    """ListTenants from `admin.url` with the kafkastore TLS identity; the files are checked now, so
    a missing or unreadable key fails start-up with a message naming the property."""
    import grpc  # noqa: PLC0415

    from keystream.broker.admin.v1 import admin_pb2 as pb  # noqa: PLC0415
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc  # noqa: PLC0415

    target = str(config["admin.url"])
    timeout_s = config.get("kafkastore.timeout.ms", 10000) / 1000
    _credentials(config)
    lock = threading.Lock()
    channel = None

    def fetch() -> list[Tenant]:
        nonlocal channel
        with lock:
            if channel is None:
                channel = grpc.secure_channel(target, _credentials(config))
            try:
                reply = rpc.TenantServiceStub(channel).ListTenants(pb.ListTenantsRequest(), timeout=timeout_s)
            except grpc.RpcError as exc:
                channel.close()
                channel = None
                raise ConnectionError(f"ListTenants on {target}: {exc.code().name} {exc.details()}") from None
        return [Tenant(t.name, frozenset(t.members), frozenset(t.admins)) for t in reply.tenants]

    return fetch
