"""The measurement matrix: which runs happen, in which order, on which topics.

Every cell runs on each broker in turn, the order flipping on each repeat; topics are created
fresh through the Admin API for every run and deleted afterwards.
"""

from __future__ import annotations

import argparse
import shutil

from bench import brokers as launch
from bench import consume, durable, join, latency, produce, restart, scale, soak, topics
from bench.brokers import Broker, BrokerError
from bench.session import DURABLE, Session, guarded

RESTART = "keystream-restart"  # the 1,000-partition, ~5 GB Keystream of the restart phase


def records_for(args: argparse.Namespace, size: int) -> int:
    """Defaults big enough that even the faster broker spends well over a clock tick per run."""
    if args.records:
        return args.records
    if args.quick:
        return 20_000
    return 1_000_000 if size <= 100 else 300_000


def throughput_cell(s: Session, repeat: int, size: int, parts: int, comp: str) -> None:
    """Produce once per acks setting into fresh topics, then consume the first one back."""
    a = s.args
    records = records_for(a, size)
    for name in s.order(repeat, tls=True):
        broker = s.brokers[name]
        made: list[str] = []
        consume_topic, consume_codec = None, None
        try:
            if "produce" in a.only:
                for acks in a.acks:
                    topic = topics.unique_name("produce")
                    made.append(topic)
                    label = f"{size}B acks={acks} p={parts} {comp}"
                    params = {"size": size, "acks": acks, "partitions": parts, "compression": comp,
                              "records": records}
                    sample = guarded(broker, _produce, broker, topic, a, records, size, acks, parts, comp)
                    _check_codec(s, broker, comp, size, sample)
                    s.record(f"produce {label}", "produce", label, params, name, sample)
                    if consume_topic is None and sample.get("complete"):
                        consume_topic, consume_codec = topic, sample.get("wire_codec")
            if "consume" in a.only:
                label = f"{size}B p={parts} {comp}"
                params = {"size": size, "partitions": parts, "compression": comp, "records": records}
                if consume_topic is None and "produce" not in a.only:
                    consume_topic = topics.unique_name("consume")
                    made.append(consume_topic)
                    sample = guarded(broker, _fill, broker, consume_topic, a, records, size, parts, comp)
                    _check_codec(s, broker, comp, size, sample)
                    consume_codec = sample.get("wire_codec")
                    if not sample.get("complete"):
                        consume_topic = None
                if consume_topic is None:
                    sample = {"complete": False, "first_error": "no complete produce run to read back"}
                else:
                    sample = guarded(broker, consume.run, broker, consume_topic, records, size, parts,
                                     a.phase_timeout)
                    if consume_codec:
                        sample["wire_codec"] = consume_codec  # what the stored batches carry
                s.record(f"consume {label}", "consume", label, params, name, sample)
        finally:
            for topic in made:
                if broker.alive():
                    err = topics.delete(broker, topic)
                    if err:
                        print(f"  warning: {name} could not delete {topic}: {err}", flush=True)


def _check_codec(s: Session, broker: Broker, comp: str, size: int, sample: dict) -> None:
    """Record which codec the batches really carried; the report flags rows where it is not `comp`."""
    if comp != "none" and sample.get("complete"):
        sample["wire_codec"] = s.codec(broker, comp, size)


def _produce(broker: Broker, topic: str, a, records: int, size: int, acks: int, parts: int, comp: str) -> dict:
    topics.create(broker, topic, parts)
    return produce.run(broker, topic, records, size, acks, parts, comp, a.phase_timeout)


def _fill(broker: Broker, topic: str, a, records: int, size: int, parts: int, comp: str) -> dict:
    topics.create(broker, topic, parts)
    produce.fill(broker, topic, records, size, parts, comp, a.phase_timeout)
    return {"complete": True}


