"""Client quotas (broker/quotas.py, handlers/client_quotas.py) in-process: Kafka's Rate windows and
throttle formula, KIP-55 precedence, tenant quotas, durable storage, and the two Admin APIs through
the codecs."""

from __future__ import annotations

import asyncio
import math
import tracemalloc

import pytest

from keystream.auth.principal import Principal, Session
from keystream.auth.tenants import Tenant
from keystream.broker.broker import Broker
from keystream.broker.context import RequestContext
from keystream.broker.errors import ErrorCode
from keystream.broker.handlers import HANDLERS
from keystream.broker.protocol.codec import Writer
from keystream.broker.protocol.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from keystream.broker.protocol.messages.describe_client_quotas_request import (
    ComponentData,
    DescribeClientQuotasRequest,
)
from keystream.broker.quotas import (
    CLIENT_ID,
    FETCH,
    MAX_RATES,
    PRODUCE,
    REQUEST,
    USER,
    QuotaManager,
    Rate,
    TimedCoroutine,
    entity,
)
from keystream.config import load_config

ADMIN = Principal("User", "admin")
ALICE = Session(Principal("User", "alice"), "127.0.0.1")
BOB = Session(Principal("User", "bob"), "127.0.0.1")


@pytest.fixture
def broker(tmp_path):
    props = {"log.dirs": str(tmp_path / "data"), "listeners": "PLAINTEXT://127.0.0.1:9092",
             "super.users": "User:admin"}
    b = Broker(load_config(None, overrides=props, environ={}))
    b.logs.load()
    b.metadata.open()
    b.tenants.load()
    b.quotas.load()
    b.authorizer.load()
    yield b
    b.metadata.close()
    b.logs.close()


class Clock:
    def __init__(self):
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def manager(broker, clock=None) -> QuotaManager:
    qm = QuotaManager(broker.config, broker.metadata, broker.authorizer, clock=clock or Clock())
    qm.load()
    return qm


# -- Rate: Kafka's SampledStat/Rate arithmetic ---------------------------------------------------------
def test_rate_counts_at_least_samples_minus_one_windows():
    r = Rate(11, 1000)
    r.record(1000, 0)
    assert r.window_size_ms(0) == 10_000  # a first burst is spread over 10 whole windows, as Kafka
    assert r.measure(0) == pytest.approx(100.0)
    r.record(1000, 500)
    assert r.measure(500) == pytest.approx(2000 / 10.5)


def test_rate_forgets_samples_older_than_the_window():
    r = Rate(3, 1000)
    for t in range(0, 3000, 100):
        r.record(100, t)
    assert r.measure(2999) > 0
    assert r.measure(2999 + 3000) == 0  # every sample's last event is a whole window old: purged


def test_rate_purges_by_last_record_and_measures_from_the_oldest_start():
    """Kafka's SampledStat.purgeObsoleteSamples (since 3.8): a sample overlapping the monitored
    window is kept even though it started before it; Rate.windowSize counts from its start."""
    r = Rate(2, 1000)
    r.record(100, 0)
    r.record(100, 999)  # the first sample's last record
    r.record(100, 1000)  # a second sample starts
    # at 2500 the first sample started 2500 ms ago but its last record is 1501 ms old (< 2 windows)
    assert r.window_size_ms(2500) == 2500
    assert r.measure(2500) == pytest.approx(300 / 2.5)
    assert r.window_size_ms(2998) == 2998
    # at 2999 the first sample's last record is 2 windows old: purged; the second one's start counts
    assert r.window_size_ms(2999) == 1999
    assert r.measure(2999) == pytest.approx(100 / 1.999)


def test_rate_keeps_samples_plus_one_buffers():
    r = Rate(2, 100)
    for t in range(0, 10_000, 10):
        r.record(1, t)
    assert len(r._starts) <= 3


