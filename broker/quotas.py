"""Client quotas as Kafka's ClientQuotaManager enforces them (KIP-13, KIP-55, KIP-124, KIP-219).

Three quota types, each a rate over a sliding window of `quota.window.num` samples of
`quota.window.size.seconds` (Kafka's Rate over a SampledStat): `producer_byte_rate` (bytes of record
batches produced per second), `consumer_byte_rate` (bytes fetched per second) and
`request_percentage` (event-loop time spent on the client's requests, in percent of one second per
second: 100 = one whole loop).

**Which quota applies** (KIP-55): quotas are set on entities made of a `user` and/or a `client-id`
(a None name is the entity type's default). For a connection of user U with client id C the first of
these with a value for the quota's key wins, as in Kafka:

    (user U, client-id C)  (user U, client-id default)  (user U)
    (user default, client-id C)  (user default, client-id default)  (user default)
    (client-id C)  (client-id default)

Connections that match the same level share one rate: under a `(user U)` quota all of U's clients
count together; under `(user default)` each user has a rate of its own.

**Tenants** (Keystream): a tenant's quotas (H8a's `Tenant.quotas`, set through the tenant store or
AlterClientQuotas with entity type `tenant`) apply to all its members together, one rate per tenant.
They apply on top of the user/client-id quota: a request is recorded in both, and the longer of the two
throttle times is the answer, as Kafka does for a request over both its byte-rate and request quota.
A session's tenant is the authorizer's (`Authorizer.tenant_of`: none for super users).

**Throttling** (KIP-219): the throttle time is the time the rate needs to fall back to the quota if
nothing more is recorded, `(observed - quota) / quota * window`, as Kafka's QuotaUtils.throttleTime.
Kafka bounds it only for request quotas (by one window); Keystream also bounds byte-rate throttles,
by the whole window (`quota.window.num * quota.window.size.seconds`), so one huge request cannot
mute a connection for minutes. The response is sent at once carrying `throttle_time_ms`, then the
server stops reading that connection for that long (broker/server.py). Data is never dropped: a
throttled produce is appended. A throttled fetch still carries its records (Kafka answers it empty
and un-records its bytes, so a consumer whose next batch alone exceeds what the window holds never
progresses); the bytes stay recorded, so the mute holds the consumer to its rate all the same, and a
consumer's fetch size is capped at `quota * (quota.window.num - 1) * quota.window.size.seconds` (at
least one batch), as Kafka caps it.

**Storage**: user/client-id quotas live in the broker's metadata log, one record per entity keyed
`quota\\0<entity as compact JSON>` holding the entity's keys and values (a tombstone when none is left),
written as one fsynced batch per AlterClientQuotas request, and applied in memory after that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keystream.auth.acl import Authorizer
    from keystream.auth.principal import Session
    from keystream.auth.tenants import Tenant

log = logging.getLogger("keystream.quotas")

KEY_PREFIX = b"quota\0"
USER, CLIENT_ID, TENANT, IP = "user", "client-id", "tenant", "ip"
PRODUCE, FETCH, REQUEST = "producer_byte_rate", "consumer_byte_rate", "request_percentage"
# Kafka's types of the keys (QuotaConfig.userAndClientQuotaConfigs): the byte rates are LONGs.
KEY_TYPES: Mapping[str, str] = MappingProxyType({PRODUCE: "long", FETCH: "long", REQUEST: "double"})
LONG_MAX = 2**63 - 1
MAX_ENTITY_NAME = 1024  # a longer user or client id in a quota entity is refused (Keystream's bound)
# Sensors not recorded in for this long are dropped (Kafka: InactiveSensorExpirationTimeSeconds).
SENSOR_EXPIRY_MS = 3600 * 1000
_SWEEP_EVERY_MS = 60 * 1000
# Rates kept at most (least recently recorded dropped first): under a client-id default quota every
# client id a connection sends (up to 32 KiB each) would otherwise hold a rate for an hour.
MAX_RATES = 50_000
_MAX_TAG = 64  # a longer user or client id keys its rate by a 16-byte digest

Entity = tuple[tuple[str, str | None], ...]  # sorted (entity type, name or None for the default) pairs


class QuotaError(ValueError):
    """A refused quota entity, filter or value; the text says why (sent as the error message)."""

    def __init__(self, message: str, unsupported: bool = False):
        super().__init__(message)
        self.unsupported = unsupported  # DescribeClientQuotas answers UNSUPPORTED_VERSION for these


def entity(pairs: Iterable[tuple[str, str | None]]) -> Entity:
    return tuple(sorted(pairs, key=lambda p: p[0]))


def user_name(session: Session) -> str:
    """Kafka's quota user is the principal's name (without its type)."""
    return session.principal.name


# -- Kafka's Rate over a SampledStat (WindowedSum) ------------------------------------------------
class Rate:
    """Values recorded in `samples` windows of `window_ms` (plus one overlapping window), measured
    as a per-second rate over the elapsed time, which counts as at least `samples - 1` whole windows
    (Kafka's Rate.windowSize), so the first burst after idle is not measured over a few ms.

    As Kafka since apache/kafka#15889 (May 2024, "Fix rate metric spikes"): a ring of `samples + 1`, a sample
    purged once its last record is `samples` windows old, the window measured from the oldest sample's
    start. (Earlier Kafka kept `samples` and purged by the window start.)"""

    __slots__ = ("samples", "window_ms", "_current", "_starts", "_lasts", "_values", "last_record_ms")

    def __init__(self, samples: int, window_ms: int):
        self.samples, self.window_ms = samples, window_ms
        self._current = 0
        self._starts: list[int] = []
        self._lasts: list[int] = []
        self._values: list[float] = []
        self.last_record_ms = 0

    def record(self, value: float, now_ms: int) -> None:
        if not self._starts:
            self._new(now_ms)
        i = self._current
        if now_ms - self._starts[i] >= self.window_ms:  # the current sample is complete: advance
            i = self._current = (i + 1) % (self.samples + 1)
            if i >= len(self._starts):
                self._new(now_ms)
            else:
                self._reset(i, now_ms)
        self._values[i] += value
        self._lasts[i] = now_ms
        self.last_record_ms = now_ms

    def _new(self, now_ms: int) -> None:
        self._starts.append(now_ms)
        self._lasts.append(now_ms)
        self._values.append(0.0)

    def _reset(self, i: int, now_ms: int) -> None:
        self._starts[i] = self._lasts[i] = now_ms
        self._values[i] = 0.0

    def _purge(self, now_ms: int) -> None:
        expire = self.samples * self.window_ms
        for i, last in enumerate(self._lasts):
            if now_ms - last >= expire:
                self._reset(i, now_ms)

    def window_size_ms(self, now_ms: int) -> int:
        self._purge(now_ms)
        if not self._starts:
            self._new(now_ms)
        elapsed = now_ms - min(self._starts)
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """Per second, over the window."""
        window = self.window_size_ms(now_ms)
        return sum(self._values) / (window / 1000)


# -- stored quotas (user / client-id) ---------------------------------------------------------------
def _encode_key(ent: Entity) -> bytes:
    return KEY_PREFIX + json.dumps([list(p) for p in ent], separators=(",", ":"), ensure_ascii=False).encode()


def _decode_key(key: bytes) -> Entity:
    pairs = json.loads(key[len(KEY_PREFIX):])
    ent = entity((str(t), None if n is None else str(n)) for t, n in pairs)
    check_entity(ent)
    return ent


def check_entity(ent: Entity) -> None:
    """Kafka's ClientQuotaControlManager.validateEntity/configKeysForEntityType for user/client-id
    entities (tenant entities are checked by the handler, ip ones are not supported)."""
    if not ent:
        raise QuotaError("Invalid empty client quota entity")
    seen = set()
    for etype, name in ent:
        if etype in seen:
            raise QuotaError(f"Invalid client quota entity, duplicate entity entry {etype}")
        seen.add(etype)
        if etype == IP:
            raise QuotaError("Unsupported client quota entity type: ip (connection rate quotas are not supported)",
                             unsupported=True)
        if etype not in (USER, CLIENT_ID, TENANT):
            raise QuotaError(f"Unhandled client quota entity type: {etype}", unsupported=True)
        if name is not None:
            if not name:
                raise QuotaError(f"Empty {etype} not supported")
            if len(name) > MAX_ENTITY_NAME:
                raise QuotaError(f"{etype} name longer than {MAX_ENTITY_NAME} characters")
    if TENANT in seen:
        if len(ent) != 1:
            raise QuotaError("Invalid quota entity combination, tenant entity should not be combined with user "
                             "or client-id")
        if ent[0][1] is None:
            raise QuotaError("Default tenant quotas are not supported: name the tenant")


def check_value(key: str, value: float) -> None:
    """Kafka's validateQuotaKeyValue, and finite values only (Kafka lets NaN through)."""
    kind = KEY_TYPES.get(key)
    if kind is None:
        raise QuotaError(f"Invalid configuration key {key}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise QuotaError(f"Quota {key} must be a finite number")
    if value <= 0.0:
        raise QuotaError(f"Quota {key} must be greater than 0")
    if kind == "long":
        if value > LONG_MAX:
            raise QuotaError(f"Proposed value for {key} is too large for a LONG.")
        if abs(value % 1.0) > 1e-6:
            raise QuotaError(f"{key} cannot be a fractional value.")


class QuotaStore:
    """The user/client-id quotas: `load()` replays the metadata log, `alter()` writes it, then memory."""

    def __init__(self, metadata_log):
        self.log = metadata_log
        self._lock = threading.Lock()
        self._quotas: dict[Entity, Mapping[str, float]] = {}
        self._keys: frozenset[str] = frozenset()  # the keys set on any entity (fast "no quotas" test)

    def load(self) -> None:
        quotas: dict[Entity, Mapping[str, float]] = {}
        for key, value in self.log.replay(KEY_PREFIX):
            try:
                ent = _decode_key(key)
                values = {str(k): float(v) for k, v in json.loads(value).items()}
                for k, v in values.items():
                    check_value(k, v)
            except (ValueError, TypeError, AttributeError) as exc:
                log.warning("skipping unreadable quota record %r: %s", key[:200], type(exc).__name__)
                continue
            if values:
                quotas[ent] = MappingProxyType(values)
        self._install(quotas)
        log.info("loaded quotas of %d entities", len(quotas))

    def _install(self, quotas: dict[Entity, Mapping[str, float]]) -> None:
        self._quotas = quotas  # swapped whole: readers on the loop see one version or the other
        self._keys = frozenset(k for values in quotas.values() for k in values)

    def get(self, ent: Entity) -> Mapping[str, float]:
        return self._quotas.get(ent, MappingProxyType({}))

    def items(self) -> list[tuple[Entity, Mapping[str, float]]]:
        return list(self._quotas.items())

    def has(self, key: str) -> bool:
        return key in self._keys

    def alter(self, changes: Mapping[Entity, Mapping[str, float | None]]) -> None:
        """Applies {entity: {key: value, or None to remove}} as one durable batch; checked before."""
        with self._lock:
            quotas = dict(self._quotas)
            records = []
            for ent, ops in changes.items():
                values = dict(quotas.get(ent, {}))
                for key, value in ops.items():
                    if value is None:
                        values.pop(key, None)
                    else:
                        values[key] = float(value)
                if values == dict(quotas.get(ent, {})):
                    continue
                if values:
                    quotas[ent] = MappingProxyType(values)
                    records.append((_encode_key(ent), json.dumps(values, sort_keys=True).encode()))
                else:
                    quotas.pop(ent, None)
                    records.append((_encode_key(ent), None))
            if records:
                self.log.append_many(records)
                self._install(quotas)


# -- the manager --------------------------------------------------------------------------------------
def _precedence(user: str, client_id: str) -> list[tuple[Entity, tuple[str, str]]]:
    """Kafka's DefaultQuotaCallback order: (entity to look up, metric tags (user, client-id) of its rate)."""
    u, c = (USER, user), (CLIENT_ID, client_id)
    du, dc = (USER, None), (CLIENT_ID, None)
    return [
        ((u, c), (user, client_id)),
        ((u, dc), (user, client_id)),
        ((u,), (user, "")),
        ((du, c), (user, client_id)),
        ((du, dc), (user, client_id)),
        ((du,), (user, "")),
        ((c,), ("", client_id)),
        ((dc,), ("", client_id)),
    ]


class QuotaManager:
    """Records usage per quota type and answers throttle times; one per broker (`broker.quotas`)."""

    def __init__(self, config, metadata_log, authorizer: Authorizer | None = None, clock=None):
        self.samples = int(config["quota.window.num"])
        self.window_ms = int(config["quota.window.size.seconds"]) * 1000
        self.store = QuotaStore(metadata_log)
        self.authorizer = authorizer  # resolves a session's tenant; None: no tenant quotas
        self._clock = clock or (lambda: int(time.monotonic() * 1000))
        self._rates: OrderedDict[tuple, Rate] = OrderedDict()  # least recently recorded first
        self._next_sweep = 0

    def load(self) -> None:
        self.store.load()

    def now_ms(self) -> int:
        return self._clock()

    # -- which quota --------------------------------------------------------------------------------
    def tenant_of(self, session: Session) -> Tenant | None:
        """The session's tenant as the authorizer resolves it (None for super users' and others')."""
        if self.authorizer is None:
            return None
        return self.authorizer.tenant_of(session)

    def limit(self, key: str, user: str, client_id: str) -> tuple[float, tuple[str, str]] | None:
        """(quota, metric tags) of the user/client-id quota for `key`, or None when none applies."""
        if not self.store.has(key):
            return None
        for ent, tags in _precedence(user, client_id):
            value = self.store.get(entity(ent)).get(key)
            if value is not None:
                return value, tags
        return None

    def _bounds(self, key: str, session: Session, client_id: str | None) -> list[tuple[tuple, float]]:
        """Every (rate key, quota) that applies to this session for `key`."""
        out = []
        user_limit = self.limit(key, user_name(session), client_id or "")
        if user_limit is not None:
            out.append(((key, "user/client-id", *map(_tag, user_limit[1])), user_limit[0]))
        tenant = self.tenant_of(session)
        if tenant is not None:
            value = tenant.quotas.get(key)
            if value is not None:
                out.append(((key, TENANT, tenant.name), value))  # 3 parts: never a user key
        return out

    def enabled(self, key: str, session: Session) -> bool:
        """Cheap test used on the hot path before anything is measured."""
        if self.store.has(key):
            return True
        tenant = self.tenant_of(session)
        return tenant is not None and key in tenant.quotas

    # -- recording ----------------------------------------------------------------------------------
    def _rate(self, rate_key: tuple, now_ms: int) -> Rate:
        """The rate to record in now: made if missing, moved to the recent end of the LRU order."""
        if now_ms >= self._next_sweep:
            self._sweep(now_ms)
        rates = self._rates
        rate = rates.get(rate_key)
        if rate is None:
            rate = rates[rate_key] = Rate(self.samples, self.window_ms)
            if len(rates) > MAX_RATES:
                rates.popitem(last=False)
        else:
            rates.move_to_end(rate_key)
        return rate

    def _sweep(self, now_ms: int) -> None:
        """Drops the rates idle for SENSOR_EXPIRY_MS (they are the oldest in the LRU order)."""
        self._next_sweep = now_ms + _SWEEP_EVERY_MS
        rates = self._rates
        while rates and now_ms - next(iter(rates.values())).last_record_ms >= SENSOR_EXPIRY_MS:
            rates.popitem(last=False)

    @staticmethod
    def throttle_ms(observed: float, bound: float, window_ms: int, max_ms: int) -> int:
        """Kafka's QuotaUtils.throttleTime: (O - T) / T * W, here bounded by `max_ms`, which a tiny
        quota (request_percentage=1e-310) or an infinite ratio also gets, as Math.round caps in Java."""
        if observed <= bound:
            return 0
        ms = (observed - bound) / bound * window_ms
        return round(ms) if ms < max_ms else max_ms  # False for inf and NaN too

    def record(self, key: str, session: Session, client_id: str | None, value: float,
               now_ms: int | None = None) -> int:
        """Records `value` against every quota of `key` that applies; the throttle time in ms (0 = none)."""
        bounds = self._bounds(key, session, client_id)
        if not bounds:
            return 0
        now = self.now_ms() if now_ms is None else now_ms
        max_ms = self.window_ms if key == REQUEST else self.samples * self.window_ms
        throttle = 0
        for rate_key, bound in bounds:
            rate = self._rate(rate_key, now)
            rate.record(value, now)
            window = rate.window_size_ms(now)
            throttle = max(throttle, self.throttle_ms(rate.measure(now), bound, window, max_ms))
        return throttle

    def max_value_in_window(self, key: str, session: Session, client_id: str | None) -> float:
        """Kafka's getMaxValueInQuotaWindow: the most that can be recorded without certain throttling
        (caps a consumer's fetch size); infinity without a quota."""
        bounds = self._bounds(key, session, client_id)
        if not bounds:
            return math.inf
        return min(b for _, b in bounds) * (self.samples - 1) * self.window_ms / 1000


def _tag(name: str) -> str | bytes:
    """A rate key part: the name, or a 16-byte digest of a long one (a client id may be 32 KiB)."""
    if len(name) <= _MAX_TAG:
        return name
    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# -- request_percentage: time each step of a handler on the event loop --------------------------------
class TimedCoroutine:
    """Awaits a coroutine while adding up the time each of its steps runs on the event loop (not the
    time it waits, e.g. a long-polling fetch parked until data arrives): Kafka's request-handler time."""

    __slots__ = ("coro", "ns")

    def __init__(self, coro):
        self.coro, self.ns = coro, 0

    def __await__(self):
        coro, clock = self.coro, time.perf_counter_ns
        value, error = None, None
        while True:
            started = clock()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.ns += clock() - started
                return stop.value
            except BaseException:
                self.ns += clock() - started
                raise
            self.ns += clock() - started
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001  (cancellation and the like go into the coroutine)
                value, error = None, exc


def nanos_to_percentage(ns: int) -> float:
    """Kafka's ClientRequestQuotaManager.nanosToPercentage: time as a rate in percent per second."""
    return ns * 100.0 / 1e9
