"""Summaries and tables of the `schema` phase (validating vs plain topic vs bare decode; registry load)."""

from __future__ import annotations

from bench.report import _num
from bench.stats import summarize

TARGET = 0.70  # issue 7: validating broker rec/CPU-s >= 70% of the bare decode loop's
METRICS = {
    "records_per_s": lambda s: s["records"] / s["seconds"] if "records" in s and s["seconds"] else None,
    "records_per_cpu_s": lambda s: s["records"] / (s.get("cpu_s") or s["broker_cpu_s"])
    if "records" in s and (s.get("cpu_s") or s.get("broker_cpu_s")) else None,
    "client_cpu_frac": lambda s: s["client_cpu_s"] / s["seconds"] if "client_cpu_s" in s and s["seconds"] else None,
    "requests_per_s": lambda s: s["requests"] / s["seconds"] if s.get("requests") else None,
    "registry_cpu_ms_per_1k": lambda s: s["registry_cpu_s"] / s["requests"] * 1e6 if s.get("requests") else None,
    "registry_cpu_frac": lambda s: s["registry_cpu_s"] / s["seconds"] if s.get("requests") else None,
}
TANSU_NOTE = ("tansu: no schema validation (0.6.0 has no registry integration), so the peer is the same Keystream "
              "broker's topic without confluent.value.schema.validation")


def _median(row: dict, series: str, metric: str) -> float | None:
    summary = row["summary"].get(series, {}).get(metric)
    return summary["median"] if summary else None


def summarize_row(row: dict) -> None:
    """Medians per series (complete samples only) and the ratios the table prints."""
    row["summary"] = {series: {m: summarize([f(s) for s in samples if s.get("complete")]) for m, f in METRICS.items()}
                      for series, samples in row["samples"].items()}
    if row["phase"] != "schema":
        return
    ratios = {"validating/plain records_per_s": ("validating", "plain", "records_per_s"),
              "validating/plain records_per_cpu_s": ("validating", "plain", "records_per_cpu_s"),
              "validating/decode records_per_cpu_s": ("validating", "decode", "records_per_cpu_s")}
    row["ratio"] = {}
    for name, (a, b, metric) in ratios.items():
        x, y = _median(row, a, metric), _median(row, b, metric)
        if x and y:
            row["ratio"][name] = x / y


def _cell(row: dict, series: str, metric: str, pct: bool = False) -> str:
    samples = row["samples"].get(series, [])
    if samples and not any(s.get("complete") for s in samples):
        return "FAIL"
    v = _median(row, series, metric)
    return "-" if v is None else f"{v * 100:.0f}%" if pct else _num(v)


def _spread(row: dict, series: str, metric: str) -> str:
    summary = row["summary"].get(series, {}).get(metric)
    return f"{summary['spread'] * 100:.0f}%" if summary and summary["n"] > 1 else "-"


def _grid(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in [head, *body]]


def lines(rows: list[dict], info: dict) -> list[str]:
    produce = [r for r in rows if r["phase"] == "schema"]
    lookups = [r for r in rows if r["phase"] == "registry"]
    if not produce and not lookups:
        return []
    out: list[str] = []
    if produce:
        def ratio(row: dict, name: str) -> str:
            r = row["ratio"].get(name)
            return "-" if r is None else f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"

        body = [[row["label"], _cell(row, "validating", "records_per_s"), _cell(row, "plain", "records_per_s"),
                 ratio(row, "validating/plain records_per_s"), _cell(row, "validating", "records_per_cpu_s"),
                 _cell(row, "plain", "records_per_cpu_s"), ratio(row, "validating/plain records_per_cpu_s"),
                 _cell(row, "decode", "records_per_cpu_s"), ratio(row, "validating/decode records_per_cpu_s"),
                 _spread(row, "validating", "records_per_s"), _spread(row, "plain", "records_per_s"),
                 f"{_cell(row, 'validating', 'client_cpu_frac', True)}/{_cell(row, 'plain', 'client_cpu_frac', True)}"]
                for row in produce]
        out += ["SCHEMA VALIDATION (keystream-schema; V = topic with confluent.value.schema.validation=true, P = same "
                "broker, topic without; D = bare fastavro schemaless_reader loop in the bench process; pre-serialized "
                "Confluent-framed Avro, acks=1, 1 partition, PLAINTEXT)",
                *_grid(["case", "rec/s V", "rec/s P", "V/P", "rec/CPU-s V", "rec/CPU-s P", "V/P", "rec/CPU-s D",
                        "V/D", "spr V", "spr P", "client V/P"], body),
                f"rec/CPU-s V and P = records per broker CPU-second (/proc, whole process tree); D = records per "
                f"CPU-second of the decode loop (time.process_time); V/D target >= {TARGET:.2f}", TANSU_NOTE, ""]
    if lookups:
        series = "registry"
        body = [[row["label"], _cell(row, series, "requests_per_s"), _cell(row, series, "registry_cpu_ms_per_1k"),
                 _cell(row, series, "registry_cpu_frac", True), _cell(row, series, "client_cpu_frac", True),
                 _spread(row, series, "requests_per_s")] for row in lookups]
        p = lookups[0]["params"]
        out += [f"REGISTRY (HTTPS with a client certificate, aiohttp client, {p['concurrency']} requests in flight on "
                f"keep-alive connections, {p['seconds']:g} s per run)",
                *_grid(["request", "req/s", "registry CPU-ms/1k req", "registry CPU", "client CPU", "spr"], body),
                "registry CPU and client CPU are shares of one core (the client shares the 2 cores)", ""]
    reg = info.get("keystream-schema", {})
    if reg.get("peak_rss_mib"):
        out.append(f"peak RSS: broker {reg['peak_rss_mib']:.0f} MiB, registry {reg.get('registry_peak_rss_mib') or 0:.0f} MiB")
    if reg.get("start_error"):
        out += ["keystream-schema DID NOT START:", *(f"    {t}" for t in reg["start_error"].splitlines())]
    failed = [(r, k, s.get("first_error", "incomplete")) for r in rows if r["phase"] in ("schema", "registry")
              for k, ss in r["samples"].items() for s in ss if not s.get("complete")]
    for row, series, error in failed:
        out.append(f"  FAILED {series} {row['label']}: {error.splitlines()[0] if error else 'incomplete'}")
    return out