# -- throttle formula --------------------------------------------------------------------------------
def test_throttle_is_kafkas_formula_bounded_by_the_whole_window(broker):
    clock = Clock()
    qm = manager(broker, clock)
    qm.store.alter({entity([(USER, "alice")]): {PRODUCE: 1000.0}})
    # 20 000 bytes over 10 s (10 windows assumed) = 2000 B/s: (2000 - 1000) / 1000 * 10 000 ms
    assert qm.record(PRODUCE, ALICE, "c1", 20_000) == 10_000
    # far more than the window can hold: capped at quota.window.num * size = 11 s
    assert qm.record(PRODUCE, ALICE, "c1", 10**9) == 11_000
    # below quota: no throttle for another user without quota
    assert qm.record(PRODUCE, BOB, "c1", 10**9) == 0


def test_request_percentage_throttle_is_bounded_by_one_window(broker):
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {REQUEST: 1.0}})
    assert qm.record(REQUEST, ALICE, None, 1000.0) == 1000


def test_a_tiny_quota_throttles_by_the_bound_not_an_overflow(broker):
    """Kafka accepts any request_percentage > 0; (O - T) / T overflows to inf for 1e-310, which
    Java's Math.round caps and Python's round refuses: the bound is the answer."""
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {REQUEST: 1e-310}})
    assert qm.record(REQUEST, ALICE, None, 5.0) == 1000
    assert QuotaManager.throttle_ms(math.inf, 1.0, 10_000, 7) == 7
    assert QuotaManager.throttle_ms(math.nan, 1.0, 10_000, 7) == 7


def test_under_quota_no_throttle_and_rate_recovers(broker):
    clock = Clock()
    qm = manager(broker, clock)
    qm.store.alter({entity([(USER, "alice")]): {PRODUCE: 1000.0}})
    assert qm.record(PRODUCE, ALICE, "c", 5000) == 0  # 500 B/s over the 10 s floor
    assert qm.record(PRODUCE, ALICE, "c", 10_000) > 0
    clock.ms += 11_000 * 2  # every sample expires
    assert qm.record(PRODUCE, ALICE, "c", 5000) == 0


# -- precedence (KIP-55) -----------------------------------------------------------------------------
PRECEDENCE = [
    [(USER, "alice"), (CLIENT_ID, "app")],
    [(USER, "alice"), (CLIENT_ID, None)],
    [(USER, "alice")],
    [(USER, None), (CLIENT_ID, "app")],
    [(USER, None), (CLIENT_ID, None)],
    [(USER, None)],
    [(CLIENT_ID, "app")],
    [(CLIENT_ID, None)],
]


def test_most_specific_entity_wins(broker):
    qm = manager(broker)
    qm.store.alter({entity(e): {PRODUCE: float(i + 1)} for i, e in enumerate(PRECEDENCE)})
    for i, e in enumerate(PRECEDENCE):
        value, _ = qm.limit(PRODUCE, "alice", "app")
        assert value == i + 1, e
        qm.store.alter({entity(e): {PRODUCE: None}})
    assert qm.limit(PRODUCE, "alice", "app") is None


def test_a_key_set_elsewhere_does_not_shadow(broker):
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {FETCH: 5.0}, entity([(CLIENT_ID, "app")]): {PRODUCE: 7.0}})
    assert qm.limit(PRODUCE, "alice", "app")[0] == 7.0
    assert qm.limit(FETCH, "alice", "app")[0] == 5.0


def test_user_quota_is_shared_by_the_users_clients_default_user_is_per_user(broker):
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {PRODUCE: 1000.0}, entity([(USER, None)]): {PRODUCE: 1000.0}})
    assert qm.limit(PRODUCE, "alice", "a")[1] == qm.limit(PRODUCE, "alice", "b")[1] == ("alice", "")
    assert qm.limit(PRODUCE, "bob", "a")[1] == ("bob", "")
    qm.record(PRODUCE, ALICE, "a", 15_000)
    assert qm.record(PRODUCE, ALICE, "b", 1) > 0  # the same rate
    assert qm.record(PRODUCE, BOB, "a", 1) == 0  # a rate of its own


