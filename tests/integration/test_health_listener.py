"""`health.listener`: the plaintext gRPC endpoint for Kubernetes `grpc:` probes, on a real broker with
real grpc clients. It answers grpc.health.v1 and nothing else (the admin API stays on the mTLS
`admin.listener`), and turns NOT_SERVING as soon as the broker begins to shut down."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker
from tests.fixtures.broker import free_port

pytestmark = pytest.mark.keystream_only

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health_broker(factory, **overrides):
    port = free_port()
    b = admin_broker(factory, **{"health.listener": f"127.0.0.1:{port}", **overrides})
    b.health_target = f"127.0.0.1:{port}"
    return b


@pytest.fixture(scope="module")
def broker(module_broker_factory):
    return _health_broker(module_broker_factory)


@pytest.fixture
def channel(broker):
    with grpc.insecure_channel(broker.health_target) as ch:
        yield ch


def _code(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT_S)
    return info.value.code()


def test_serving_over_plaintext(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S).status == SERVING
    # only the overall status: the admin services are the admin listener's business
    assert _code(stub.Check, health_pb2.HealthCheckRequest(service="keystream.admin.v1.ClusterService")) == \
        grpc.StatusCode.NOT_FOUND


def test_no_other_service(channel):
    """Whatever the caller asks for besides health answers UNIMPLEMENTED: the admin API (even for
    a method that needs no argument), and reflection."""
    assert _code(rpc.ClusterServiceStub(channel).GetStatus, pb.GetStatusRequest()) == grpc.StatusCode.UNIMPLEMENTED
    assert _code(rpc.TenantServiceStub(channel).ListTenants, pb.ListTenantsRequest()) == \
        grpc.StatusCode.UNIMPLEMENTED
    reflection = channel.unary_unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert _code(reflection, b"") == grpc.StatusCode.UNIMPLEMENTED


def test_admin_listener_still_requires_tls(broker):
    """The probe port does not make the admin API reachable in clear on its own port either."""
    with grpc.insecure_channel(broker.admin_target) as ch:
        code = _code(rpc.ClusterServiceStub(ch).GetStatus, pb.GetStatusRequest())
    assert code == grpc.StatusCode.UNAVAILABLE


def test_not_serving_once_shutdown_begins(broker_factory):
    """A Watch opened while the broker runs sees SERVING, then NOT_SERVING after SIGTERM, and the
    broker still exits cleanly."""
    port = free_port()
    b = broker_factory(**{"health.listener": f"127.0.0.1:{port}"})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
        assert next(stream).status == SERVING
        b.stop()  # SIGTERM, waits for exit code 0
        statuses = []
        try:
            for reply in stream:
                statuses.append(reply.status)
        except grpc.RpcError as exc:  # the stream ends with the server
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), exc
    assert statuses and statuses[0] == NOT_SERVING, statuses
