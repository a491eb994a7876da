"""ClusterService: what an operator checks first (identity, listeners, counts); Cluster DESCRIBE."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from keystream.auth.acl import Operation
from keystream.broker.admin.base import Caller, Service, rpc
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc


def _version() -> str:
    try:
        return version("keystream")
    except PackageNotFoundError:
        return "unknown"


class ClusterService(Service, admin_pb2_grpc.ClusterServiceServicer):
    def __init__(self, broker, tls, server=None):
        super().__init__(broker, tls)
        self.server = server  # the Kafka listeners' Server, for the connection count
        self.started = time.monotonic()

    @rpc
    async def GetStatus(self, request: pb.GetStatusRequest, caller: Caller) -> pb.GetStatusResponse:
        caller.require_cluster(Operation.DESCRIBE)
        b = self.broker
        topics = list(b.logs.topics.values())
        return pb.GetStatusResponse(
            cluster_id=b.cluster_id, node_id=b.node_id, version=_version(),
            uptime_ms=int((time.monotonic() - self.started) * 1000),
            listeners=[pb.Endpoint(listener=lst.name, host=lst.host, port=lst.port,
                                   security_protocol=lst.security_protocol) for lst in b.config.listeners],
            topics=len(topics), partitions=sum(len(t.partitions) for t in topics),
            connections=len(self.server.connections) if self.server is not None else 0,
            tenants=len(b.tenants), acls=len(b.authorizer.store.index), scram_users=len(b.scram.describe()))
