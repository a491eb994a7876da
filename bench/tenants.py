"""The `tenants` phase: what a noisy neighbour does to another tenant, and what quota accounting costs
a client that has no quota.

noisy: one Keystream with an mTLS SSL listener and the gRPC admin API; tenant acme (producer_byte_rate
`--tenants-quota`, 1 MB/s) and tenant globex (no quota) are made through TenantService. globex produces
100 records/s of 200 B (acks=-1, linger.ms=0) alone for a quarter of `--tenants-seconds`, then beside
acme, which produces 10 kB records flat out (a 2 MiB local queue, so its closing flush is short).
Reported: acme's throughput / quota over the whole loaded run and over its second half (the first
window's burst allowance is in the whole-run figure), its throttle times (librdkafka statistics),
globex's p50/p99 delivery latency (produce() to delivery report) alone and beside acme, and broker CPU
per MB acknowledged while both ran. Kafka's quota windows (11 x 1 s) unless --keystream-prop says else.

hotpath: a client with no quota (PLAINTEXT, User:ANONYMOUS, no tenant) produces and consumes 2,000,000
100 B records (acks=1, 1 partition; `--records`) on this tree's Keystream and, with `--tenants-baseline DIR` (a source
tree, e.g. `git archive 8b61bfe | tar -x -C DIR`), on that tree's Keystream, run with PYTHONPATH so
the installed (editable) Keystream is not used; the two alternate, order flipped on each repeat.

tansu 0.6.0 has no client quotas and no tenants, so this phase is Keystream only.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
from confluent_kafka import Producer

from bench import brokers as launch
from bench import consume, produce, topics
from bench.brokers import Broker, BrokerError
from bench.meter import Meter
from bench.session import Session, guarded
from bench.stats import percentile, summarize

PHASES = ("tenants", "hotpath")
NOTE = "tansu 0.6.0 has no client quotas or tenants: Keystream only"
GLOBEX_RATE, GLOBEX_VALUE, ACME_VALUE = 100, 200, 10_000
HOT_SIZE = 100
ROOTS = ("broker", "auth", "certs", "registry")


# -- brokers --------------------------------------------------------------------------------------------
def tenant_broker(workdir: Path, extra: dict[str, str]) -> tuple[Broker, dict[str, dict[str, str]], tuple]:
    """Keystream over mTLS with admin.listener; client settings for bench (super user), acme and globex."""
    from keystream.certs import init_ca, issue

    pki = workdir / "keystream-tenants" / "pki"
    ca = init_ca(pki / "ca", common_name="Keystream bench CA")
    server = issue(ca.dir, "broker", out_dir=pki, server=True, sans=["DNS:localhost", "IP:127.0.0.1"])
    ids = {n: issue(ca.dir, n, out_dir=pki, client=True, common_name=n) for n in ("bench", "acme-app", "globex-app")}
    admin_port = launch.free_port()
    props = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(server.pem),
             "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.cert),
             "ssl.client.auth": "required", "super.users": "User:CN=bench",
             "admin.listener": f"127.0.0.1:{admin_port}", **extra}

    def conf(n: str) -> dict[str, str]:
        return {"security.protocol": "SSL", "ssl.ca.location": str(ca.cert),
                "ssl.certificate.location": str(ids[n].cert), "ssl.key.location": str(ids[n].key)}

    broker = launch.keystream(workdir, 0, props, conf("bench"), scheme="SSL", name="keystream-tenants")
    grpc_creds = (ca.cert.read_bytes(), ids["bench"].key.read_bytes(), ids["bench"].cert.read_bytes())
    return broker, {n: conf(n) for n in ("acme-app", "globex-app")}, (f"127.0.0.1:{admin_port}", grpc_creds)


def create_tenants(admin: tuple, quota: float, timeout: float = 15.0) -> None:
    from keystream.broker.admin.v1 import admin_pb2 as pb
    from keystream.broker.admin.v1 import admin_pb2_grpc as rpc

    target, (root, key, chain) = admin
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    with grpc.secure_channel(target, creds) as ch:
        stub = rpc.TenantServiceStub(ch)
        stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="acme", members=["User:CN=acme-app"], quotas={"producer_byte_rate": quota})), timeout=timeout)
        stub.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
            name="globex", members=["User:CN=globex-app"])), timeout=timeout)


def baseline_broker(workdir: Path, source: Path, extra: dict[str, str]) -> Broker:
    """Keystream from another source tree: a namespace view (keystream/ + broker, auth, ...) on PYTHONPATH
    ahead of the editable install's finder."""
    site = workdir / "baseline-site" / "keystream"
    site.mkdir(parents=True)
    for entry in (source / "keystream").iterdir():
        (site / entry.name).symlink_to(entry)
    for root in ROOTS:
        (site / root).symlink_to(source / root)
    broker = launch.keystream(workdir, 0, extra, name="keystream-baseline")
    broker.argv = ["env", f"PYTHONPATH={site.parent}", *broker.argv]  # env execs: the PID is the broker's
    broker.source = str(source)
    return broker


