"""Summaries, ratios, the stdout tables and the JSON file.

The first broker named is the subject and the second the peer; every ratio is subject / peer, so
for throughput above 1 is better and for latency and join time below 1 is better.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from bench.stats import summarize

# metric name -> function of one complete sample
METRICS = {
    "records_per_s": lambda s: s["records"] / s["seconds"] if s["seconds"] else None,
    "mb_per_s": lambda s: s["bytes"] / s["seconds"] / 1e6 if s["seconds"] else None,
    "records_per_cpu_s": lambda s: s["records"] / s["broker_cpu_s"] if s["broker_cpu_s"] > 0 else None,
    "broker_cpu_s": lambda s: s["broker_cpu_s"],
    "client_cpu_frac": lambda s: s["client_cpu_s"] / s["seconds"] if s["seconds"] else None,
    "e2e_p50_ms": lambda s: s.get("e2e_p50_ms"),
    "e2e_p99_ms": lambda s: s.get("e2e_p99_ms"),
    "ack_p50_ms": lambda s: s.get("ack_p50_ms"),
    "ack_p99_ms": lambda s: s.get("ack_p99_ms"),
    "join_ms": lambda s: s.get("join_ms"),
    "device_flushes_per_s": lambda s: s["device_flushes"] / s["seconds"]
    if s.get("device_flushes") is not None and s["seconds"] else None,
    "records_per_device_flush": lambda s: s["records"] / s["device_flushes"] if s.get("device_flushes") else None,
    "target_rate": lambda s: s.get("target_rate"),
    "rss_start_mib": lambda s: s.get("rss_start_mib"),
    "rss_end_mib": lambda s: s.get("rss_end_mib"),
    "rss_peak_mib": lambda s: s.get("rss_peak_mib"),
    "rss_slope_mib_per_min": lambda s: s.get("rss_slope_mib_per_min"),
    "ready_s": lambda s: s.get("ready_s"),
    "startup_cpu_s": lambda s: s.get("startup_cpu_s"),
    "stop_s": lambda s: s.get("stop_s"),
}
LOW_CPU_S = 0.5  # on the tick clock, below this a 10 ms tick is more than 2% of the CPU figure


def summarize_row(row: dict, brokers: list[str]) -> None:
    """Add per-broker medians (of complete samples only) and subject/peer ratios to a row."""
    row["summary"], row["ratio"] = {}, {}
    for b in brokers:
        good = [s for s in row["samples"].get(b, []) if s.get("complete")]
        row["summary"][b] = {m: summarize([f(s) for s in good]) for m, f in METRICS.items()}
    if len(brokers) >= 2:
        subj, peer = (row["summary"][b] for b in brokers[:2])
        for m in METRICS:
            if subj[m] and peer[m] and peer[m]["median"]:
                row["ratio"][m] = subj[m]["median"] / peer[m]["median"]


TLS, PLAIN = "keystream-tls", "keystream"
TANSU_TLS_NOTE = ("tansu: no TLS (its 0.6.0 `--cert` and `--key` options cannot be given together, and `--cert` "
                  "alone still serves plaintext), so only Keystream is measured over mTLS")


def summarize_tls(row: dict) -> None:
    """With `--tls`: medians of the mTLS Keystream and TLS / plaintext ratios of Keystream itself."""
    if TLS not in row["samples"]:
        return
    good = [s for s in row["samples"][TLS] if s.get("complete")]
    row["summary"][TLS] = {m: summarize([f(s) for s in good]) for m, f in METRICS.items()}
    if PLAIN not in row["summary"]:
        summarize_row(row, [PLAIN])  # --brokers without keystream: nothing to compare with
    tls, plain = row["summary"][TLS], row["summary"].get(PLAIN, {})
    row["tls_ratio"] = {m: tls[m]["median"] / plain[m]["median"] for m in METRICS
                        if tls[m] and plain.get(m) and plain[m]["median"]}


DURABLE = "keystream-durable"
DURABLE_TANSU_NOTE = "tansu: no durable mode (0.6.0 keeps everything in memory), so this phase is Keystream only"


def summarize_durable(row: dict) -> None:
    """Medians of the log.flush.interval.messages=1 Keystream (it has no peer to be a ratio of)."""
    if DURABLE in row["samples"]:
        good = [s for s in row["samples"][DURABLE] if s.get("complete")]
        row["summary"][DURABLE] = {m: summarize([f(s) for s in good]) for m, f in METRICS.items()}


def _durable_lines(rows: list[dict], info: dict, with_tansu: bool) -> list[str]:
    """The durable table, then throughput(max producers) / throughput(1 producer) per partition count."""
    if not rows:
        return []
    metrics = [("rec/s", "records_per_s"), ("rec/CPU-s", "records_per_cpu_s"),
               ("disk flush/s", "device_flushes_per_s"), ("rec/flush", "records_per_device_flush")]
    out = _table("DURABLE (keystream, log.flush.interval.messages=1; 100 B, acks=-1, linger.ms=0, "
                 f"{rows[0]['params']['window']} unacked record(s) per producer)", rows, [DURABLE], metrics,
                 "records_per_s", short=["K"], note=("T", "no durable mode") if with_tansu else None)
    scaling = []
    for parts in sorted({r["params"]["partitions"] for r in rows}):
        by_n = {r["params"]["producers"]: r["summary"].get(DURABLE, {}).get("records_per_s")
                for r in rows if r["params"]["partitions"] == parts}
        top = max(by_n)
        if 1 in by_n and top > 1 and by_n[1] and by_n[top]:
            scaling.append(f"p={parts}: {by_n[top]['median'] / by_n[1]['median']:.2f}x")
    if scaling:
        top = max(r["params"]["producers"] for r in rows)
        out.append(f"throughput({top} producers) / throughput(1 producer): " + ", ".join(scaling) + " (target >= 5x)")
    d = info.get(DURABLE, {})
    idle = [v for v in d.get("idle_device_flushes_per_s", []) if v is not None]
    if d.get("flush_stat"):
        calib = d.get("device_flushes_per_fsync")
        calib_text = f"{calib:.2f}" if calib is not None else "?"
        idle_text = ", ".join(f"{v:.1f}" for v in idle) or "-"
        out.append(f"disk flush/s = flush requests completed by the data dir's disk ({d['flush_stat']}, field 16), "
                   f"machine-wide: idle background {idle_text}/s (one figure per repeat); one append+fsync of a "
                   f"scratch file there = {calib_text} disk flushes, so fsyncs/s ~ disk flush/s / {calib_text}")
    else:
        out.append("disk flush/s: not available (the data dir is not on a block device with a flush counter)")
    if with_tansu:
        out.append(DURABLE_TANSU_NOTE)
    return [*out, ""]


SOAK_TANSU_NOTE = ("tansu: not soaked (0.6.0 has only in-memory storage: the soak's 10-30 GB of log would have to "
                   "fit in its RAM); the soak is Keystream only")


def _soak_lines(rows: list[dict], info: dict, with_tansu: bool) -> list[str]:
    """Keystream's own soak instance: RSS at start, end and peak (VmRSS samples) and its slope."""
    if not rows:
        return []
    metrics = [("target rec/s", "target_rate"), ("rec/s", "records_per_s"), ("rec/CPU-s", "records_per_cpu_s"),
               ("RSS start", "rss_start_mib"), ("RSS end", "rss_end_mib"), ("RSS peak", "rss_peak_mib"),
               ("slope", "rss_slope_mib_per_min")]
    out = _table("SOAK (keystream-soak; RSS in MiB, slope = least squares over the second half, MiB/min; "
                 "produce and a consuming group member at once)", rows, ["keystream"], metrics, None, short=["K"],
                 note=("T", "not soaked") if with_tansu else None)
    source = info.get("keystream-soak", {}).get("rate_source")
    if source:
        out.append(f"rate: {source}")
    if with_tansu:
        out.append(SOAK_TANSU_NOTE)
    return [*out, ""]