def latency_cell(s: Session, repeat: int) -> None:
    a = s.args
    label = f"{a.rate}/s 100B acks=-1 linger=0"
    params = {"rate": a.rate, "size": 100, "acks": -1, "linger_ms": 0, "seconds": a.latency_seconds}
    for name in s.order(repeat):
        broker = s.brokers[name]
        topic = topics.unique_name("latency")

        def go(broker=broker, topic=topic) -> dict:
            topics.create(broker, topic, 1)
            return latency.run(broker, topic, a.rate, a.latency_seconds, a.warmup_seconds, 100,
                               a.phase_timeout)

        s.record(f"latency {label}", "latency", label, params, name, guarded(broker, go))
        if broker.alive():
            topics.delete(broker, topic)


def join_cell(s: Session, repeat: int, delay_ms: int) -> None:
    label = f"2 members, K delay={delay_ms}ms"
    params = {"group.initial.rebalance.delay.ms": delay_ms, "note": "the delay applies to Keystream only"}
    for name in s.order(repeat):
        try:
            broker = s.join_broker(name, delay_ms)
        except BrokerError as exc:
            s.record(f"join {delay_ms}", "join", label, params, name, {"complete": False, "first_error": str(exc)})
            continue
        topic = topics.unique_name("join")

        def go(broker=broker, topic=topic) -> dict:
            topics.create(broker, topic, 2)
            return join.run(broker, topic, min(40.0 if s.args.quick else 60.0, s.args.phase_timeout))

        s.record(f"join {delay_ms}", "join", label, params, name, guarded(broker, go))
        if broker.alive():
            topics.delete(broker, topic)


def durable_cell(s: Session, repeat: int) -> None:
    """Keystream only (tansu keeps everything in memory): 1/4/16 acks=-1 producers, fsync per request."""
    a = s.args
    broker = s.durable_broker()
    info = s.info[DURABLE]
    if broker.proc is not None and "flush_stat" not in info:
        stat = durable.flush_stat_path(broker.workdir)
        info["flush_stat"] = str(stat) if stat else None
        info["device_flushes_per_fsync"] = durable.calibrate(stat, broker.workdir)
    stat = durable.flush_stat_path(broker.workdir) if info.get("flush_stat") else None
    if broker.proc is not None:
        info.setdefault("idle_device_flushes_per_s", []).append(
            durable.idle_flush_rate(stat, 0.5 if a.quick else 1.0))
    stuck = info.get("unresponsive", "")  # the broker stopped answering: later cells fail at once
    for parts in a.durable_partitions:
        for n in a.durable_producers:
            label = f"{n} producer{'s' if n > 1 else ''} p={parts}"
            params = {"producers": n, "partitions": parts, "size": 100, "acks": -1, "linger_ms": 0,
                      "window": a.durable_window, "records": a.durable_records, "seconds": a.durable_seconds,
                      "log.flush.interval.messages": 1}
            topic = topics.unique_name("durable")

            def go(topic=topic, n=n, parts=parts) -> dict:
                topics.create(broker, topic, parts)
                return durable.run(broker, topic, n, parts, a.durable_records, a.durable_seconds,
                                   a.durable_window, 100, stat)

            sample = {"complete": False, "first_error": stuck} if stuck else guarded(broker, go)
            s.record(f"durable {label}", "durable", label, params, DURABLE, sample)
            if stuck or not broker.alive():
                continue
            try:
                broker.admin().list_topics(timeout=5)
            except Exception as exc:
                stuck = info["unresponsive"] = (f"not run: {DURABLE} stopped answering during '{label}' "
                                                f"(metadata request: {type(exc).__name__}: {exc})")
                continue
            topics.delete(broker, topic)


