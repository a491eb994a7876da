"""The admin API's gRPC server: `admin.listener` (host:port), TLS with required client certificates
(the broker's ssl.* files), on the broker's own event loop (grpc.aio).

It serves TenantService, QuotaService, UserService, AclService and ClusterService
(proto/keystream/admin/v1/) and the standard grpc.health.v1.Health service, which answers SERVING
while the broker runs and NOT_SERVING once it is stopping. Requests are bounded: at most MAX_MESSAGE_BYTES per message
(larger ones are refused by grpc with RESOURCE_EXHAUSTED before they are parsed) and
MAX_CONCURRENT_RPCS calls at once.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from keystream.broker.admin.acls import AclService
from keystream.broker.admin.auth import AdminTls
from keystream.broker.admin.base import Malformed
from keystream.broker.admin.cluster import ClusterService
from keystream.broker.admin.quotas import QuotaService
from keystream.broker.admin.tenants import TenantService
from keystream.broker.admin.users import UserService
from keystream.broker.admin.v1 import admin_pb2
from keystream.configdef import ConfigError
from keystream.listeners import parse_address

log = logging.getLogger("keystream.admin")

MAX_MESSAGE_BYTES = 1 << 20
MAX_CONCURRENT_RPCS = 64
SERVICES = tuple(s.full_name for s in admin_pb2.DESCRIPTOR.services_by_name.values())


def _lenient(message_cls):
    """A request deserializer that hands bytes that do not parse to the servicer as Malformed (which
    answers INVALID_ARGUMENT) instead of failing inside grpc (UNKNOWN, and a traceback in the log)."""
    def parse(data: bytes):
        try:
            return message_cls.FromString(data)
        except DecodeError:
            return Malformed(message_cls.DESCRIPTOR.full_name)
    return parse


def _handler(servicer) -> grpc.GenericRpcHandler:
    """The service's method handlers, as the generated add_*_to_server builds them, with lenient parsing."""
    service = admin_pb2.DESCRIPTOR.services_by_name[type(servicer).__name__]
    handlers = {m.name: grpc.unary_unary_rpc_method_handler(
        getattr(servicer, m.name), request_deserializer=_lenient(getattr(admin_pb2, m.input_type.name)),
        response_serializer=getattr(admin_pb2, m.output_type.name).SerializeToString) for m in service.methods}
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


class AdminServer:
    """Start it on the running loop after the broker started; stop it before the broker stops."""

    def __init__(self, broker, kafka_server=None):
        config = broker.config
        self.address = parse_address(config["admin.listener"], "admin.listener")
        self.tls = AdminTls(config)  # bad ssl.* files fail start-up here, naming the property
        self.broker, self.kafka_server = broker, kafka_server
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_CONCURRENT_RPCS),
            ("grpc.so_reuseport", 0),
        ], maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS)
        args = (self.broker, self.tls)
        for servicer in (TenantService(*args), QuotaService(*args), UserService(*args), AclService(*args),
                         ClusterService(*args, self.kafka_server)):
            server.add_generic_rpc_handlers((_handler(servicer),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        host, port = self.address
        target = f"[{host}]:{port}" if ":" in host else f"{host or '[::]'}:{port}"
        try:
            self.port = server.add_secure_port(target, self.tls.credentials())
        except RuntimeError as exc:
            raise ConfigError(f"Invalid value '{target}' for configuration admin.listener: cannot listen ({exc})") from None
        await server.start()
        self.server = server
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("admin API (gRPC, mTLS) listening on %s:%d", host or "*", self.port)

    async def stop(self, grace_s: float = 5.0) -> None:
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()  # every service NOT_SERVING, watchers told
        await self.server.stop(grace_s)
        self.server = None