def _scale_lines(rows: list[dict], brokers: list[str]) -> list[str]:
    """The scale table, then per broker the throughput with the most partitions / with the fewest."""
    if not rows:
        return []
    out = _table(f"SCALE ({rows[0]['params']['producers']} producers at once, 100 B, acks=1, same records in all rows)",
                 rows, brokers, [("rec/s", "records_per_s"), ("rec/CPU-s", "records_per_cpu_s")], "records_per_s")
    for mode in dict.fromkeys(r["params"].get("mode", "spread") for r in rows):
        by_parts = {r["params"]["partitions"]: r for r in rows if r["params"].get("mode", "spread") == mode}
        lo, hi = min(by_parts), max(by_parts)
        if lo != hi:
            parts = []
            for b in brokers:
                a, z = (by_parts[p]["summary"].get(b, {}).get("records_per_s") for p in (lo, hi))
                parts.append(f"{b} {z['median'] / a['median'] * 100:.0f}%" if a and z and a["median"] else f"{b} -")
            out.insert(-1, f"{mode}: rec/s p={hi} / p={lo}: " + ", ".join(parts) + " (issue 5 target >= 70%)")
    return out


RESTART = "keystream-restart"


def summarize_restart(row: dict) -> None:
    """Medians of the restart phase's Keystream (Keystream only: tansu keeps no log to recover)."""
    if RESTART in row["samples"]:
        good = [s for s in row["samples"][RESTART] if s.get("complete")]
        row["summary"][RESTART] = {m: summarize([METRICS[m](s) for s in good])
                                   for m in ("ready_s", "startup_cpu_s", "stop_s")}


