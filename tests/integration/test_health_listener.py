"""`health.listener`: the plaintext gRPC endpoint for Kubernetes `grpc:` probes, on a real broker with
real grpc clients. It answers grpc.health.v1 Check and nothing else (Watch is UNIMPLEMENTED, the
admin API stays on the mTLS `admin.listener`), keeps answering Check however many Watch calls are
attempted, turns NOT_SERVING as soon as the broker begins to shut down, and a SIGTERM that comes
while the broker starts stops it cleanly."""

from __future__ import annotations

import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keystream.broker.admin.v1 import admin_pb2 as pb
from keystream.broker.admin.v1 import admin_pb2_grpc as rpc
from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from tests.fixtures.admin_grpc import TIMEOUT_S, admin_broker
from tests.fixtures.broker import BrokerProcess, free_port
from tests.fixtures.waiting import wait_for
from tests.fixtures.wire import WireClient

pytestmark = pytest.mark.keystream_only

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WATCHERS = 20  # more than the listener's concurrent calls (16)


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


def _status(stub):
    """The overall status, or the call's error code (the broker stopping, gone, or not answering)."""
    try:
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
    except grpc.RpcError as exc:
        return exc.code()


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


def test_watch_is_unimplemented_and_check_still_answers(broker, channel):
    """Watch streams held open used to take every concurrent call, so the kubelet's Check got no
    answer (and a liveness probe restarts the broker): now each Watch ends at once, UNIMPLEMENTED,
    and Check on a new connection, as the kubelet makes, answers SERVING while they are all held."""
    stub = health_pb2_grpc.HealthStub(channel)
    streams = [stub.Watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S) for _ in range(WATCHERS)]
    try:
        outcomes = []
        for stream in streams:
            try:
                outcomes.append(next(stream).status)  # a status means the stream stays open
            except grpc.RpcError as exc:
                outcomes.append((exc.code(), exc.details()))
        # its own connection, as the kubelet's (channels to one target otherwise share one)
        with grpc.insecure_channel(broker.health_target, options=[("grpc.use_local_subchannel_pool", 1)]) as probe:
            assert health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=TIMEOUT_S).status == SERVING
        assert outcomes == [(grpc.StatusCode.UNIMPLEMENTED, "health.listener serves Check only")] * WATCHERS
    finally:
        for stream in streams:
            stream.cancel()


def test_stalled_checks_do_not_starve_the_probe(broker):
    """Check calls whose request never comes (headers sent, no message) on several connections: the
    kubelet's Check on its own new connection still answers SERVING (a server-wide cap on concurrent
    calls let 16 of them fail it)."""
    import threading  # noqa: PLC0415

    never = threading.Event()

    def no_request():
        never.wait(TIMEOUT_S)
        return
        yield  # a generator that yields nothing until released

    channels = [grpc.insecure_channel(broker.health_target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(3)]
    stalled = [ch.stream_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m,
                               response_deserializer=health_pb2.HealthCheckResponse.FromString
                               ).future(no_request(), timeout=TIMEOUT_S) for ch in channels for _ in range(16)]
    try:
        with grpc.insecure_channel(broker.health_target, options=[("grpc.use_local_subchannel_pool", 1)]) as probe:
            assert health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
    finally:
        never.set()
        for call in stalled:
            call.cancel()
        for ch in channels:
            ch.close()


def test_not_serving_once_shutdown_begins(broker_factory):
    """Check answers SERVING while the broker runs, then NOT_SERVING from SIGTERM on, and the broker
    still exits cleanly. A parked Fetch keeps the broker stopping for a while (it waits for in-flight
    requests), so there is a window to see NOT_SERVING in."""
    port = free_port()
    b = broker_factory(**{"health.listener": f"127.0.0.1:{port}"})
    with WireClient(b.address) as admin:
        admin.create_topic("health-shutdown")
    with WireClient(b.address) as fetcher, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        partition = FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
        topic = FetchTopic(topic="health-shutdown", topic_id=bytes(16), partitions=[partition])
        fetcher.send(FetchRequest(replica_id=-1, max_wait_ms=3000, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                                  session_id=0, session_epoch=-1, topics=[topic]), 12)  # parked: no records
        stub = health_pb2_grpc.HealthStub(ch)
        assert _status(stub) == SERVING  # the broker's loop has also read the Fetch by now
        b.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _status(stub) == NOT_SERVING, TIMEOUT_S, interval=0.01,
                 message=lambda: f"NOT_SERVING after SIGTERM (last: {_status(stub)})")
        b.stop()  # waits for exit code 0
    assert "stopped cleanly" in b.log_text()


def test_sigterm_while_starting_stops_cleanly(tmp_path):
    """The signal handlers are in place before the logs load: a SIGTERM sent as soon as the health
    listener is up (the broker then loads its logs, or has just finished) stops it cleanly, code 0."""
    b = BrokerProcess(tmp_path / "b", **{"health.listener": f"127.0.0.1:{free_port()}"})
    b._spawn()  # without waiting for the Kafka listener to answer
    try:
        wait_for(lambda: "health service" in b.log_text() or b.proc.poll() is not None, TIMEOUT_S,
                 message=lambda: f"the health listener to start\n{b.tail_log()}")
        b.stop()  # SIGTERM; asserts exit code 0
        assert "stopped cleanly" in b.log_text(), b.tail_log()
    finally:
        b.kill9()
