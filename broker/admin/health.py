"""The broker's probe endpoint: `health.listener` (host:port), plaintext gRPC serving only the Check
method of the standard grpc.health.v1.Health service, on the broker's own event loop (grpc.aio).

Kubernetes' `grpc:` probes cannot speak TLS, so this listener is separate from the mTLS admin API
(`admin.listener`) and carries nothing else: any other method answers UNIMPLEMENTED and there is no
reflection. Watch answers UNIMPLEMENTED too, and there is no server-wide cap on concurrent calls:
either would let a caller hold every slot (open streams, or calls that never send their request)
and leave the kubelet's Check, on its own new connection, unanswered, and a failed liveness probe
restarts the broker (measured: 16 stalled calls under a cap of 16 made Check fail). Each connection
is bounded instead: a few streams at once, tiny messages, and at most a minute of life.

The overall status (service "") is NOT_SERVING from the moment the listener starts, before the broker
loads its logs; while the logs load (synchronously, on the event loop) a probe gets no answer at all
and times out (DEADLINE_EXCEEDED); it is SERVING once the Kafka listeners accept connections, and
NOT_SERVING again as soon as the broker begins to shut down, until the process stops listening.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from keystream.configdef import ConfigError
from keystream.listeners import parse_address

log = logging.getLogger("keystream.health")

MAX_MESSAGE_BYTES = 4096
MAX_STREAMS_PER_CONNECTION = 16
OVERALL = ""  # the service name probes ask about when they name none
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MAX_CONNECTION_AGE_MS = 60000
MAX_CONNECTION_AGE_GRACE_MS = 5000


class CheckOnlyHealthServicer(health.aio.HealthServicer):
    """grpc.health.v1 without Watch: probes poll Check, and no caller holds a stream open."""

    async def Watch(self, request, context):  # noqa: N802  (the gRPC method's name)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "health.listener serves Check only")


class HealthServer:
    """start() (NOT_SERVING) before the broker loads its logs, serving() once it accepts connections,
    shutting_down() when it begins to stop, stop() last."""

    def __init__(self, config):
        self.address = parse_address(config["health.listener"], "health.listener")
        self.health = CheckOnlyHealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ("grpc.so_reuseport", 0),
            ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ])
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
        """NOT_SERVING for every service from now on."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace_s: float = 0.5) -> None:
        if self.server is None:
            return
        await self.server.stop(grace_s)
        self.server = None
