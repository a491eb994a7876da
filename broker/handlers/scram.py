"""AlterUserScramCredentials and DescribeUserScramCredentials (KIP-554), as Kafka's KRaft controller
(ScramControlManager) and ScramImage answer them.

Alter needs Cluster Alter and Describe needs Cluster Describe, else CLUSTER_AUTHORIZATION_FAILED
(for Describe in each result rather than at the top level, where Kafka also puts it: librdkafka
crashes on a top-level error in this response; Java's admin client fails on either).
The client sends SaltedPassword (the admin client runs PBKDF2); the broker stores only the salt,
iterations, StoredKey and ServerKey derived from it. A request touches each user at most once: a
second alteration of the same user fails that user with DUPLICATE_RESOURCE. The valid alterations
are written as one batch, so a request is applied whole or not at all after a crash.

Tenants: a tenant's session, even with those Cluster rights, sees and alters only the users of its
tenant (`User:<name>` among its members). Describe answers another user as it answers one that does
not exist; Alter refuses it with CLUSTER_AUTHORIZATION_FAILED before looking it up.
"""

from __future__ import annotations

import logging
from collections import Counter

from keystream.auth.acl import CLUSTER_NAME, Operation, ResourceType
from keystream.auth.sasl.scram import MAX_ITERATIONS, MIN_ITERATIONS, credential_from_salted_password
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
)
from keystream.broker.protocol.messages.alter_user_scram_credentials_response import (
    AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult,
)
from keystream.broker.protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
)
from keystream.broker.protocol.messages.describe_user_scram_credentials_response import (
    CredentialInfo,
    DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
)

log = logging.getLogger("keystream.scram")

MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}  # Kafka's ScramMechanism type codes
TYPES = {name: code for code, name in MECHANISMS.items()}
CLUSTER_AUTH_MESSAGE = "Cluster authorization failed."
DUPLICATE = "A user credential cannot be altered twice in the same request"

Error = tuple[int, str]


def _check_name_and_mechanism(name: str, mechanism: int) -> Error | None:
    if not name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in MECHANISMS:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    return None


def _check_deletion(store, d) -> Error | None:
    error = _check_name_and_mechanism(d.name, d.mechanism)
    if error is None and store.lookup(d.name, MECHANISMS[d.mechanism]) is None:
        error = ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
    return error


def _check_upsertion(u) -> Error | None:
    error = _check_name_and_mechanism(u.name, u.mechanism)
    if error is None:
        if u.iterations < MIN_ITERATIONS:
            error = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"
        elif u.iterations > MAX_ITERATIONS:
            error = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"
        elif not u.salt or not u.salted_password:  # stricter than Kafka: no credential without a secret
            error = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salt and salted password must not be empty"
    return error


def _sort(store, req: AlterUserScramCredentialsRequest) -> tuple[dict, dict, dict[str, Error]]:
    """Kafka's pass over deletions then upsertions: valid ones by user, and an error per bad user."""
    deletions: dict = {}
    upsertions: dict = {}
    errors: dict[str, Error] = {}
    for d in req.deletions:
        if d.name in errors:
            continue
        if deletions.pop(d.name, None) is not None:
            errors[d.name] = ErrorCode.DUPLICATE_RESOURCE, DUPLICATE
        elif (error := _check_deletion(store, d)) is not None:
            errors[d.name] = error
        else:
            deletions[d.name] = d
    for u in req.upsertions:
        if u.name in errors:
            continue
        if deletions.pop(u.name, None) is not None or upsertions.pop(u.name, None) is not None:
            errors[u.name] = ErrorCode.DUPLICATE_RESOURCE, DUPLICATE
        elif (error := _check_upsertion(u)) is not None:
            errors[u.name] = error
        else:
            upsertions[u.name] = u
    return deletions, upsertions, errors


@api(AlterUserScramCredentialsRequest)
async def alter_user_scram_credentials(ctx, req: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse:
    if not ctx.allowed(Operation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        names = sorted({d.name for d in req.deletions} | {u.name for u in req.upsertions})
        return AlterUserScramCredentialsResponse(0, [AlterUserScramCredentialsResult(
            n, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE) for n in names])
    store = ctx.broker.scram
    outside = _outside_tenant(ctx, [*(d.name for d in req.deletions), *(u.name for u in req.upsertions)])
    if outside:
        req = AlterUserScramCredentialsRequest(deletions=[d for d in req.deletions if d.name not in outside],
                                               upsertions=[u for u in req.upsertions if u.name not in outside])
    deletions, upsertions, errors = _sort(store, req)
    upserts = [(u.name, credential_from_salted_password(MECHANISMS[u.mechanism], u.salt, u.iterations,
                                                        u.salted_password)) for u in upsertions.values()]
    deletes = [(d.name, MECHANISMS[d.mechanism]) for d in deletions.values()]
    store.alter(upserts, deletes)
    if upserts or deletes:
        log.info("%s altered SCRAM credentials: set %s, deleted %s", ctx.session.principal,
                 [(u, c.mechanism, c.iterations) for u, c in upserts], deletes)
    results = [AlterUserScramCredentialsResult(name, 0, None) for name in [*deletions, *upsertions]]
    results += [AlterUserScramCredentialsResult(name, code, message) for name, (code, message) in errors.items()]
    results += [AlterUserScramCredentialsResult(name, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTH_MESSAGE)
                for name in outside]
    return AlterUserScramCredentialsResponse(0, results)


def _outside_tenant(ctx, names) -> list[str]:
    """The distinct names of users outside the session's tenant (super users always are, even when
    listed as members); none for a session of no tenant."""
    authorizer = ctx.broker.authorizer
    tenant = authorizer.tenant_of(ctx.session)
    if tenant is None:
        return set()
    return {n for n in dict.fromkeys(names) if not tenant.has_user(n) or f"User:{n}" in authorizer.super_users}


@api(DescribeUserScramCredentialsRequest)
async def describe_user_scram_credentials(ctx, req: DescribeUserScramCredentialsRequest
                                          ) -> DescribeUserScramCredentialsResponse:
    if not ctx.allowed(Operation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        # Per user, and a nameless result when all users were asked for: librdkafka (2.x) corrupts
        # its heap on a non-zero top-level error code, so the denial travels in the results only.
        denied = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        names = dict.fromkeys(u.name for u in req.users) if req.users else [""]
        return DescribeUserScramCredentialsResponse(0, 0, None, [
            DescribeUserScramCredentialsResult(n, denied, CLUSTER_AUTH_MESSAGE, []) for n in names])
    known = ctx.broker.scram.describe()
    hidden = _outside_tenant(ctx, known)
    known = {n: c for n, c in known.items() if n not in hidden}  # another tenant's users do not exist here
    names = [u.name for u in req.users] if req.users else sorted(known)
    counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        result = DescribeUserScramCredentialsResult(name, 0, None, [])
        if counts[name] > 1:
            result.error_code = ErrorCode.DUPLICATE_RESOURCE
            result.error_message = f"Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
        elif name not in known:
            result.error_code = ErrorCode.RESOURCE_NOT_FOUND
            result.error_message = f"Attempt to describe a user credential that does not exist: {name}"
        else:
            result.credential_infos = [CredentialInfo(TYPES[m], i) for m, i in sorted(known[name].items())]
        results.append(result)
    return DescribeUserScramCredentialsResponse(0, 0, None, results)