# -- tenants -----------------------------------------------------------------------------------------
def test_tenant_quota_is_shared_by_its_members(broker):
    broker.tenants.put(Tenant("acme", frozenset({"User:alice", "User:bob"}), quotas={PRODUCE: 1000.0}))
    qm = manager(broker)
    assert qm.tenant_of(ALICE).name == "acme"
    assert qm.enabled(PRODUCE, ALICE) and not qm.enabled(FETCH, ALICE)
    assert qm.record(PRODUCE, ALICE, "a", 9000) == 0
    assert qm.record(PRODUCE, BOB, "b", 9000) > 0  # together over 1000 B/s
    carol = Session(Principal("User", "carol"), "127.0.0.1")
    assert qm.record(PRODUCE, carol, "a", 10**9) == 0


def test_super_users_are_not_throttled_by_a_tenant_quota_of_their_group(broker):
    """A super user belongs to no tenant (Authorizer.tenant_of), even when one of its groups does."""
    broker.tenants.put(Tenant("acme", frozenset({"Group:ops"}), quotas={PRODUCE: 1000.0}))
    root = Session(Principal("User", "admin"), "127.0.0.1", groups=(Principal("Group", "ops"),))
    member = Session(Principal("User", "olga"), "127.0.0.1", groups=(Principal("Group", "ops"),))
    qm = manager(broker)
    assert qm.tenant_of(root) is None and not qm.enabled(PRODUCE, root)
    assert qm.record(PRODUCE, root, "a", 10**9) == 0
    assert qm.tenant_of(member).name == "acme" and qm.record(PRODUCE, member, "a", 10**9) > 0
    assert broker.tenant_usage.session_tenant(root) is None


def test_tenant_and_user_quotas_both_apply(broker):
    broker.tenants.put(Tenant("acme", frozenset({"User:alice"}), quotas={PRODUCE: 10**9}))
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {PRODUCE: 100.0}})
    assert qm.record(PRODUCE, ALICE, "a", 5000) > 0


# -- storage ------------------------------------------------------------------------------------------
def test_quotas_survive_a_restart_and_removal_is_a_tombstone(broker):
    qm = manager(broker)
    qm.store.alter({entity([(USER, "alice")]): {PRODUCE: 1000.0, FETCH: 2000.0},
                    entity([(CLIENT_ID, None)]): {REQUEST: 50.0}})
    qm.store.alter({entity([(USER, "alice")]): {FETCH: None}})
    again = manager(broker)
    assert dict(again.store.get(entity([(USER, "alice")]))) == {PRODUCE: 1000.0}
    assert dict(again.store.get(entity([(CLIENT_ID, None)]))) == {REQUEST: 50.0}
    again.store.alter({entity([(CLIENT_ID, None)]): {REQUEST: None}})
    assert manager(broker).store.get(entity([(CLIENT_ID, None)])) == {}
    assert not manager(broker).store.has(REQUEST)


def test_rates_are_bounded_least_recently_recorded_first(broker):
    clock = Clock()
    qm = manager(broker, clock)
    qm.store.alter({entity([(CLIENT_ID, None)]): {PRODUCE: 1000.0}})  # a rate per client id
    qm.record(PRODUCE, ALICE, "kept", 1)
    for i in range(MAX_RATES + 100):
        if i == MAX_RATES // 2:
            qm.record(PRODUCE, ALICE, "kept", 1)  # recorded again: recent
        qm.record(PRODUCE, ALICE, f"c{i}", 1)
    assert len(qm._rates) == MAX_RATES
    assert any(k[-1] == "kept" for k in qm._rates)
    assert not any(k[-1] == "c0" for k in qm._rates)
    assert any(k[-1] == f"c{MAX_RATES + 99}" for k in qm._rates)