def _restart_lines(rows: list[dict], info: dict, with_tansu: bool) -> list[str]:
    if not rows:
        return []
    p = rows[0]["params"]
    out = _table(f"RESTART (keystream-restart, {p['partitions']} partitions, ~{p['bytes'] / 1e9:.1f} GB of log; "
                 "seconds from `keystream serve` to Metadata answered; CPU = the new process's until then)", rows,
                 [RESTART], [("ready s", "ready_s"), ("CPU s", "startup_cpu_s"), ("stop s", "stop_s")], None,
                 short=["K"], note=("T", "in-memory, nothing to recover") if with_tansu else None)
    worst = [f"{r['label'].split(' ->')[0]} {r['summary'][RESTART]['ready_s']['max']:.2f} s" for r in rows
             if r["summary"].get(RESTART, {}).get("ready_s")]
    if worst:
        out.insert(-1, "slowest ready: " + ", ".join(worst))
    setup = info.get(RESTART, {}).get("setup") or {}
    if setup.get("complete"):
        out.insert(-1, f"CreateTopics with {setup['partitions']} partitions: {setup['create_topic_s']:.2f} s; fill: "
                   f"{setup['fill_bytes'] / 1e9:.2f} GB in {setup['fill_s']:.0f} s; kill -9 comes right after a top-up "
                   "(the fill in the first repeat). Targets: clean <= 5 s, kill -9 <= 15 s")
    return out


def failures(row: dict, broker: str) -> list[str]:
    return [s.get("first_error", "incomplete") for s in row["samples"].get(broker, []) if not s.get("complete")]


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _cell(row: dict, broker: str, metric: str) -> str:
    if failures(row, broker) and not any(s.get("complete") for s in row["samples"].get(broker, [])):
        return "FAIL"
    summary = row["summary"].get(broker, {}).get(metric)
    if not summary:
        return "-"
    text = _num(summary["median"])
    if metric == "records_per_cpu_s" and any(
        s.get("broker_cpu_clock") == "ticks" and s["broker_cpu_s"] < LOW_CPU_S
        for s in row["samples"][broker] if s.get("complete")
    ):
        text += "~"
    return text


