"""Tenant limits under bad input: partition counts (Tenant.max_partitions) on CreateTopics,
CreatePartitions and Metadata auto-create, and the storage limit (Tenant.max_storage_bytes) on Produce.

Kafka's answer for a refused policy is POLICY_VIOLATION with a message; the messages are the ones
broker/tenant_usage.py documents. Test-only path: handlers run in-process over a started Broker
(tests/unit/test_tenant_usage.py's Harness, every request through the wire codecs) and tenants are
put in the tenant store directly, the store the gRPC admin API writes (tests/integration/
test_tenant_limits.py goes through the admin API and real clients).
"""

from __future__ import annotations

import asyncio

import pytest

from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import InvalidTenant, Tenant
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode as E
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from keystream.broker.protocol.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from keystream.broker.protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from keystream.broker.protocol.messages.delete_topics_request import DeleteTopicsRequest
from keystream.broker.protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from keystream.broker.tenant_usage import REFRESH_S
from tests.unit.test_tenant_usage import ADMIN, ALICE, Harness, records

MAX_INT64 = 2**63 - 1


@pytest.fixture
def h(tmp_path):
    h = Harness(tmp_path, **{"auto.create.topics.enable": True, "num.partitions": 2})
    yield h
    h.close()


def tenant(h: Harness, **limits) -> None:
    h.broker.tenants.put(Tenant("acme", frozenset({"User:alice"}), **limits))


def create(*topics: tuple[str, int], validate_only: bool = False) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=[CreatableTopic(name=n, num_partitions=p, replication_factor=-1)
                                       for n, p in topics], timeout_ms=1000, validate_only=validate_only)


def created(h, who, *topics, validate_only=False) -> list[tuple[int, str | None]]:
    reply = h.call(who, create(*topics, validate_only=validate_only), 7)
    return [(t.error_code, t.error_message) for t in reply.topics]


def over(has: int, asked: int, limit: int = 5) -> tuple[int, str]:
    return E.POLICY_VIOLATION, f"tenant acme may have at most {limit} partitions (has {has}, asked for {asked})"


FULL = "tenant acme has reached its storage limit of {} bytes"


# -- partitions ----------------------------------------------------------------------------------------
def test_create_that_would_exceed_by_one(h):
    tenant(h, max_partitions=5)
    assert created(h, ALICE, ("acme.a", 3)) == [(0, None)]
    assert created(h, ALICE, ("acme.b", 3)) == [over(3, 3)]
    assert h.broker.logs.topic("acme.b") is None
    assert created(h, ALICE, ("acme.b", 2)) == [(0, None)]  # exactly at the limit is allowed
    assert created(h, ALICE, ("acme.c", 1)) == [over(5, 1)]
    assert created(h, ADMIN, ("acme.c", 1)) == [over(5, 1)]  # the namespace's limit, whoever asks
    assert created(h, ADMIN, ("other.c", 9)) == [(0, None)]  # outside any tenant: no limit
    assert h.usage.snapshot("acme").rejected_requests == 3


def test_several_topics_in_one_request(h):
    tenant(h, max_partitions=4)
    assert created(h, ALICE, ("acme.a", 2), ("acme.b", 2), ("acme.c", 1)) == [(0, None), (0, None), over(4, 1, 4)]


def test_validate_only_answers_the_same_and_creates_nothing(h):
    tenant(h, max_partitions=4)
    assert created(h, ALICE, ("acme.a", 2), ("acme.b", 2), ("acme.c", 1), validate_only=True) == \
        [(0, None), (0, None), over(4, 1, 4)]
    assert created(h, ALICE, ("acme.big", 5), validate_only=True) == [over(0, 5, 4)]
    assert h.usage.snapshot("acme").partitions == 0 and not h.broker.logs.topics.keys() & {"acme.a", "acme.b"}


def test_validate_only_counts_only_topics_that_pass_kafkas_checks(h):
    """The limit is asked after Kafka's own checks: a topic refused by them reports their error, and
    a validate_only request does not count its partitions for the topics after it."""
    tenant(h, max_partitions=4)
    bad_config = CreatableTopic(name="acme.bad", num_partitions=3, replication_factor=-1,
                                configs=[CreatableTopicConfig("cleanup.policy", "nope")])
    for validate_only in (True, False):
        req = CreateTopicsRequest(topics=[bad_config, CreatableTopic(name="acme.good", num_partitions=3,
                                                                     replication_factor=-1)],
                                  timeout_ms=1000, validate_only=validate_only)
        codes = [t.error_code for t in h.call(ALICE, req, 7).topics]
        assert codes == [E.INVALID_CONFIG, 0]