# -- noisy neighbour ------------------------------------------------------------------------------------
class Acme(threading.Thread):
    """Flat out until stopped; delivery times and librdkafka's throttle windows recorded."""

    def __init__(self, conf: dict, topic: str):
        super().__init__(daemon=True)
        self.topic, self.sent, self.errors = topic, 0, []
        self.acked: list[float] = []  # monotonic time of each delivery report
        self.throttle_max: list[tuple[float, int]] = []
        self.throttle_avg: list[int] = []
        self.stop = threading.Event()
        self.p = Producer({**conf, "acks": "all", "linger.ms": 5, "queue.buffering.max.kbytes": 2048,
                           "message.timeout.ms": 300000, "statistics.interval.ms": 500, "stats_cb": self._stats})

    def _stats(self, text: str) -> None:
        windows = [b.get("throttle") or {} for b in json.loads(text).get("brokers", {}).values()]
        self.throttle_max.append((time.monotonic(), max((w.get("max", 0) for w in windows), default=0)))
        self.throttle_avg += [w["avg"] for w in windows if w.get("cnt") and w.get("avg")]

    def _report(self, err, _msg) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append(time.monotonic())

    def run(self) -> None:
        value = b"a" * ACME_VALUE
        while not self.stop.is_set():
            try:
                self.p.produce(self.topic, value=value, on_delivery=self._report)
                self.sent += 1
            except BufferError:
                self.p.poll(0.05)
            self.p.poll(0)
        self.p.flush(120)
        self.p.poll(0.6)
        self.p = None  # the producer and its callbacks hold each other: let it go before the broker stops


def paced(conf: dict, topic: str, seconds: float) -> tuple[list[float], int, list[str]]:
    """GLOBEX_RATE records/s for `seconds`; (latencies in ms, records sent, errors)."""
    p = Producer({**conf, "acks": "all", "linger.ms": 0, "message.timeout.ms": 60000})
    latencies: list[float] = []
    errors: list[str] = []

    def report(err, started):
        if err is not None:
            errors.append(str(err))
        else:
            latencies.append((time.monotonic() - started) * 1000)

    begin, n = time.monotonic(), int(seconds * GLOBEX_RATE)
    for i in range(n):
        due = begin + i / GLOBEX_RATE
        while (left := due - time.monotonic()) > 0:
            p.poll(left)
        started = time.monotonic()
        p.produce(topic, b"g" * GLOBEX_VALUE, on_delivery=lambda err, _m, s=started: report(err, s))
    unflushed = p.flush(60)
    if unflushed:
        errors.append(f"{unflushed} records unacknowledged")
    return latencies, n, errors