def wire_codecs(row: dict) -> dict[str, str]:
    """Broker -> codec the client really sent, for compressed rows ('' when not checked)."""
    return {b: "+".join(sorted({s.get("wire_codec", "") for s in samples if s.get("complete")}))
            for b, samples in row["samples"].items()}


def _codec_mismatch(row: dict) -> bool:
    wanted = row["params"].get("compression", "none")
    return wanted != "none" and any(c not in ("", wanted) for c in wire_codecs(row).values())


def _comparable(row: dict) -> bool:
    """A ratio between a broker that got lz4 batches and one that got plain ones means nothing."""
    codecs = [c for c in wire_codecs(row).values() if c]
    return len(set(codecs)) <= 1


def _ratio(row: dict, metric: str, key: str = "ratio") -> str:
    if not _comparable(row):
        return "n/c"
    r = row.get(key, {}).get(metric)
    if r is None:
        return "-"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.3f}x" if r >= 0.001 else f"{r:.1e}x"


def _client(row: dict, brokers: list[str]) -> str:
    """Client CPU as a share of one core, per broker: near 100% means the run was client-bound."""
    parts = []
    for b in brokers:
        summary = row["summary"].get(b, {}).get("client_cpu_frac")
        parts.append(f"{summary['median'] * 100:.0f}%" if summary else "-")
    return "/".join(parts)


def _spread(row: dict, broker: str, metric: str) -> str:
    summary = row["summary"].get(broker, {}).get(metric)
    return f"{summary['spread'] * 100:.0f}%" if summary and summary["n"] > 1 else "-"


def _table(title: str, rows: list[dict], brokers: list[str], metrics: list[tuple[str, str]],
           spread_of: str | None, *, short: list[str] | None = None, ratio_key: str = "ratio",
           note: tuple[str, str] | None = None) -> list[str]:
    short = short or [b[0].upper() for b in brokers]
    head = ["case"]
    for label, _ in metrics:
        head += [f"{label} {s}" for s in short] + (["ratio"] if len(brokers) > 1 else [])
    if spread_of:
        head += [f"spr {s}" for s in short] + ["client " + "/".join(short)]
    head += [note[0]] if note else []
    body = []
    for row in rows:
        line = [row["label"] + (" †" if _codec_mismatch(row) else "")]
        for _, metric in metrics:
            line += [_cell(row, b, metric) for b in brokers]
            line += [_ratio(row, metric, ratio_key)] if len(brokers) > 1 else []
        if spread_of:
            line += [_spread(row, b, spread_of) for b in brokers] + [_client(row, brokers)]
        line += [note[1]] if note else []
        body.append(line)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [title, fmt(head), *(fmt(r) for r in body), ""]