def test_long_client_ids_do_not_stay_in_memory(broker):
    """A client id may be 32 KiB: the rate is keyed by a digest of it, not the id."""
    qm = manager(broker)
    qm.store.alter({entity([(CLIENT_ID, None)]): {PRODUCE: 1000.0}})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            qm.record(PRODUCE, ALICE, f"{i:05d}" + "x" * 30_000, 1)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"2000 rates of 30 kB client ids hold {kept / 1e6:.1f} MB")
    assert len(qm._rates) == 2000
    assert kept < 10e6  # the ids alone are 60 MB
    assert qm.record(PRODUCE, ALICE, "00001" + "x" * 30_000, 10**6) > 0  # the same id: the same rate


def test_idle_rates_are_dropped(broker):
    clock = Clock()
    qm = manager(broker, clock)
    qm.store.alter({entity([(CLIENT_ID, None)]): {PRODUCE: 1000.0}})
    for i in range(100):
        qm.record(PRODUCE, ALICE, f"client-{i}", 1)
    assert len(qm._rates) == 100
    clock.ms += 3600 * 1000 + 1
    qm.record(PRODUCE, ALICE, "last", 1)
    assert len(qm._rates) == 1


def test_max_value_in_window(broker):
    qm = manager(broker)
    assert qm.max_value_in_window(FETCH, ALICE, "c") == math.inf
    qm.store.alter({entity([(USER, "alice")]): {FETCH: 1000.0}})
    assert qm.max_value_in_window(FETCH, ALICE, "c") == 10_000  # quota * (samples - 1) * window


def test_timed_coroutine_counts_loop_time_not_waiting():
    async def handler():
        await asyncio.sleep(0.05)
        return 42

    async def run():
        call = TimedCoroutine(handler())
        return await call, call.ns

    value, ns = asyncio.run(run())
    assert value == 42 and ns < 40_000_000


# -- the Admin APIs through the codecs -----------------------------------------------------------------
def _wire(msg, version: int) -> memoryview:
    w = Writer()
    msg.encode(w, version)
    return memoryview(b"".join(bytes(part) for part in w.getbuffers()))


def call(broker, req, principal: Principal = ADMIN, version: int = 1):
    handler = HANDLERS[type(req).API_KEY]
    assert handler.supports(version)
    decoded_req, _ = type(req).decode(_wire(req, version), 0, version)
    ctx = RequestContext(broker, version, 7, "test", Session(principal, "127.0.0.1"))
    resp = asyncio.run(handler.fn(ctx, decoded_req))
    raw = _wire(resp, version)
    decoded, end = handler.response_cls.decode(raw, 0, version)
    assert end == len(raw)
    return decoded


def alter_entry(pairs, **ops):
    return EntryData([EntityData(t, n) for t, n in pairs],
                     [OpData(k, 0.0 if v is None else v, v is None) for k, v in ops.items()])


def alter(broker, *entries, validate_only=False, principal=ADMIN):
    resp = call(broker, AlterClientQuotasRequest(list(entries), validate_only), principal)
    return [(e.error_code, e.error_message, [(d.entity_type, d.entity_name) for d in e.entity]) for e in resp.entries]


def describe(broker, components=(), strict=False, principal=ADMIN):
    resp = call(broker, DescribeClientQuotasRequest([ComponentData(*c) for c in components], strict), principal)
    if resp.error_code:
        return resp.error_code, resp.error_message
    return {tuple((d.entity_type, d.entity_name) for d in e.entity): {v.key: v.value for v in e.values}
            for e in resp.entries}


