"""Per-tenant usage (bytes in/out, throttle time, refusals, storage, partitions) and the tenant limits
it feeds: `max_partitions` on topic creation and growth, `max_storage_bytes` on produce.

Who is counted where:
- bytes in/out, throttle time: the tenant of the *session* (super users belong to none);
- storage, partitions, and the limits on them: the tenant of the *topic* (the one whose prefix its name
  starts with), whoever produces or creates, super users included: the limits belong to the namespace;
- refusals: the session's tenant for authorization denials (Authorizer.on_tenant_denial), the topic's
  tenant for limit refusals.

Storage and partitions of every tenant are counted in one pass over the topic table, grouping topics
by the name up to the first dot, at most every REFRESH_S (that is how retention, DeleteRecords and
compaction are seen); storage adds the batch bytes appended since; never a per-record cost. The
partition limit counts the tenant's partitions afresh at each check, and the callers check and create
with no await between, so two creates on the event loop cannot both pass.

Names outside every namespace that could collide with one (`acme_x` with tenant `acme`: Kafka refuses
topics whose names differ only by '.' vs '_') are refused to everyone, so no topic outside a tenant can
stand in the way of (and be revealed by) a member's `acme.x`.

With no tenant defined every hook costs one `len()` of the tenant table.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

from keystream.broker.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from keystream.auth.principal import Session
    from keystream.auth.tenants import Tenant

REFRESH_S = 0.3  # longest a storage figure goes without a recount from the segment sizes
_IN, _OUT, _THROTTLE, _REJECTED = range(4)


@dataclass(frozen=True)
class UsageSnapshot:
    bytes_in: int            # record-batch bytes produced by the tenant's sessions (accepted)
    bytes_out: int           # record bytes fetched by the tenant's sessions
    throttle_ms: int         # total throttle time answered to the tenant's sessions
    rejected_requests: int   # requests/partitions refused: authorization denials, limits, storage
    storage_bytes: int       # bytes on disk of the tenant's partitions (topics under its prefix)
    partitions: int          # partitions of the tenant's topics


def partition_limit_message(tenant: Tenant, has: int, asked: int) -> str:
    return f"tenant {tenant.name} may have at most {tenant.max_partitions} partitions (has {has}, asked for {asked})"


def storage_limit_message(tenant: Tenant) -> str:
    return f"tenant {tenant.name} has reached its storage limit of {tenant.max_storage_bytes} bytes"


class TenantUsage:
    """One per broker (`broker.tenant_usage`); every method runs on the event loop unless it says otherwise."""

    def __init__(self, logs, tenants, authorizer=None, clock=time.monotonic):
        self.logs = logs
        self.tenants = tenants
        self.authorizer = authorizer
        self._clock = clock
        self._counts: dict[str, list[int]] = {}
        # The last count: (monotonic time, {tenant name: [partitions, bytes]}); swapped whole.
        self._counted: tuple[float, dict[str, list[int]]] | None = None
        if authorizer is not None:
            authorizer.on_tenant_denial = self._denied
        _LIVE.add(self)

    def close(self) -> None:
        """Stops exporting this broker's figures (its broker stopped)."""
        _LIVE.discard(self)
        if self.authorizer is not None and self.authorizer.on_tenant_denial == self._denied:
            self.authorizer.on_tenant_denial = None

    # -- whose ------------------------------------------------------------------------------------
    def active(self) -> bool:
        """The one check on the hot path: any tenant defined at all."""
        return self.tenants is not None and len(self.tenants) > 0

    def session_tenant(self, session: Session) -> Tenant | None:
        if not self.active() or self.authorizer is None:
            return None
        return self.authorizer.tenant_of(session)

    def topic_tenant(self, topic: str) -> Tenant | None:
        """The tenant owning the topic name (tenant names hold no dot: the name up to the first dot)."""
        if not self.active():
            return None
        dot = topic.find(".")
        return self.tenants.get(topic[:dot]) if dot > 0 else None

    def check_name(self, topic: str) -> None:
        """POLICY_VIOLATION for a new topic outside every namespace whose name could collide with one
        (`<tenant>_...`). Only principals of no tenant get here (members may create only inside their
        namespace), so naming the tenant reveals nothing to a member."""
        if not self.active():
            return
        cut = topic.find("_")
        if cut > 0 and "." not in topic[:cut] and self.tenants.get(topic[:cut]) is not None:
            raise KafkaError(ErrorCode.POLICY_VIOLATION, f"Topic names starting '{topic[:cut]}_' are reserved: "
                             f"they could collide with the namespace '{topic[:cut]}.' of tenant {topic[:cut]}.")

    # -- partitions ---------------------------------------------------------------------------------
    def partitions(self, name: str) -> int:
        """The tenant's partitions now (for the limit; the figures use the periodic count)."""
        prefix = name + "."
        return sum(len(t.partitions) for n, t in list(self.logs.topics.items()) if n.startswith(prefix))

    def check_partitions(self, topic: str, adding: int, pending: dict[str, int] | None = None) -> None:
        """POLICY_VIOLATION when `adding` partitions to `topic` would take its tenant past max_partitions.

        `pending` carries partitions a validate_only request has already "created" in the same
        request, so its answers match those of the real request.
        """
        tenant = self.topic_tenant(topic)
        if tenant is None or tenant.max_partitions is None:
            return
        has = self.partitions(tenant.name) + (pending.get(tenant.name, 0) if pending else 0)
        if has + adding > tenant.max_partitions:
            self.rejected(tenant.name)
            raise KafkaError(ErrorCode.POLICY_VIOLATION, partition_limit_message(tenant, has, adding))
        if pending is not None:
            pending[tenant.name] = pending.get(tenant.name, 0) + adding

    # -- storage ----------------------------------------------------------------------------------
    def _count(self) -> dict[str, list[int]]:
        """{tenant name: [partitions, bytes]} for every tenant with topics, recounted every REFRESH_S."""
        counted, now = self._counted, self._clock()
        if counted is not None and now - counted[0] < REFRESH_S:
            return counted[1]
        rows: dict[str, list[int]] = {}
        tenants = self.tenants
        for name, topic in list(self.logs.topics.items()):
            dot = name.find(".")
            if dot <= 0:
                continue
            row = rows.get(name[:dot])
            if row is None:
                if tenants.get(name[:dot]) is None:
                    continue
                row = rows[name[:dot]] = [0, 0]
            parts = list(topic.partitions)
            row[0] += len(parts)
            row[1] += sum(p.size_bytes for p in parts)
        self._counted = (now, rows)
        return rows

    def storage_bytes(self, name: str) -> int:
        row = self._count().get(name)
        return row[1] if row is not None else 0

    def check_storage(self, tenant: Tenant) -> None:
        """POLICY_VIOLATION once the tenant's storage is at or over max_storage_bytes (call only when set)."""
        if self.storage_bytes(tenant.name) >= tenant.max_storage_bytes:
            self.rejected(tenant.name)
            raise KafkaError(ErrorCode.POLICY_VIOLATION, storage_limit_message(tenant))

    def appended(self, name: str, nbytes: int) -> None:
        """Adds to the last count until the next (a tenant whose first topic came since has no row yet)."""
        counted = self._counted
        if counted is not None:
            counted[1].setdefault(name, [0, 0])[1] += nbytes

    def invalidate(self, name: str) -> None:
        """Recount at the next look (a topic of tenant `name` was deleted)."""
        self._counted = None

    # -- counters ---------------------------------------------------------------------------------
    def _add(self, name: str, which: int, value: int) -> None:
        counts = self._counts.get(name)
        if counts is None:
            counts = self._counts[name] = [0, 0, 0, 0]
        counts[which] += value

    def bytes_in(self, tenant: Tenant, nbytes: int) -> None:
        self._add(tenant.name, _IN, nbytes)

    def bytes_out(self, tenant: Tenant, nbytes: int) -> None:
        self._add(tenant.name, _OUT, nbytes)

    def throttled(self, session: Session, ms: int) -> None:
        tenant = self.session_tenant(session)
        if tenant is not None:
            self._add(tenant.name, _THROTTLE, ms)

    def rejected(self, name: str) -> None:
        self._add(name, _REJECTED, 1)

    def _denied(self, session: Session, tenant: Tenant) -> None:
        self._add(tenant.name, _REJECTED, 1)

    # -- reading ----------------------------------------------------------------------------------
    def _prune(self) -> None:
        """Drops the figures of deleted tenants (their metric labels go with them)."""
        for name in [n for n in self._counts if self.tenants.get(n) is None]:
            self._counts.pop(name, None)

    def snapshot(self, tenant_name: str) -> UsageSnapshot:
        """Safe from any thread (figures may lag the loop by a request, storage and partitions by
        REFRESH_S)."""
        self._prune()
        return self._snapshot(tenant_name, self._count())

    def _snapshot(self, name: str, counted: dict[str, list[int]]) -> UsageSnapshot:
        counts = self._counts.get(name, (0, 0, 0, 0))
        partitions, storage = counted.get(name, (0, 0))
        return UsageSnapshot(counts[_IN], counts[_OUT], counts[_THROTTLE], counts[_REJECTED], storage, partitions)

    def snapshots(self) -> dict[str, UsageSnapshot]:
        if self.tenants is None:
            return {}
        self._prune()
        counted = self._count()
        return {t.name: self._snapshot(t.name, counted) for t in self.tenants.all()}