def render(rows: list[dict], brokers: list[str], broker_info: dict) -> str:
    names = ", ".join(f"{b[0].upper()} = {b}" for b in brokers)
    out = [f"{names}; ratio = {brokers[0]} / {brokers[1]}" if len(brokers) > 1 else names,
           "medians of complete repeats; spr = (max-min)/median of records/s; client = client CPU / wall "
           "(100% = one core: client-bound); ~ = CPU from the 10 ms tick clock and under 0.5 s", ""]
    by_phase = {p: [r for r in rows if r["phase"] == p] for p in ("produce", "consume", "latency", "join", "durable")}
    throughput = [("rec/s", "records_per_s"), ("MB/s", "mb_per_s"), ("rec/CPU-s", "records_per_cpu_s")]
    for phase in ("produce", "consume"):
        if by_phase[phase]:
            out += _table(phase.upper(), by_phase[phase], brokers, throughput, "records_per_s")
    out += _tls_tables(by_phase, "tansu" in brokers)
    if by_phase["latency"]:
        out += _table("LATENCY (ms)", by_phase["latency"], brokers,
                      [("e2e p50", "e2e_p50_ms"), ("e2e p99", "e2e_p99_ms"),
                       ("ack p50", "ack_p50_ms"), ("ack p99", "ack_p99_ms")], None)
    if by_phase["join"]:
        out += _table("GROUP JOIN (ms)", by_phase["join"], brokers, [("join", "join_ms")], None)
    out += _durable_lines(by_phase["durable"], broker_info, "tansu" in brokers)
    out += _soak_lines([r for r in rows if r["phase"] == "soak"], broker_info, "tansu" in brokers)
    out += _scale_lines([r for r in rows if r["phase"] == "scale"], brokers)
    out += _restart_lines([r for r in rows if r["phase"] == "restart"], broker_info, "tansu" in brokers)
    out.append("broker peak RSS (VmHWM of the process tree; issue 5 target: under 300 MB = 286 MiB): " + ", ".join(
        f"{b} {info['peak_rss_mib']:.0f} MiB" if info.get("peak_rss_mib") else f"{b} n/a"
        for b, info in broker_info.items()))
    out += _codec_lines(rows)
    for b, info in broker_info.items():
        if info.get("start_error"):
            out += ["", f"{b} DID NOT START:", *(f"    {t}" for t in info["start_error"].splitlines())]
    out += _failure_lines(rows, [*brokers, *(b for b in (TLS, DURABLE, RESTART) if b in broker_info)])
    return "\n".join(out)


def _tls_tables(by_phase: dict[str, list[dict]], with_tansu: bool) -> list[str]:
    """Keystream over mTLS beside its own plaintext figures; ratio = TLS / plaintext (1.00x = free)."""
    out: list[str] = []
    throughput = [("rec/s", "records_per_s"), ("rec/CPU-s", "records_per_cpu_s")]
    for phase in ("produce", "consume"):
        rows = [r for r in by_phase[phase] if TLS in r["samples"]]
        if rows:
            out += _table(f"{phase.upper()} over mTLS (KT = keystream SSL listener, client certificate required; "
                          "K = keystream plaintext; ratio = KT / K)", rows, [TLS, PLAIN], throughput,
                          "records_per_s", short=["KT", "K"], ratio_key="tls_ratio",
                          note=("T", "no TLS") if with_tansu else None)
    if out and with_tansu:
        out.append(TANSU_TLS_NOTE)
        out.append("")
    return out


def _codec_lines(rows: list[dict]) -> list[str]:
    """Explain the † rows: which codec each broker's batches really carried, grouped by outcome."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if _codec_mismatch(row):
            sent = ", ".join(f"{b} got {c or '-'}" for b, c in wire_codecs(row).items())
            groups.setdefault(sent, []).append(f"{row['phase']} {row['label']}")
    if not groups:
        return []
    lines = ["", "† compression.type was not what went on the wire (librdkafka sends a batch uncompressed when "
             "the codec does not shrink it, and never uses LZ4 unless the broker advertises FindCoordinator); "
             "n/c = the brokers got different codecs, so no ratio:"]
    for sent, where in groups.items():
        lines.append(f"  {sent}: {'; '.join(where)}")
    return lines


def _failure_lines(rows: list[dict], brokers: list[str]) -> list[str]:
    """Each distinct failure once, with how many runs it hit and which rows, so a dead broker is one entry."""
    lines: list[str] = []
    for b in brokers:
        seen: dict[str, list[str]] = {}
        for row in rows:
            for error in failures(row, b):
                seen.setdefault(error, []).append(f"{row['phase']} {row['label']}")
        for error, where in seen.items():
            rows_text = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
            lines += [f"  {b}: {len(where)} run(s) failed ({rows_text}):", *(f"    {t}" for t in error.splitlines())]
    return ["", "FAILURES:", *lines] if lines else []


def machine() -> dict:
    import confluent_kafka

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0]}


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))
