"""Bad input and attacks on the client-quota Admin APIs, over the wire against a real broker: unknown
and malformed entity types, negative, zero, NaN, infinite, fractional and huge values, unknown keys,
duplicates, oversized names, and a non-admin principal trying to lift its own quota or read others'.
Every refusal is per entity with Kafka's code (INVALID_REQUEST, or CLUSTER_AUTHORIZATION_FAILED), the
good entities of the same request still apply, nothing bad is stored, and the connection stays up."""

from __future__ import annotations

import math

import pytest

from keystream.broker.errors import ErrorCode
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
from tests.fixtures.wire import WireClient

INVALID = ErrorCode.INVALID_REQUEST
DENIED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED


def entry(entity, ops):
    return EntryData([EntityData(t, n) for t, n in entity], [OpData(k, v, r) for k, v, r in ops])


def alter(c: WireClient, *entries, validate_only=False) -> list[tuple[int, str | None]]:
    resp = c.request(AlterClientQuotasRequest(list(entries), validate_only), 1)
    return [(e.error_code, e.error_message) for e in resp.entries]


def describe(c: WireClient, *components, strict=False):
    return c.request(DescribeClientQuotasRequest([ComponentData(*x) for x in components], strict), 1)


def stored(c: WireClient) -> dict:
    resp = describe(c)
    assert resp.error_code == 0
    return {tuple((d.entity_type, d.entity_name) for d in e.entity): {v.key: v.value for v in e.values}
            for e in resp.entries}


@pytest.fixture(scope="module")
def admin_broker(module_broker_factory):
    return module_broker_factory()  # PLAINTEXT clients are User:ANONYMOUS, a super user here


BAD_ENTITIES = [
    ([], "Invalid empty client quota entity"),
    ([("group", "acme")], "Unhandled client quota entity type: group"),
    ([("", "x")], "Unhandled client quota entity type: "),
    ([("USER", "alice")], "Unhandled client quota entity type: USER"),
    ([("ip", "10.0.0.1")], "ip is not supported"),
    ([("user", "")], "Empty user not supported"),
    ([("client-id", "")], "Empty client-id not supported"),
    ([("user", "a"), ("user", "b")], "duplicate entity entry user"),
    ([("tenant", "acme"), ("user", "alice")], "tenant entity should not be combined"),
    ([("tenant", None)], "Default tenant quotas are not supported"),
    ([("tenant", "no-such-tenant")], "does not exist"),
    ([("user", "u" * 5000)], "longer than 1024"),
]


@pytest.mark.parametrize(("entity", "why"), BAD_ENTITIES, ids=[str(i) for i in range(len(BAD_ENTITIES))])
def test_bad_entities_are_refused(admin_broker, entity, why):
    with WireClient(admin_broker.address) as c:
        results = alter(c, entry(entity, [("producer_byte_rate", 1000.0, False)]),
                        entry([("user", "good-neighbour")], [("producer_byte_rate", 1000.0, False)]))
        assert results[0][0] == INVALID and why in results[0][1]
        assert results[1] == (0, None)  # the other entity of the request still applies
        assert all(("user", "good-neighbour") in k or k == (("user", "good-neighbour"),) for k in stored(c))


BAD_VALUES = [
    ("producer_byte_rate", -1.0, "must be greater than 0"),
    ("producer_byte_rate", 0.0, "must be greater than 0"),
    ("consumer_byte_rate", -math.inf, "finite"),
    ("consumer_byte_rate", math.inf, "finite"),
    ("request_percentage", math.nan, "finite"),
    ("producer_byte_rate", math.nan, "finite"),
    ("producer_byte_rate", 1e300, "too large for a LONG"),
    ("producer_byte_rate", 1000.5, "cannot be a fractional value"),
    ("controller_mutation_rate", 10.0, "Invalid configuration key controller_mutation_rate"),
    ("connection_creation_rate", 10.0, "Invalid configuration key"),
    ("", 10.0, "Invalid configuration key"),
    ("producer_byte_rate\0x", 10.0, "Invalid configuration key"),
]


@pytest.mark.parametrize(("key", "value", "why"), BAD_VALUES, ids=[str(i) for i in range(len(BAD_VALUES))])
def test_bad_keys_and_values_are_refused(admin_broker, key, value, why):
    with WireClient(admin_broker.address) as c:
        good = "producer_byte_rate" if key == "request_percentage" else "request_percentage"
        (code, message), = alter(c, entry([("user", "victim")], [(good, 5.0, False), (key, value, False)]))
        assert code == INVALID and why in message
        assert (("user", "victim"),) not in stored(c)  # nothing of the entity applied