def test_names_that_could_collide_with_a_namespace_are_reserved(h):
    """`acme_x` would collide with a member's `acme.x` (Kafka refuses names differing only by '.' vs
    '_'), and the member's refusal would reveal it: refused to everyone while tenant acme exists."""
    tenant(h)
    bob = Session(Principal.parse("User:bob"), "127.0.0.1")  # in no tenant (allow.everyone.if.no.acl.found)
    reserved = (E.POLICY_VIOLATION, "Topic names starting 'acme_' are reserved: they could collide with the "
                                    "namespace 'acme.' of tenant acme.")
    for who in (ADMIN, bob):
        assert created(h, who, ("acme_x", 1)) == [reserved]
        assert created(h, who, ("acme_x", 1), validate_only=True) == [reserved]
        reply = h.call(who, MetadataRequest(topics=[MetadataRequestTopic(name="acme_y")],
                                            allow_auto_topic_creation=True), 12)
        assert reply.topics[0].error_code == E.POLICY_VIOLATION
    assert h.broker.logs.topic("acme_x") is None and h.broker.logs.topic("acme_y") is None
    assert created(h, ADMIN, ("acme2_x", 1), ("acme-x", 1), ("x.acme_y", 1)) == [(0, None)] * 3
    assert created(h, ALICE, ("acme_z", 1)) == [(E.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.")]
    assert created(h, ALICE, ("acme.x", 1), ("acme.y", 1)) == [(0, None), (0, None)]


def test_concurrent_creates_cannot_both_squeeze_past(h):
    tenant(h, max_partitions=5)
    requests = [h.node.call(ALICE, create((f"acme.race{i}", 2)), 7) for i in range(6)]

    async def race():
        return await asyncio.gather(*requests)

    codes = [r.topics[0].error_code for r in h.run(race())]
    assert sorted(codes) == [0, 0] + [E.POLICY_VIOLATION] * 4
    assert h.usage.snapshot("acme").partitions == 4


def test_create_partitions_past_the_limit(h):
    tenant(h, max_partitions=5)
    assert created(h, ALICE, ("acme.a", 2)) == [(0, None)]

    def grow(who, count, validate_only=False):
        reply = h.call(who, CreatePartitionsRequest(topics=[CreatePartitionsTopic("acme.a", count, None)],
                                                    timeout_ms=1000, validate_only=validate_only), 3)
        return reply.results[0].error_code, reply.results[0].error_message

    assert grow(ALICE, 6, validate_only=True) == over(2, 4)
    assert grow(ALICE, 6) == over(2, 4)
    assert grow(ADMIN, 6) == over(2, 4)
    assert len(h.broker.logs.topic("acme.a").partitions) == 2
    assert grow(ALICE, 5, validate_only=True) == (0, None)
    assert grow(ALICE, 5) == (0, None)
    assert len(h.broker.logs.topic("acme.a").partitions) == 5


def test_auto_create_past_the_limit(h):
    tenant(h, max_partitions=3)  # num.partitions=2

    def meta(name):
        reply = h.call(ALICE, MetadataRequest(topics=[MetadataRequestTopic(name=name)],
                                              allow_auto_topic_creation=True), 12)
        return reply.topics[0].error_code

    assert meta("acme.auto1") == 0
    assert meta("acme.auto2") == E.POLICY_VIOLATION
    assert h.broker.logs.topic("acme.auto2") is None and h.usage.snapshot("acme").partitions == 2


def test_limit_lowered_below_current_usage(h):
    tenant(h, max_partitions=10)
    assert created(h, ALICE, ("acme.a", 6)) == [(0, None)]
    tenant(h, max_partitions=4)
    assert created(h, ALICE, ("acme.b", 1)) == [over(6, 1, 4)]
    reply = h.call(ALICE, produce("acme.a", 5), 9)  # existing partitions keep working
    assert reply.responses[0].partition_responses[0].error_code == 0


@pytest.mark.parametrize("bad", [-1, -(2**63), True, 1.5, "10", float("nan")])
def test_bad_limits_are_refused_by_the_store(h, bad):
    for limit in ("max_partitions", "max_storage_bytes"):
        with pytest.raises(InvalidTenant):
            Tenant("acme", frozenset({"User:alice"}), **{limit: bad})


def test_zero_and_huge_limits(h):
    tenant(h, max_partitions=0, max_storage_bytes=0)
    h.node.topic("acme.z", 1)  # made by the operator outside the API
    assert created(h, ALICE, ("acme.a", 1)) == [over(1, 1, 0)]
    assert produced(h, produce("acme.z", 0)) == [(E.POLICY_VIOLATION, FULL.format(0))]
    tenant(h, max_partitions=MAX_INT64, max_storage_bytes=MAX_INT64)
    assert created(h, ALICE, ("acme.a", 100)) == [(0, None)]
    assert produced(h, produce("acme.z", 0)) == [(0, None)]
    tenant(h, max_partitions=10**30, max_storage_bytes=10**30)  # beyond int64: no limit in practice
    assert produced(h, produce("acme.z", 0)) == [(0, None)]


# -- storage -------------------------------------------------------------------------------------------
def produce(topic: str, *partitions: int, acks: int = 1, size: int = 100) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=1000, topic_data=[
        TopicProduceData(topic, [PartitionProduceData(p, records(1, size)) for p in partitions])])


def produced(h, req, who=ALICE) -> list[tuple[int, str | None]]:
    reply = h.call(who, req, 9)
    return [(p.error_code, p.error_message) for t in reply.responses for p in t.partition_responses]


def ends(h, topic: str) -> list[int]:
    return [p.log_end_offset for p in h.broker.logs.topic(topic).partitions]


def fill(h, topic: str, partitions: int, limit: int) -> None:
    """Produce 1 KB batches across the partitions until the tenant's storage reaches `limit`."""
    for _ in range(limit // 1000 + 2):
        if h.usage.storage_bytes("acme") >= limit:
            return
        assert produced(h, produce(topic, *range(partitions), size=1000))[0][0] == 0
    raise AssertionError("storage never reached the limit")


@pytest.mark.parametrize("acks", [1, -1])
def test_produce_at_the_storage_limit_across_partitions(h, acks):
    limit = 5000
    tenant(h, max_storage_bytes=limit)
    h.node.topic("acme.s", 3)
    fill(h, "acme.s", 3, limit)  # its last request may already see the third partition refused
    before, refused = ends(h, "acme.s"), h.usage.snapshot("acme").rejected_requests
    assert produced(h, produce("acme.s", 0, 1, 2, acks=acks)) == [(E.POLICY_VIOLATION, FULL.format(limit))] * 3
    assert produced(h, produce("acme.s", 1, acks=acks), who=ADMIN) == [(E.POLICY_VIOLATION, FULL.format(limit))]
    assert ends(h, "acme.s") == before  # nothing appended
    h.node.topic("other.s", 1)
    assert produced(h, produce("other.s", 0), who=ADMIN) == [(0, None)]  # other namespaces unaffected
    assert h.usage.snapshot("acme").rejected_requests == refused + 4


def test_acks_0_at_the_storage_limit_appends_nothing(h):
    tenant(h, max_storage_bytes=3000)
    h.node.topic("acme.s", 2)
    fill(h, "acme.s", 2, 3000)
    before = ends(h, "acme.s")
    req = produce("acme.s", 0, 1, acks=0)
    handler = HANDLERS[type(req).API_KEY]
    assert h.run(handler.fn(RequestContext(h.broker, 9, 7, "test", ALICE), req)) is None
    assert ends(h, "acme.s") == before


def test_a_request_crossing_the_limit_is_accepted_the_next_refused(h):
    tenant(h, max_storage_bytes=1500)
    h.node.topic("acme.s", 1)
    assert produced(h, produce("acme.s", 0, size=1000)) == [(0, None)]
    assert produced(h, produce("acme.s", 0, size=1000)) == [(0, None)]  # 1 KB in: under, so admitted
    assert produced(h, produce("acme.s", 0, size=10)) == [(E.POLICY_VIOLATION, FULL.format(1500))]


def admitted_again(h, req, timeout=10.0) -> bool:
    """Polls (bounded, every REFRESH_S / 2) until the produce is accepted: storage is recounted every REFRESH_S."""
    async def poll():
        for _ in range(int(timeout / REFRESH_S) * 2):
            reply = await h.node.call(ALICE, req, 9)
            if reply.responses[0].partition_responses[0].error_code == 0:
                return True
            await asyncio.sleep(REFRESH_S / 2)
        return False
    return h.run(poll())


def test_admitted_again_after_delete_records(h):
    tenant(h, max_storage_bytes=4000)
    h.broker.logs.create_topic("acme.s", 1, {"segment.bytes": "1500"})
    fill(h, "acme.s", 1, 4000)
    assert produced(h, produce("acme.s", 0))[0][0] == E.POLICY_VIOLATION
    plog = h.broker.logs.topic("acme.s").partitions[0]
    reply = h.call(ALICE, DeleteRecordsRequest(topics=[DeleteRecordsTopic("acme.s", [
        DeleteRecordsPartition(0, plog.high_watermark)])], timeout_ms=1000), 2)
    assert reply.topics[0].partitions[0].error_code == 0
    assert admitted_again(h, produce("acme.s", 0))


def test_admitted_again_after_retention(h):
    tenant(h, max_storage_bytes=4000)
    h.broker.logs.create_topic("acme.s", 1, {"segment.bytes": "1500"})
    fill(h, "acme.s", 1, 4000)
    assert produced(h, produce("acme.s", 0))[0][0] == E.POLICY_VIOLATION
    h.broker.logs.incremental_alter_topic_config("acme.s", [("retention.bytes", 0, "1")])
    h.broker.logs.run_maintenance()  # the broker's maintenance pass, run here rather than waited for
    assert admitted_again(h, produce("acme.s", 0))


def test_admitted_again_after_delete_topics(h):
    tenant(h, max_storage_bytes=3000)
    h.node.topic("acme.s", 1)
    h.node.topic("acme.t", 1)
    fill(h, "acme.s", 1, 3000)
    assert produced(h, produce("acme.t", 0))[0][0] == E.POLICY_VIOLATION
    reply = h.call(ALICE, DeleteTopicsRequest(topic_names=["acme.s"], timeout_ms=1000), 5)
    assert reply.responses[0].error_code == 0
    assert produced(h, produce("acme.t", 0)) == [(0, None)]  # at once: deletion drops the stale figure