# -- prometheus-client: one collector for every live TenantUsage, labels only for existing tenants ------
_LIVE: weakref.WeakSet[TenantUsage] = weakref.WeakSet()
_METRICS = (
    ("keystream_tenant_bytes_in", "counter", "Record-batch bytes produced by the tenant's sessions", "bytes_in"),
    ("keystream_tenant_bytes_out", "counter", "Record bytes fetched by the tenant's sessions", "bytes_out"),
    ("keystream_tenant_throttle_ms", "counter", "Throttle time answered to the tenant's sessions", "throttle_ms"),
    ("keystream_tenant_rejected_requests", "counter", "Requests and partitions refused to the tenant",
     "rejected_requests"),
    ("keystream_tenant_storage_bytes", "gauge", "Bytes on disk of the tenant's partitions", "storage_bytes"),
    ("keystream_tenant_partitions", "gauge", "Partitions of the tenant's topics", "partitions"),
)

class _Collector:
    def _families(self):
        return {name: (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, doc, labels=["tenant"])
                for name, kind, doc, _ in _METRICS}

    def describe(self):
        return list(self._families().values())

    def collect(self):
        families = self._families()
        totals: dict[str, dict[str, int]] = {}
        for usage in list(_LIVE):
            for tenant, snap in usage.snapshots().items():
                row = totals.setdefault(tenant, dict.fromkeys((f for *_, f in _METRICS), 0))
                for field in row:
                    row[field] += getattr(snap, field)
        for name, _, _, field in _METRICS:
            for tenant, row in sorted(totals.items()):
                families[name].add_metric([tenant], row[field])
        return list(families.values())

REGISTRY.register(_Collector())