def noisy_run(broker: Broker, confs: dict, quota: float, seconds: float) -> dict:
    globex = broker.client_config(**confs["globex-app"])
    alone, alone_n, errors = paced(globex, "globex.orders", seconds / 4)
    acme = Acme(broker.client_config(**confs["acme-app"]), "acme.load")
    meter = Meter(broker)
    meter.begin()
    started = time.monotonic()
    acme.start()
    beside, beside_n, more = paced(globex, "globex.orders", seconds)
    acme.stop.set()
    acme.join(180)
    result = meter.end()
    elapsed = time.monotonic() - started
    errors += more + acme.errors
    half = started + seconds / 2
    late_bytes = sum(1 for t in acme.acked if half <= t < started + seconds) * ACME_VALUE
    acked_bytes = len(acme.acked) * ACME_VALUE + len(beside) * GLOBEX_VALUE
    late_throttles = [ms for t, ms in acme.throttle_max if half <= t < started + seconds]
    result.update(
        seconds=elapsed, records=len(acme.acked) + len(beside), bytes=acked_bytes,
        acme_ratio=len(acme.acked) * ACME_VALUE / elapsed / quota,
        acme_late_ratio=late_bytes / (seconds / 2) / quota,
        throttle_max_ms=max((ms for _, ms in acme.throttle_max), default=0),
        throttle_avg_ms=sum(acme.throttle_avg) / len(acme.throttle_avg) if acme.throttle_avg else 0,
        throttled_late=max(late_throttles, default=0) > 0,
        globex_alone_p50_ms=percentile(alone, 50), globex_alone_p99_ms=percentile(alone, 99),
        globex_beside_p50_ms=percentile(beside, 50), globex_beside_p99_ms=percentile(beside, 99),
        broker_cpu_s_per_mb=result["broker_cpu_s"] / (acked_bytes / 1e6),
        complete=not errors and len(alone) == alone_n and len(beside) == beside_n and len(acme.acked) == acme.sent)
    if errors:
        result["first_error"] = errors[0]
    return result


def noisy(session: Session) -> None:
    a = session.args
    extra = dict(a.keystream_prop)
    broker, confs, admin = tenant_broker(session.workdir, extra)
    session.info[broker.name] = {"argv": broker.argv, "port": broker.port, "props": extra, "note": NOTE}
    try:
        broker.start()
        create_tenants(admin, a.tenants_quota)
        for topic in ("acme.load", "globex.orders"):
            topics.create(broker, topic, 1)
    except Exception as exc:  # a failed set-up is reported, never a crashed run
        session.info[broker.name]["start_error"] = f"{type(exc).__name__}: {exc}"
        broker.stop()
        return
    label = f"acme {a.tenants_quota / 1e6:g} MB/s quota, {a.tenants_seconds:g} s"
    params = {"quota": a.tenants_quota, "seconds": a.tenants_seconds}
    try:
        for _ in range(a.repeats):
            sample = guarded(broker, noisy_run, broker, confs, a.tenants_quota, a.tenants_seconds)
            session.record("tenants noisy", "tenants", label, params, "keystream", sample)
    finally:
        _stop(session, broker)


def _stop(session: Session, broker: Broker) -> None:
    info = session.info[broker.name]
    if broker.alive():
        info["peak_rss_mib"] = broker.peak_rss_mib()
    info["exit_code"] = broker.stop()


# -- hot path without quotas ----------------------------------------------------------------------------
def _hot_run(broker: Broker, records: int, timeout: float) -> tuple[dict, dict]:
    topic = topics.unique_name("hot")
    topics.create(broker, topic, 1)
    try:
        out = produce.run(broker, topic, records, HOT_SIZE, 1, 1, "none", timeout)
        back = consume.run(broker, topic, records, HOT_SIZE, 1, timeout) if out.get("complete") else \
            {"complete": False, "first_error": "produce failed"}
    finally:
        topics.delete(broker, topic)
    return out, back


def hot_path(session: Session) -> None:
    a = session.args
    extra = dict(a.keystream_prop)
    brokers = [launch.keystream(session.workdir, 0, extra, name="keystream-hot")]
    if a.tenants_baseline:
        brokers.append(baseline_broker(session.workdir, a.tenants_baseline.resolve(), extra))
    records = a.records or (20_000 if a.quick else 2_000_000)
    try:
        for b in brokers:
            session.info[b.name] = {"argv": b.argv, "port": b.port, "source": getattr(b, "source", None)}
            try:
                b.start()
            except BrokerError as exc:
                session.info[b.name]["start_error"] = str(exc)
                b.stop()
                b.proc = None
        for repeat in range(a.repeats):
            for b in brokers if repeat % 2 == 0 else brokers[::-1]:
                if b.proc is None:
                    fail = {"complete": False, "first_error": f"{b.name} did not start"}
                    out, back = fail, fail
                else:
                    try:
                        b.check_alive()
                        out, back = _hot_run(b, records, a.phase_timeout)
                    except Exception as exc:
                        out = back = {"complete": False, "first_error": f"{type(exc).__name__}: {exc}"}
                series = "baseline" if b.name == "keystream-baseline" else "keystream"
                params = {"size": HOT_SIZE, "acks": 1, "partitions": 1, "records": records}
                session.record("hotpath produce", "hotpath", f"produce {HOT_SIZE}B acks=1 p=1", params, series, out)
                session.record("hotpath consume", "hotpath", f"consume {HOT_SIZE}B p=1", params, series, back)
    finally:
        for b in brokers:
            if b.proc is not None:
                _stop(session, b)


