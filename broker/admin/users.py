"""UserService: SCRAM credentials in the broker's ScramStore, as AlterUserScramCredentials and
DescribeUserScramCredentials (broker/handlers/scram.py) manage them: Cluster ALTER to change,
Cluster DESCRIBE to list, the same iteration bounds. A credential is either derived here from a
password (random salt; the password is neither stored nor logged) or given salted, as Kafka's
admin clients send it.

Tenants: a tenant admin, or a tenant's session holding the Cluster right through an ACL, manages
only its tenant's users (`Tenant.has_user`), never a super user even if listed as a member. Changing
another user is PERMISSION_DENIED before the user is looked up; listing answers it as missing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from keystream.auth.acl import Operation
from keystream.auth.sasl.scram import (
    DEFAULT_ITERATIONS,
    HASHES,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    credential_from_salted_password,
    make_credential,
)
from keystream.broker.admin.base import (
    MAX_NAME,
    Caller,
    Service,
    blocking,
    check_count,
    check_text,
    denied,
    invalid,
    not_found,
    rpc,
)
from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc

log = logging.getLogger("keystream.admin")

MECHANISMS = {pb.SCRAM_MECHANISM_SCRAM_SHA_256: "SCRAM-SHA-256", pb.SCRAM_MECHANISM_SCRAM_SHA_512: "SCRAM-SHA-512"}
CODES = {name: code for code, name in MECHANISMS.items()}
MAX_SECRET = 1024


def _mechanism(code: int) -> str:
    if code not in MECHANISMS:
        raise invalid("mechanism must be SCRAM_MECHANISM_SCRAM_SHA_256 or SCRAM_MECHANISM_SCRAM_SHA_512")
    return MECHANISMS[code]


def _credential(request: pb.UpsertScramUserRequest, mechanism: str):
    iterations = request.iterations or DEFAULT_ITERATIONS
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise invalid(f"iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
    which = request.WhichOneof("secret")
    if which == "password":
        if not request.password or len(request.password) > MAX_SECRET:
            raise invalid(f"password must hold 1 to {MAX_SECRET} characters")
        return make_credential(request.password, mechanism, iterations)
    if which == "salted":
        salt, salted = request.salted.salt, request.salted.salted_password
        if not salt or len(salt) > MAX_SECRET:
            raise invalid(f"salted.salt must hold 1 to {MAX_SECRET} bytes")
        if len(salted) != hashlib.new(HASHES[mechanism]).digest_size:
            raise invalid(f"salted.salted_password must be a {mechanism} digest")
        return credential_from_salted_password(mechanism, salt, iterations, salted)
    raise invalid("one of password or salted is required")


def _manageable(caller: Caller, op: Operation) -> Callable[[str], bool] | None:
    """Which users the caller may manage (None: all); PERMISSION_DENIED when it may manage none."""
    if caller.cluster_allowed(op):
        return None
    tenant = caller.tenant_scope(op)
    if tenant is None:
        raise denied()
    supers = caller.authorizer.super_users
    return lambda name: tenant.has_user(name) and f"User:{name}" not in supers


def _name(caller: Caller, op: Operation, name: str) -> str:
    """The request's user name, checked, when the caller may manage that user."""
    allowed = _manageable(caller, op)
    check_text(name, "name", MAX_NAME)
    if allowed is not None and not allowed(name):
        raise denied()
    return name


class UserService(Service, admin_pb2_grpc.UserServiceServicer):
    @property
    def store(self):
        return self.broker.scram

    @rpc
    async def UpsertScramUser(self, request: pb.UpsertScramUserRequest, caller: Caller) -> pb.UpsertScramUserResponse:
        name = _name(caller, Operation.ALTER, request.name)
        mechanism = _mechanism(request.mechanism)
        credential = await blocking(_credential, request, mechanism)  # PBKDF2 off the event loop
        await blocking(self.store.upsert, name, credential)
        log.info("%s set the %s credential of user %s (%d iterations)", caller.session.principal, mechanism, name,
                 credential.iterations)
        return pb.UpsertScramUserResponse()

    @rpc
    async def DeleteScramUser(self, request: pb.DeleteScramUserRequest, caller: Caller) -> pb.DeleteScramUserResponse:
        name = _name(caller, Operation.ALTER, request.name)
        known = self.store.describe().get(name, {})
        if request.mechanism == pb.SCRAM_MECHANISM_UNSPECIFIED:
            mechanisms = sorted(known)
        else:
            mechanisms = [_mechanism(request.mechanism)]
        if not mechanisms or any(m not in known for m in mechanisms):
            raise not_found(f"user {name} has no such SCRAM credential")
        await blocking(lambda: self.store.alter(deletes=[(name, m) for m in mechanisms]))
        log.info("%s deleted SCRAM credentials %s of user %s", caller.session.principal, mechanisms, name)
        return pb.DeleteScramUserResponse()

    @rpc
    async def ListScramUsers(self, request: pb.ListScramUsersRequest, caller: Caller) -> pb.ListScramUsersResponse:
        allowed = _manageable(caller, Operation.DESCRIBE)
        check_count(request.names, "names")
        known = self.store.describe()
        if allowed is not None:  # another tenant's users do not exist here
            known = {n: c for n, c in known.items() if allowed(n)}
        names = [check_text(n, "names", MAX_NAME) for n in dict.fromkeys(request.names)] or sorted(known)
        users = []
        for name in names:
            if name not in known:
                raise not_found(f"user {name} has no SCRAM credential")
            users.append(pb.ScramUser(name=name, credentials=[
                pb.ScramCredentialInfo(mechanism=CODES[m], iterations=i) for m, i in sorted(known[name].items())]))
        return pb.ListScramUsersResponse(users=users)