def scale_cell(s: Session, repeat: int) -> None:
    """20 producers on a 6- and a 1,000-partition topic, same records in total, on each broker."""
    a = s.args
    for mode in a.scale_modes:
        for parts in a.scale_partitions:
            label = f"{a.scale_producers} producers p={parts} {mode}"
            params = {"producers": a.scale_producers, "partitions": parts, "mode": mode, "size": 100, "acks": 1,
                      "records": a.scale_records}
            for name in s.order(repeat):
                broker = s.brokers[name]
                topic = topics.unique_name("scale")

                def go(broker=broker, topic=topic, parts=parts, mode=mode) -> dict:
                    topics.create(broker, topic, parts, timeout=60.0)
                    return scale.run(broker, topic, a.scale_producers, parts, a.scale_records, 100,
                                     a.phase_timeout, mode)

                s.record(f"scale {label}", "scale", label, params, name, guarded(broker, go))
                if broker.alive():
                    topics.delete(broker, topic, timeout=60.0)


def restart_phase(s: Session) -> None:
    """Keystream only, all repeats in one go (the ~5 GB log is built once): kill -9 and clean restarts."""
    a = s.args
    broker = launch.keystream(s.workdir, s.base_delay, dict(a.keystream_prop), dict(a.keystream_client_prop),
                              name=RESTART)
    info = s.info[RESTART] = {"version": launch.version_of("keystream"), "argv": broker.argv, "port": broker.port}
    params = {"partitions": a.restart_partitions, "bytes": a.restart_bytes, "topup": a.restart_topup}
    labels = {"kill9": f"kill -9 -> ready, p={a.restart_partitions}",
              "clean": f"SIGTERM -> ready, p={a.restart_partitions}"}
    no_room = restart.check_space(broker.workdir / "data", a.restart_bytes)
    if no_room:
        info["start_error"] = no_room
        for kind, label in labels.items():
            s.record(f"restart {kind}", "restart", label, params, RESTART, {"complete": False, "first_error": no_room})
        return
    try:
        broker.start()
        run = restart.RestartRun(broker, a.restart_partitions, a.restart_bytes, a.restart_topup, a.phase_timeout)
        setup = guarded(broker, run.prepare)
        info["setup"] = setup
        print(f"  {RESTART}: {setup}", flush=True)
        for repeat in range(a.repeats):
            for kind, cycle in (("kill9", lambda r=repeat: run.kill9_cycle(r)), ("clean", run.clean_cycle)):
                sample = guarded(broker, cycle) if setup.get("complete") else dict(setup)
                s.record(f"restart {kind}", "restart", labels[kind], params, RESTART, sample)
                if sample.get("complete"):
                    print(f"    ready {sample['ready_s']:.2f} s, start-up CPU {sample['startup_cpu_s']:.2f} s"
                          + (f", stop {sample['stop_s']:.2f} s" if "stop_s" in sample else ""), flush=True)
    except Exception as exc:
        info["start_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        peak = broker.peak_rss_mib() if broker.alive() else None
        info.update(exit_code=broker.stop(grace=60), peak_rss_mib=peak or 0)
        if not a.keep:
            shutil.rmtree(broker.workdir, ignore_errors=True)  # ~5 GB: do not wait for the session's end


def measure(s: Session) -> None:
    a = s.args
    for repeat in range(a.repeats):
        print(f"repeat {repeat + 1}/{a.repeats}", flush=True)
        if {"produce", "consume"} & set(a.only):
            for size in a.sizes:
                for parts in a.partitions:
                    for comp in a.compression:
                        throughput_cell(s, repeat, size, parts, comp)
        if "latency" in a.only:
            latency_cell(s, repeat)
        if "join" in a.only:
            for delay in a.join_delays:
                join_cell(s, repeat, delay)
        if "durable" in a.only and "keystream" in a.brokers:
            durable_cell(s, repeat)
        if "scale" in a.only:
            scale_cell(s, repeat)
    if "restart" in a.only and "keystream" in a.brokers:
        restart_phase(s)  # once, after the repeats: it builds ~5 GB of log and repeats inside
    if "soak" in a.only and "keystream" in a.brokers:
        soak.cell(s)  # once, after the repeats: it runs for minutes