def test_duplicates_apply_nothing(admin_broker):
    with WireClient(admin_broker.address) as c:
        twice = entry([("user", "dup")], [("producer_byte_rate", 1000.0, False)])
        (code, message), = alter(c, twice, twice)
        assert code == INVALID and "duplicate entity" in message
        (code, message), = alter(c, entry([("user", "dup")], [("producer_byte_rate", 1000.0, False),
                                                             ("producer_byte_rate", 5.0, False)]))
        assert code == INVALID and "Duplicate quota key" in message
        assert (("user", "dup"),) not in stored(c)


def test_removing_an_unknown_key_or_entity_is_harmless(admin_broker):
    with WireClient(admin_broker.address) as c:
        assert alter(c, entry([("user", "nobody")], [("no_such_key", 0.0, True)])) == [(0, None)]
        assert (("user", "nobody"),) not in stored(c)


def test_bad_describe_filters(admin_broker):
    with WireClient(admin_broker.address) as c:
        cases = [
            ([("group", 0, "x")], ErrorCode.UNSUPPORTED_VERSION),
            ([("ip", 2, None)], ErrorCode.UNSUPPORTED_VERSION),
            ([("", 0, "x")], INVALID),
            ([("user", 0, None)], INVALID),
            ([("user", 1, "x")], INVALID),
            ([("user", 2, "x")], INVALID),
            ([("user", 7, None)], INVALID),
            ([("user", -1, None)], INVALID),
            ([("user", 2, None), ("user", 0, "a")], INVALID),
            ([("tenant", 2, None), ("user", 2, None)], INVALID),
        ]
        for components, code in cases:
            resp = describe(c, *components)
            assert resp.error_code == code, components
            assert resp.entries is None
        assert c.api_versions()  # still connected


def test_validate_only_stores_nothing(admin_broker):
    with WireClient(admin_broker.address) as c:
        assert alter(c, entry([("user", "dry")], [("producer_byte_rate", 1.0, False)]), validate_only=True) == [(0, None)]
        assert (("user", "dry"),) not in stored(c)


def test_non_admin_cannot_alter_or_describe(broker_factory):
    broker = broker_factory()
    with WireClient(broker.address) as c:
        assert alter(c, entry([("user", "ANONYMOUS")], [("producer_byte_rate", 1000.0, False)])) == [(0, None)]
    broker.stop()
    broker.overrides["super.users"] = "User:admin"  # ANONYMOUS is now an ordinary user
    broker.start()
    with WireClient(broker.address) as c:
        lift = entry([("user", "ANONYMOUS")], [("producer_byte_rate", 1.0, True)])
        everyone = entry([("user", None)], [("producer_byte_rate", 1e12, False)])
        garbage = entry([("bogus", "x")], [("nope", math.nan, False)])
        assert alter(c, lift, everyone, garbage) == [(DENIED, "Cluster authorization failed.")] * 3
        assert alter(c, lift, validate_only=True) == [(DENIED, "Cluster authorization failed.")]
        resp = describe(c)
        assert (resp.error_code, resp.entries) == (DENIED, None)
        resp = describe(c, ("bogus", 9, None))  # authorization comes before validation: nothing to learn
        assert resp.error_code == DENIED
        assert c.api_versions()
    broker.stop()
    broker.overrides["super.users"] = "User:ANONYMOUS"
    broker.start()
    with WireClient(broker.address) as c:
        assert stored(c) == {(("user", "ANONYMOUS"),): {"producer_byte_rate": 1000.0}}


def test_a_tiny_request_percentage_throttles_and_keeps_the_connection(admin_broker):
    """Kafka accepts any request_percentage > 0. With 1e-310, (observed - quota) / quota overflows to
    infinity: the throttle is the bound (one window) and the connection keeps answering."""
    with WireClient(admin_broker.address) as c:
        assert alter(c, entry([("client-id", "tiny-quota")], [("request_percentage", 1e-310, False)])) == [(0, None)]
    with WireClient(admin_broker.address, client_id="tiny-quota") as c:
        for _ in range(3):
            reply = c.metadata()
            print("throttle_time_ms:", reply.throttle_time_ms)
            assert reply.throttle_time_ms == 1000  # quota.window.size.seconds=1
        assert c.api_versions()  # exempt, still answered
