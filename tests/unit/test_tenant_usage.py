"""Per-tenant usage figures (broker/tenant_usage.py) as HA's admin API and the metrics read them.

Handlers run in-process over a started Broker in a temporary directory, every request and response
through the wire codecs (tests/unit/test_authz_handlers.py's Node). `User:admin` is the super user;
tenant `acme` has User:alice, tenant `globex` User:gina; User:bob belongs to none.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY, generate_latest

from keystream.auth.acl import Operation, ResourceType
from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import Tenant
from keystream.broker.broker import Broker
from keystream.broker.protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from keystream.broker.records import build_batch
from keystream.broker.tenant_usage import REFRESH_S, TenantUsage, UsageSnapshot
from keystream.config import load_config
from tests.unit.test_authz_handlers import Node


def session(principal: str) -> Session:
    return Session(Principal.parse(principal), "127.0.0.1")


ADMIN, ALICE, GINA, BOB = (session(f"User:{n}") for n in ("admin", "alice", "gina", "bob"))


class Harness:
    """A started Broker on its own event loop; `call` runs a handler on it."""

    def __init__(self, tmp_path, **props):
        self.loop = asyncio.new_event_loop()
        config = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
                  "super.users": "User:admin", "group.initial.rebalance.delay.ms": 0,
                  "offsets.topic.num.partitions": 1, "allow.everyone.if.no.acl.found": True, **props}
        self.broker = Broker(load_config(None, overrides=config, environ={}))
        self.node = Node(self.broker)
        self.run(self.broker.start())

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def call(self, who: Session, req, version: int):
        return self.run(self.node.call(who, req, version))

    @property
    def usage(self) -> TenantUsage:
        return self.broker.tenant_usage

    def close(self) -> None:
        self.run(self.broker.stop())
        self.loop.close()


@pytest.fixture
def h(tmp_path):
    h = Harness(tmp_path)
    yield h
    h.close()


def records(n: int = 1, size: int = 100) -> bytes:
    now = int(time.time() * 1000)
    return build_batch([(b"k", b"v" * size, [], now) for _ in range(n)])


def produce(topic: str, partition: int = 0, data: bytes | None = None, acks: int = 1) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=1000, topic_data=[
        TopicProduceData(topic, [PartitionProduceData(partition, data or records())])])


def fetch(topic: str) -> FetchRequest:
    return FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic=topic, partitions=[
        FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 20)])])


def with_tenants(h: Harness) -> None:
    h.broker.tenants.put(Tenant("acme", frozenset({"User:alice"})))
    h.broker.tenants.put(Tenant("globex", frozenset({"User:gina"})))


def test_no_tenants_no_figures(h):
    assert not h.usage.active()
    assert h.usage.session_tenant(ALICE) is None and h.usage.topic_tenant("acme.orders") is None
    h.node.topic("acme.orders")
    assert h.call(ALICE, produce("acme.orders"), 9).responses[0].partition_responses[0].error_code == 0
    assert h.usage.snapshots() == {}


def test_bytes_in_and_out_count_for_the_session_tenant_only(h):
    with_tenants(h)
    h.node.topic("acme.orders")
    data = records(3)
    for who in (ALICE, ADMIN):  # the super user's produce counts for no tenant
        assert h.call(who, produce("acme.orders", data=data), 9).responses[0].partition_responses[0].error_code == 0
    fetched = h.call(ALICE, fetch("acme.orders"), 12)
    out = sum(len(bytes(r)) for r in [fetched.responses[0].partitions[0].records])
    snap = h.usage.snapshot("acme")
    assert snap.bytes_in == len(data)
    assert snap.bytes_out == out == 2 * len(data)
    assert h.usage.snapshot("globex") == UsageSnapshot(0, 0, 0, 0, 0, 0)


def test_refused_produce_counts_no_bytes_in(h):
    with_tenants(h)
    h.node.topic("globex.orders")
    reply = h.call(ALICE, produce("globex.orders"), 9)
    assert reply.responses[0].partition_responses[0].error_code != 0
    snap = h.usage.snapshot("acme")
    assert snap.bytes_in == 0 and snap.rejected_requests == 1  # the tenant rule's denial


def test_storage_and_partitions_of_the_namespace(h):
    with_tenants(h)
    h.node.topic("acme.a", 2)
    h.node.topic("acme.b", 3)
    h.node.topic("acme2.c", 4)  # a look-alike prefix is another namespace
    data = records(2)
    for who in (ALICE, ADMIN):  # storage is the namespace's, whoever wrote it
        for p in (0, 1):
            h.call(who, produce("acme.a", p, data), 9)
    snap = h.usage.snapshot("acme")
    assert snap.partitions == 5
    on_disk = sum(p.size_bytes for t in ("acme.a", "acme.b") for p in h.broker.logs.topic(t).partitions)
    assert snap.storage_bytes == on_disk == 4 * len(data)


def test_storage_is_recounted_after_space_is_freed(tmp_path):
    h = Harness(tmp_path)
    clock = [100.0]
    usage = TenantUsage(h.broker.logs, h.broker.tenants, clock=lambda: clock[0])
    try:
        with_tenants(h)
        topic = h.broker.logs.create_topic("acme.t", 1, {"segment.bytes": "1024"})
        plog = topic.partitions[0]
        data = records(1, 300)
        for _ in range(10):
            h.call(ALICE, produce("acme.t", data=data), 9)
        before = usage.storage_bytes("acme")
        assert before == plog.size_bytes
        usage.appended("acme", 7)  # appended since the count: added, not recounted
        assert usage.storage_bytes("acme") == before + 7
        plog.delete_records(plog.high_watermark)
        assert usage.storage_bytes("acme") == before + 7  # within REFRESH_S: the figure stands
        clock[0] += REFRESH_S + 0.01
        assert usage.storage_bytes("acme") == plog.size_bytes < before
    finally:
        usage.close()
        h.close()


def test_every_tenants_figures_come_from_one_count_per_refresh(tmp_path):
    """Storage and partitions of all tenants are counted together, at most every REFRESH_S (a scrape
    does not walk the topic table per tenant); the partition limit still counts afresh."""
    h = Harness(tmp_path)
    clock = [100.0]
    usage = TenantUsage(h.broker.logs, h.broker.tenants, clock=lambda: clock[0])
    try:
        with_tenants(h)
        assert usage.snapshots()["acme"].storage_bytes == 0  # counted before acme had a topic
        h.node.topic("acme.a", 2)
        usage.appended("acme", 500)  # its first append since: counted all the same
        assert usage.storage_bytes("acme") == 500
        clock[0] += REFRESH_S + 0.01
        h.node.topic("globex.b", 1)
        h.node.topic("acmex", 4)  # no dot: nobody's
        first = usage.snapshots()
        assert (first["acme"].partitions, first["globex"].partitions) == (2, 1)
        h.node.topic("acme.c", 3)
        h.node.topic("globex.d", 1)
        assert usage.snapshots() == first  # within REFRESH_S: the same count
        assert usage.partitions("acme") == 5
        clock[0] += REFRESH_S + 0.01
        again = usage.snapshots()
        assert (again["acme"].partitions, again["globex"].partitions) == (5, 2)
    finally:
        usage.close()
        h.close()


def test_denials_count_but_operation_bitfields_do_not(h):
    with_tenants(h)
    authorizer = h.broker.authorizer
    assert not authorizer.authorize(ALICE, Operation.READ, ResourceType.TOPIC, "globex.x")
    assert not authorizer.authorize(ALICE, Operation.CREATE, ResourceType.CLUSTER, "kafka-cluster")
    authorizer.authorized_operations(ALICE, ResourceType.TOPIC, "acme.x")  # ALTER etc. are not implicit
    authorizer.authorized_operations(ALICE, ResourceType.TOPIC, "globex.x")
    h.node.acl("User:bob", Operation.READ, ResourceType.TOPIC, "other")
    assert not authorizer.authorize(BOB, Operation.WRITE, ResourceType.TOPIC, "other")  # bob: in no tenant
    assert h.usage.snapshot("acme").rejected_requests == 2
    assert h.usage.snapshot("globex").rejected_requests == 0


def test_throttle_counts_for_the_session_tenant(h):
    with_tenants(h)
    h.usage.throttled(ALICE, 250)
    h.usage.throttled(ADMIN, 1000)
    h.usage.throttled(BOB, 1000)
    assert h.usage.snapshot("acme").throttle_ms == 250


def test_metrics_labelled_by_tenant_and_gone_with_it(h):
    with_tenants(h)
    h.node.topic("acme.m", 2)
    h.call(ALICE, produce("acme.m"), 9)
    text = generate_latest(REGISTRY).decode()
    for name in ("keystream_tenant_bytes_in_total", "keystream_tenant_bytes_out_total",
                 "keystream_tenant_throttle_ms_total", "keystream_tenant_rejected_requests_total",
                 "keystream_tenant_storage_bytes", "keystream_tenant_partitions"):
        assert f'{name}{{tenant="acme"}}' in text, name
        assert f'{name}{{tenant="globex"}}' in text, name
    assert 'keystream_tenant_partitions{tenant="acme"} 2.0' in text
    assert h.broker.tenants.remove("acme")
    text = generate_latest(REGISTRY).decode()
    assert 'tenant="acme"' not in text and 'tenant="globex"' in text
    h.broker.tenants.put(Tenant("acme", frozenset({"User:alice"})))  # a new tenant of the old name
    assert h.usage.snapshot("acme").bytes_in == 0
