"""The broker's probe endpoint: `health.listener` (host:port), plaintext gRPC serving only the standard
grpc.health.v1.Health service (Check and Watch), on the broker's own event loop (grpc.aio).

Kubernetes' `grpc:` probes cannot speak TLS, so this listener is separate from the mTLS admin API
(`admin.listener`) and carries nothing else: any other method answers UNIMPLEMENTED and there is no
reflection. The overall status (service "") is NOT_SERVING while the broker starts (log recovery),
SERVING once its Kafka listeners accept connections, and NOT_SERVING again as soon as it begins to
shut down (watchers are told), until the process stops listening. Requests are bounded: tiny
messages and a few calls at once, since anyone who reaches the port may call it.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from keystream.configdef import ConfigError
from keystream.listeners import parse_address

log = logging.getLogger("keystream.health")

MAX_MESSAGE_BYTES = 4096
MAX_CONCURRENT_RPCS = 16
OVERALL = ""  # the service name probes ask about when they name none
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    """start() (NOT_SERVING) before the broker loads its logs, serving() once it accepts connections,
    shutting_down() when it begins to stop, stop() last."""

    def __init__(self, config):
        self.address = parse_address(config["health.listener"], "health.listener")
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_CONCURRENT_RPCS),
            ("grpc.so_reuseport", 0),
        ], maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        host, port = self.address
        target = f"[{host}]:{port}" if ":" in host else f"{host or '[::]'}:{port}"
        try:
            self.port = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise ConfigError(f"Invalid value '{target}' for configuration health.listener: cannot listen ({exc})") \
                from None
        await self.health.set(OVERALL, NOT_SERVING)
        await server.start()
        self.server = server
        log.info("health service (gRPC grpc.health.v1, plaintext) listening on %s:%d", host or "*", self.port)

    async def serving(self) -> None:
        await self.health.set(OVERALL, SERVING)

    async def shutting_down(self) -> None:
        """NOT_SERVING for every service from now on; open Watch streams are told."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace_s: float = 0.5) -> None:
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        self.server = None
