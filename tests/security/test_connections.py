"""Many idle connections: bounded by `max.connections`, and closed after
`connections.max.idle.ms`; busy connections are kept."""

from __future__ import annotations

import contextlib
import socket

import pytest

from keystream.broker.protocol.messages.api_versions_request import ApiVersionsRequest
from tests.fixtures.waiting import Deadline, wait_for
from tests.fixtures.wire import WireClient

MAX_CONNECTIONS = 20
IDLE_MS = 1500


@pytest.fixture(scope="module")
def limited_broker(module_broker_factory):
    return module_broker_factory(**{"max.connections": MAX_CONNECTIONS, "connections.max.idle.ms": IDLE_MS})


def _refused(client: WireClient, timeout: float = 3.0) -> bool:
    """True if this connection is not served: closed by the broker, or no answer in time."""
    try:
        cid = client.send(ApiVersionsRequest(), 0)
        client.receive(cid, timeout=timeout)
    except Exception:
        return True
    return False


def test_max_connections_and_idle_timeout(limited_broker):
    b = limited_broker
    # Wait for connections of earlier tests (and the readiness probe) to be gone.
    wait_for(lambda: b.client_connections() == 0, 10, message="no client connections left")
    admitted: list[WireClient] = []
    extra: list[WireClient] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            c = WireClient(b.address, timeout=5)
            assert 18 in c.api_versions(0), "connections up to max.connections are served"
            admitted.append(c)
        # Many more: none of them is served while the limit is reached.
        for _ in range(100):
            try:
                extra.append(WireClient(b.address, timeout=5))
            except OSError:
                continue  # refused at connect: fine
        refused = sum(_refused(c, timeout=2.0) for c in extra[:10])
        assert refused == min(10, len(extra)), "connections beyond max.connections must not be served"
        # An over-limit connection is accepted and closed at once, so one may exist for an instant:
        # what must not happen is the broker keeping it.
        wait_for(lambda: b.client_connections() <= MAX_CONNECTIONS, 5,
                 message=f"the broker to hold at most {MAX_CONNECTIONS} connections")
        for c in extra:
            c.close()

        # Idle connections are closed after connections.max.idle.ms (plus the check interval).
        deadline = Deadline(IDLE_MS / 1000 * 3 + 5)
        for c in admitted:
            assert c.closed_within(deadline.left()), "idle connection not closed after connections.max.idle.ms"
        # ...which frees the slots: new connections are served again.
        wait_for(lambda: b.client_connections() == 0, 10, message="closed connections released")
        with WireClient(b.address) as c:
            assert 18 in c.api_versions(0)
    finally:
        for c in admitted + extra:
            c.close()


def test_busy_connection_is_not_closed_as_idle(limited_broker):
    b = limited_broker
    with WireClient(b.address) as busy:
        deadline = Deadline(IDLE_MS / 1000 * 2.5)
        n = 0
        # Bounded loop: one request every ~IDLE_MS/5 for 2.5 idle periods.
        while not deadline.expired():
            assert 18 in busy.api_versions(0)
            n += 1
            assert not busy.closed_within(IDLE_MS / 5000), "an active connection was closed"
        assert n >= 5


def test_half_open_connections_do_not_block_the_listener(limited_broker):
    """Connections that send half a frame and stall are closed as idle and never starve others."""
    b = limited_broker
    wait_for(lambda: b.client_connections() == 0, 10, message="no client connections left")
    stalled = []
    try:
        for _ in range(5):
            s = socket.create_connection(b.address, timeout=5)
            s.sendall(b"\x00\x00\x00\x40\x00\x12")  # announces 64 bytes, sends 2
            stalled.append(s)
        with WireClient(b.address) as c:
            assert 18 in c.api_versions(0)
        for s in stalled:
            s.settimeout(IDLE_MS / 1000 * 3 + 5)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1) == b"", "stalled connection must be closed"
    finally:
        for s in stalled:
            with contextlib.suppress(OSError):
                s.close()


def test_max_connections_per_ip(broker_factory):
    """One address cannot take more than `max.connections.per.ip`; a freed slot is served again."""
    b = broker_factory(**{"max.connections.per.ip": 3})
    wait_for(lambda: b.client_connections() == 0, 10, message="readiness probe gone")
    admitted = [WireClient(b.address, timeout=5) for _ in range(3)]
    try:
        for c in admitted:
            assert 18 in c.api_versions(0)
        extra = WireClient(b.address, timeout=5)
        assert _refused(extra, timeout=2.0), "a 4th connection from 127.0.0.1 must not be served"
        extra.close()
        assert "max.connections.per.ip reached" in b.tail_log()
        admitted.pop().close()
        wait_for(lambda: b.client_connections() == 2, 10, message="closed connection released")
        with WireClient(b.address) as c:
            assert 18 in c.api_versions(0)
    finally:
        for c in admitted:
            c.close()
