"""The `schema` phase: what broker-side Avro validation costs, and how fast the registry answers.

One Keystream broker validating against one Keystream registry (bench.schema_stack). Per record size
and repeat, in alternating order: confluent-kafka produces the same pre-serialized Confluent-framed
Avro records to a topic with confluent.value.schema.validation=true and to a topic without it on the
same broker (broker CPU from /proc), and a bare fastavro schemaless_reader loop decodes them in this
process (time.process_time). Then, once per repeat, an aiohttp client with CONCURRENCY requests in
flight hammers GET /schemas/ids/{id} and POST /subjects/{s}/versions of an already-registered schema
for a fixed time (registry CPU from /proc). tansu validates nothing, so the peer is this broker's own
unvalidated topic.
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import time
from io import BytesIO

import aiohttp
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from fastavro import schemaless_reader

from bench import procstat, schema_records, schema_stack, topics
from bench.brokers import Broker, BrokerError
from bench.meter import Meter
from bench.produce import BATCH_BYTES, LINGER_MS, producer_config
from bench.session import Session, guarded

CONCURRENCY = 32
WARMUP_RECORDS = 2000  # per topic, before timing: the broker fetches the schema and admits the subject
VALIDATE = {"confluent.value.schema.validation": "true"}
LOOKUP_SUBJECT = "bench-lookup-value"


def records_for(args, size: int, kind: str) -> int:
    """Enough for ~2 s of the validating broker's CPU; the plain topic gets the produce phase's counts,
    as it spends ~1/70 of that CPU per record."""
    if args.schema_records:
        return args.schema_records
    if args.quick:
        return 20_000
    if kind == "plain":
        return 1_000_000 if size <= 100 else 300_000
    return 300_000 if size <= 100 else 50_000


def create_topic(broker: Broker, name: str, config: dict[str, str], timeout: float = 15.0) -> None:
    """One partition, with `config`; waits until metadata shows its leader."""
    admin = broker.admin()
    admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=timeout)[name].result(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if meta and meta.error is None and meta.partitions and meta.partitions[0].leader >= 0:
            return
        time.sleep(0.05)  # polling a condition under a deadline
    raise TimeoutError(f"topic {name} has no leader after {timeout:.0f}s")


def produce(broker: Broker, topic: str, values: tuple[bytes, ...], records: int, timeout: float) -> dict:
    """Warm up, then produce `records` of `values` (acks=1, linger.ms=5, 1 MiB batches) timed to the last ack."""
    errors: list[str] = []

    def on_error(err, _msg) -> None:
        errors.append(str(err))

    producer = Producer(producer_config(broker, 1, "none", on_error))
    n = len(values)
    deadline = time.monotonic() + timeout

    def push(count: int) -> int:
        sent = 0
        while sent < count and time.monotonic() < deadline:
            try:
                producer.produce(topic, values[sent % n], partition=0)
                sent += 1
            except BufferError:
                producer.poll(0.001)
        return sent - producer.flush(max(0.0, deadline - time.monotonic()))

    if push(WARMUP_RECORDS) != WARMUP_RECORDS or errors:
        return {"complete": False, "first_error": errors[0] if errors else "warm-up not acknowledged"}
    meter = Meter(broker)
    meter.begin()
    acked = push(records) - len(errors)
    result = meter.end()
    result.update(records=acked, bytes=acked * len(values[0]), requested=records, errors=len(errors),
                  complete=acked == records and not errors)
    if errors or acked != records:
        result["first_error"] = errors[0] if errors else f"{records - acked} records unacknowledged at deadline"
    return result


def decode_loop(values: tuple[bytes, ...], records: int) -> dict:
    """fastavro's schemaless_reader on each framed value after its 5-byte header, nothing else."""
    schema = schema_records.parsed_schema()
    n = len(values)
    cpu0, wall0 = time.process_time(), time.monotonic()
    for i in range(records):
        bio = BytesIO(values[i % n])
        bio.seek(5)
        schemaless_reader(bio, schema)
    return {"records": records, "cpu_s": time.process_time() - cpu0, "seconds": time.monotonic() - wall0,
            "complete": True}


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _hammer(url: str, context: ssl.SSLContext, method: str, body: bytes | None, seconds: float) -> dict:
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"} if body else {}
    bad: list[str] = []
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY)) as http:
        async def worker(until: float) -> None:
            nonlocal done
            while time.monotonic() < until:
                async with http.request(method, url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
                    elif len(bad) < 5:
                        bad.append(f"{method} {url} answered {resp.status}: {(await resp.text())[:200]}")
        await asyncio.gather(*(worker(time.monotonic() + 0.3) for _ in range(CONCURRENCY)))  # connect, warm
        done, bad[:] = 0, []
        start = time.monotonic()
        await asyncio.gather(*(worker(start + seconds) for _ in range(CONCURRENCY)))
    return {"requests": done, "failed": len(bad), "first_error": bad[0] if bad else None}


def lookup_load(registry: schema_stack.Registry, method: str, path: str, body: bytes | None,
                seconds: float) -> dict:
    """CONCURRENCY requests in flight for `seconds`; registry CPU from /proc, this process's from rusage."""
    before, client0, wall0 = procstat.cpu_sample(registry.pid), _client_cpu(), time.monotonic()
    out = asyncio.run(_hammer(registry.url + path, registry.context, method, body, seconds))
    wall = time.monotonic() - wall0
    cpu, clock = procstat.cpu_delta(before, procstat.cpu_sample(registry.pid))
    out.update(seconds=wall, registry_cpu_s=cpu, registry_cpu_clock=clock, client_cpu_s=_client_cpu() - client0,
               complete=not out["failed"] and out["requests"] > 0)
    if out["first_error"] is None:
        del out["first_error"]
    return out


def phase(s: Session) -> None:
    """Start the stack, run every repeat, stop it; failures become failed samples, never a crash."""
    a = s.args
    broker, registry = schema_stack.build(s.workdir)
    info = s.info[schema_stack.NAME] = {"argv": broker.argv, "port": broker.port,
                                        "registry_argv": registry.argv, "registry_port": registry.port,
                                        "schema": schema_records.ORDER_SCHEMA}
    try:
        broker.start()
        registry.start()
        print(f"started {schema_stack.NAME} pid {broker.pid} on {broker.bootstrap}, registry pid {registry.pid} "
              f"on {registry.url}", flush=True)
        schema_id = registry.register(LOOKUP_SUBJECT, schema_records.ORDER_SCHEMA)
        for repeat in range(a.repeats):
            print(f"schema repeat {repeat + 1}/{a.repeats}", flush=True)
            for size in a.sizes:
                _produce_cell(s, broker, registry, schema_id, size, repeat)
            _lookup_cell(s, registry, schema_id)
    except BrokerError as exc:
        info["start_error"] = str(exc)
        print(f"FAILED schema phase: {exc}", flush=True)
    finally:
        info["registry_peak_rss_mib"] = registry.peak_rss_mib() if registry.alive() else None
        info["peak_rss_mib"] = broker.peak_rss_mib() if broker.alive() else None
        info["registry_exit_code"] = registry.stop()
        info["exit_code"] = broker.stop()


def _produce_cell(s: Session, broker: Broker, registry: schema_stack.Registry, schema_id: int, size: int,
                  repeat: int) -> None:
    a = s.args
    values = schema_records.framed(size, schema_id)
    label = f"{size}B acks=1 p=1"
    kinds = ["validating", "plain", "decode"]
    params = {"size": size, "records": {k: records_for(a, size, k) for k in kinds}, "acks": 1, "partitions": 1,
              "linger_ms": LINGER_MS, "batch_bytes": BATCH_BYTES, "schema_id": schema_id}
    for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
        records = params["records"][kind]
        if kind == "decode":
            record(s, "schema", label, params, kind, decode_loop(values, records))
            continue
        topic = topics.unique_name(f"schema-{kind}")

        def go(topic=topic, kind=kind, records=records) -> dict:
            create_topic(broker, topic, VALIDATE if kind == "validating" else {})
            if kind == "validating":  # TopicNameStrategy: the same schema (same id) under the topic's subject
                registry.register(f"{topic}-value", schema_records.ORDER_SCHEMA)
            return produce(broker, topic, values, records, a.phase_timeout)

        record(s, "schema", label, params, kind, guarded(broker, go))
        if broker.alive():
            topics.delete(broker, topic)


def _lookup_cell(s: Session, registry: schema_stack.Registry, schema_id: int) -> None:
    seconds = s.args.schema_seconds
    register = schema_records.ORDER_SCHEMA
    cases = [("GET /schemas/ids/{id}", "GET", f"/schemas/ids/{schema_id}", None),
             ("POST /subjects/{s}/versions (existing)", "POST", f"/subjects/{LOOKUP_SUBJECT}/versions",
              json.dumps({"schema": register}).encode())]
    for label, method, path, body in cases:
        params = {"concurrency": CONCURRENCY, "seconds": seconds, "path": path}
        record(s, "registry", label, params, schema_stack.REGISTRY,
               guarded(registry, lookup_load, registry, method, path, body, seconds))



def record(s: Session, phase: str, label: str, params: dict, series: str, sample: dict) -> None:
    """Into the session's rows (the JSON file), with a progress line; `series` takes a broker's place."""
    row = s.rows.setdefault(f"{phase} {label}", {"phase": phase, "label": label, "params": params, "samples": {}})
    row["samples"].setdefault(series, []).append(sample)
    if not sample.get("complete"):
        brief = "FAILED: " + (sample.get("first_error") or "incomplete").splitlines()[0]
    elif "requests" in sample:
        brief = (f"{sample['requests'] / sample['seconds']:,.0f} req/s, registry CPU "
                 f"{sample['registry_cpu_s'] / sample['requests'] * 1e6:,.0f} ms per 1k requests")
    elif "cpu_s" in sample:
        brief = f"{sample['records'] / sample['cpu_s']:,.0f} rec/CPU-s (this process)"
    else:
        brief = (f"{sample['records'] / sample['seconds']:,.0f} rec/s, "
                 f"{sample['records'] / sample['broker_cpu_s']:,.0f} rec/broker-CPU-s")
    print(f"  {series:<10} {label:<40} {brief}", flush=True)