def test_alter_then_describe(broker):
    assert alter(broker, alter_entry([(USER, "alice")], producer_byte_rate=1024.0),
                 alter_entry([(USER, "alice"), (CLIENT_ID, None)], consumer_byte_rate=2048.0),
                 alter_entry([(CLIENT_ID, "app")], request_percentage=12.5)) == [
        (0, None, [(USER, "alice")]),
        (0, None, [(USER, "alice"), (CLIENT_ID, None)]),
        (0, None, [(CLIENT_ID, "app")]),
    ]
    assert describe(broker) == {
        ((CLIENT_ID, "app"),): {REQUEST: 12.5},
        ((CLIENT_ID, None), (USER, "alice")): {FETCH: 2048.0},
        ((USER, "alice"),): {PRODUCE: 1024.0},
    }
    assert describe(broker, [(USER, 0, "alice")], strict=True) == {((USER, "alice"),): {PRODUCE: 1024.0}}
    assert set(describe(broker, [(USER, 0, "alice")])) == {((USER, "alice"),), ((CLIENT_ID, None), (USER, "alice"))}
    assert set(describe(broker, [(CLIENT_ID, 1, None)])) == {((CLIENT_ID, None), (USER, "alice"))}
    assert set(describe(broker, [(CLIENT_ID, 2, None)], strict=True)) == {((CLIENT_ID, "app"),)}
    # and the running manager sees them at once
    assert broker.quotas.limit(PRODUCE, "alice", "x")[0] == 1024.0


def test_remove_and_validate_only(broker):
    alter(broker, alter_entry([(USER, "alice")], producer_byte_rate=1024.0))
    assert alter(broker, alter_entry([(USER, "alice")], producer_byte_rate=None), validate_only=True)[0][0] == 0
    assert describe(broker) != {}
    assert alter(broker, alter_entry([(USER, "alice")], producer_byte_rate=None))[0][0] == 0
    assert describe(broker) == {}
    assert alter(broker, alter_entry([(USER, "bob")], producer_byte_rate=5.0), validate_only=True)[0][0] == 0
    assert describe(broker) == {}


def test_tenant_entity_sets_the_tenants_quotas(broker):
    code, message, _ = alter(broker, alter_entry([("tenant", "acme")], producer_byte_rate=1000.0))[0]
    assert code == ErrorCode.INVALID_REQUEST and "does not exist" in message
    broker.tenants.put(Tenant("acme", frozenset({"User:alice"})))
    assert alter(broker, alter_entry([("tenant", "acme")], producer_byte_rate=1000.0))[0][0] == 0
    assert dict(broker.tenants.get("acme").quotas) == {PRODUCE: 1000.0}
    assert describe(broker, [("tenant", 2, None)]) == {(("tenant", "acme"),): {PRODUCE: 1000.0}}
    assert alter(broker, alter_entry([("tenant", "acme")], producer_byte_rate=None))[0][0] == 0
    assert dict(broker.tenants.get("acme").quotas) == {}


def test_version_0_roundtrip(broker):
    req = AlterClientQuotasRequest([alter_entry([(USER, "alice")], producer_byte_rate=10.0)], False)
    assert call(broker, req, version=0).entries[0].error_code == 0
    resp = call(broker, DescribeClientQuotasRequest([], False), version=0)
    assert [e.values[0].value for e in resp.entries] == [10.0]


def test_acks0_produce_leaves_its_throttle_on_the_request_context(broker):
    """No response carries it: the server reads ctx.throttle_ms and mutes the connection for it."""
    from keystream.broker.protocol.messages.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )
    from keystream.broker.records import build_batch

    broker.logs.create_topic("t", 1)
    alter(broker, alter_entry([(USER, "alice")], producer_byte_rate=100.0))
    req = ProduceRequest(acks=0, timeout_ms=1000, topic_data=[
        TopicProduceData("t", [PartitionProduceData(0, build_batch([(None, b"x" * 5000, [], 0)]))])])
    ctx = RequestContext(broker, 9, 1, "c", ALICE)
    assert asyncio.run(HANDLERS[0].fn(ctx, req)) is None
    assert ctx.throttle_ms > 0
    quiet = RequestContext(broker, 9, 2, "c", BOB)  # no quota
    assert asyncio.run(HANDLERS[0].fn(quiet, req)) is None and quiet.throttle_ms == 0