def phase(session: Session) -> None:
    noisy(session)
    hot_path(session)


# -- summaries ------------------------------------------------------------------------------------------
NOISY_METRICS = ("acme_ratio", "acme_late_ratio", "throttle_avg_ms", "throttle_max_ms", "globex_alone_p50_ms",
                 "globex_alone_p99_ms", "globex_beside_p50_ms", "globex_beside_p99_ms", "broker_cpu_s_per_mb")
HOT_METRICS = {
    "records_per_s": lambda s: s["records"] / s["seconds"],
    "records_per_cpu_s": lambda s: s["records"] / s["broker_cpu_s"] if s.get("broker_cpu_s") else None,
}


def summarize_row(row: dict) -> None:
    def metric(s: dict, m: str):
        return HOT_METRICS[m](s) if m in HOT_METRICS else s.get(m)

    metrics = NOISY_METRICS if row["phase"] == "tenants" else tuple(HOT_METRICS)
    row["summary"] = {series: {m: summarize([metric(s, m) for s in samples if s.get("complete")]) for m in metrics}
                      for series, samples in row["samples"].items()}


def _med(row: dict, series: str, metric: str) -> float | None:
    s = row.get("summary", {}).get(series, {}).get(metric)
    return s["median"] if s else None


def lines(rows: list[dict], info: dict) -> list[str]:
    out: list[str] = []
    for row in (r for r in rows if r["phase"] == "tenants"):
        def m(name, row=row):
            v = _med(row, "keystream", name)
            return float("nan") if v is None else v
        out += ["", f"TENANTS: noisy neighbour ({NOTE}), {row['label']}, medians of {len(row['samples']['keystream'])}",
                f"  acme throughput / quota: x{m('acme_ratio'):.2f} whole run, x{m('acme_late_ratio'):.2f} second half",
                f"  acme throttle (librdkafka statistics): avg {m('throttle_avg_ms'):.0f} ms, max {m('throttle_max_ms'):.0f} ms",
                f"  globex delivery latency alone: p50 {m('globex_alone_p50_ms'):.1f} ms, p99 {m('globex_alone_p99_ms'):.1f} ms",
                f"  globex beside acme:            p50 {m('globex_beside_p50_ms'):.1f} ms, "
                f"p99 {m('globex_beside_p99_ms'):.1f} ms",
                f"  broker CPU per MB acknowledged (both tenants, mTLS): {m('broker_cpu_s_per_mb') * 1000:.0f} ms"]
    hot = [r for r in rows if r["phase"] == "hotpath"]
    if hot:
        base = "baseline" in {s for r in hot for s in r["samples"]}
        source = info.get("keystream-baseline", {}).get("source")
        out += ["", "HOT PATH without quotas (PLAINTEXT, no tenant, no quota set): this tree vs "
                + (f"the Keystream of {source} (x = this / that)" if base else "nothing (no --tenants-baseline)")]
        for row in hot:
            cells = []
            for metric in HOT_METRICS:
                k, b = _med(row, "keystream", metric), _med(row, "baseline", metric)
                cell = f"{metric} {k:,.0f}" if k else f"{metric} n/a"
                if base and k and b:
                    cell += f" vs {b:,.0f} (x{k / b:.3f})"
                cells.append(cell)
            out.append(f"  {row['label']:<24} " + "; ".join(cells))
    return out

