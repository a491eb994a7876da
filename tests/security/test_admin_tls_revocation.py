"""A revoked client certificate loses the admin API on a connection that is already open, not only on
new ones (grpc re-reads TLS material only before a handshake, and keeps a connection open for long);
a CRL file that cannot be read keeps the previous CRL in force."""

from __future__ import annotations

import time

import grpc
import pytest

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker, admin_channel
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.keystream_only

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
APPLIED_WITHIN_S = 15  # the check runs at most once a second; generous for a loaded CI machine


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return admin_broker(module_broker_factory)


def _outcome(ch: grpc.Channel) -> grpc.StatusCode:
    try:
        rpc.TenantServiceStub(ch).ListTenants(pb.ListTenantsRequest(), timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _log(broker) -> str:
    return broker.log_path.read_text(encoding="utf-8", errors="replace")


def test_revocation_reaches_an_open_connection(broker):
    doomed = broker.tls.client("doomed-admin", common_name="admin")  # maps to the super user User:CN=admin
    with admin_channel(broker, doomed) as ch, admin_channel(broker) as other:
        assert _outcome(ch) == grpc.StatusCode.OK
        assert _outcome(other) == grpc.StatusCode.OK
        broker.tls.revoke(doomed)
        start = time.monotonic()
        wait_for(lambda: _outcome(ch) == UNAUTHENTICATED, APPLIED_WITHIN_S,
                 message="the revoked certificate's next call on its open channel to be UNAUTHENTICATED")
        print(f"revocation applied to the open connection after {time.monotonic() - start:.2f} s")
        assert _outcome(ch) == UNAUTHENTICATED, "it stays refused"
        assert _outcome(other) == grpc.StatusCode.OK, "other certificates on open connections keep working"


def test_unreadable_crl_keeps_the_previous_one(broker):
    revoked = broker.tls.client("revoked-early", common_name="admin")
    broker.tls.revoke(revoked)
    crl = broker.tls.crl
    good = crl.read_bytes()
    with admin_channel(broker) as ok, admin_channel(broker, revoked) as bad:
        wait_for(lambda: _outcome(bad) == UNAUTHENTICATED, APPLIED_WITHIN_S, message="the revocation to apply")
        mark = len(_log(broker))
        crl.write_text("not a CRL\n")
        try:
            # each call gives the server a chance to look at the files again
            wait_for(lambda: _outcome(ok) == grpc.StatusCode.OK and "admin CRL reload failed" in _log(broker)[mark:],
                     APPLIED_WITHIN_S, message="the failed CRL reload to be logged")
            assert "ssl.crl.location" in _log(broker)[mark:]
            assert _outcome(bad) == UNAUTHENTICATED, "the previous CRL still applies"
            assert _outcome(ok) == grpc.StatusCode.OK
        finally:
            crl.write_bytes(good)
