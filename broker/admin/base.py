"""What every admin service shares: the caller's session, authorization, errors, and limits.

A service method is `async def Method(self, request, caller) -> response` wrapped by `@rpc`, which
authenticates the call (UNAUTHENTICATED otherwise), turns AdminError into the gRPC status, and any
other exception into INTERNAL with a generic message (the detail goes to the log, not the client).
Blocking work (metadata-log appends fsync) runs in a worker thread (`blocking`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.auth.principal import Session
from keystream.auth.tenants import Tenant
from keystream.broker.admin.auth import AdminTls, Unauthenticated

log = logging.getLogger("keystream.admin")

DENIED = "Cluster authorization failed."
MAX_TEXT = 1024  # principals (certificate DNs), resource names, hosts
MAX_NAME = 255   # SCRAM user names
MAX_ITEMS = 1000  # members, admins, ACL bindings, filters, names in one request


class AdminError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def invalid(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.INVALID_ARGUMENT, message)


def denied() -> AdminError:
    return AdminError(grpc.StatusCode.PERMISSION_DENIED, DENIED)


def not_found(message: str) -> AdminError:
    return AdminError(grpc.StatusCode.NOT_FOUND, message)


def check_text(value: str, field: str, limit: int = MAX_TEXT, *, empty_ok: bool = False) -> str:
    """A bounded string without control characters."""
    if not value and not empty_ok:
        raise invalid(f"{field} must not be empty")
    if len(value) > limit:
        raise invalid(f"{field} is longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise invalid(f"{field} holds a control character")
    return value


def check_count(items: Iterable[Any], field: str, limit: int = MAX_ITEMS) -> None:
    if len(items) > limit:  # type: ignore[arg-type]
        raise invalid(f"{field} has more than {limit} entries")


@dataclass(frozen=True)
class Malformed:
    """What the server's deserializer hands on for bytes that are not a valid request message."""

    message_type: str


@dataclass
class Caller:
    session: Session
    broker: Any

    @property
    def authorizer(self):
        return self.broker.authorizer

    def _cluster_acl(self, op: Operation) -> bool:
        return self.authorizer.authorize(self.session, op, ResourceType.CLUSTER, CLUSTER_NAME)

    def cluster_allowed(self, op: Operation) -> bool:
        """Cluster-wide authority: a Cluster right of a caller bound to no tenant. A tenant's session
        never has it, whatever its ACLs grant (they would reach every tenant and the super users);
        it gets its tenant's share through `tenant_scope` or `administered_tenant` instead."""
        return self.tenant is None and self._cluster_acl(op)

    def require_cluster(self, op: Operation) -> None:
        if not self.cluster_allowed(op):
            log.info("admin call by %s denied: needs Cluster %s outside any tenant", self.session.principal, op.name)
            raise denied()

    def tenant_scope(self, op: Operation) -> Tenant | None:
        """The tenant within which a tenant-bound caller manages ACLs and SCRAM users: its own when it
        is one of its admins or holds the Cluster right through an ACL (the Kafka API's rule for the
        same objects); None otherwise."""
        tenant = self.tenant
        if tenant is not None and (tenant.is_admin(self.session) or self._cluster_acl(op)):
            return tenant
        return None

    @property
    def tenant(self) -> Tenant | None:
        """The tenant binding the caller (None for super users and principals of no tenant)."""
        return self.authorizer.tenant_of(self.session)

    def administered_tenant(self) -> Tenant | None:
        """The caller's tenant when the caller is one of its admins."""
        tenant = self.tenant
        return tenant if tenant is not None and tenant.is_admin(self.session) else None


async def blocking(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


class Service:
    def __init__(self, broker, tls: AdminTls):
        self.broker, self.tls = broker, tls


def rpc(method: Callable) -> Callable:
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Service, request, context: grpc.aio.ServicerContext):
        try:
            caller = Caller(self.tls.session(context), self.broker)
        except Unauthenticated as exc:
            log.warning("admin call %s from %s refused: %s", name, context.peer(), exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate not accepted")
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {request.message_type}")
        try:
            return await method(self, request, caller)
        except AdminError as exc:
            await context.abort(exc.code, exc.message)
        except Exception:
            log.exception("admin call %s by %s failed", name, caller.session.principal)
            await context.abort(grpc.StatusCode.INTERNAL, "the server failed to process the request")

    return wrapper
