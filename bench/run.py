"""Side-by-side runner: `python -m bench.run [--quick] [--only ...] [--brokers keystream,tansu] [--tls]`.

Both brokers run at once on free 127.0.0.1 ports and every measurement alternates between them
(and flips the order on each repeat), so machine noise lands on both sides of each ratio. `--tls`
adds a third broker, Keystream with an mTLS SSL listener, to the produce/consume runs, reported
as TLS / plaintext of Keystream itself.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import brokers as launch
from bench import report, scale, schema, schema_report, tenants
from bench.matrix import measure
from bench.session import Session

PHASES = ("produce", "consume", "latency", "join", "durable", "soak", "scale", "restart", "schema", "tenants")
RESULTS = Path(__file__).resolve().parent / "results"
def _csv(kind):
    return lambda text: [kind(v) for v in text.split(",") if v]


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke test: small counts, one repeat (~1 minute)")
    p.add_argument("--brokers", type=_csv(str), default=["keystream", "tansu"],
                   help="comma list; the first is the subject, the second the peer (ratio = first/second)")
    p.add_argument("--only", type=_csv(str), default=list(PHASES), help="comma list of " + "|".join(PHASES))
    p.add_argument("--records", type=int, help="records per produce/consume run (default 1000000 for 100 B "
                   "and 300000 for 1 KiB records, so the peer's CPU time is well above clock noise; quick 20000)")
    p.add_argument("--repeats", type=int, help="repeats per measurement (default 3, quick 1)")
    p.add_argument("--sizes", type=_csv(int), default=[100, 1024], help="record value sizes in bytes")
    p.add_argument("--acks", type=_csv(int), default=[1, -1])
    p.add_argument("--partitions", type=_csv(int), default=[1, 6])
    p.add_argument("--compression", type=_csv(str), default=["none", "lz4"])
    p.add_argument("--rate", type=int, default=2000, help="latency phase: records/s")
    p.add_argument("--latency-seconds", type=float, help="latency phase: measured seconds (default 10, quick 3)")
    p.add_argument("--join-delays", type=_csv(int), help="Keystream group.initial.rebalance.delay.ms values for "
                   "the join phase (default 0,3000; quick 0)")
    p.add_argument("--durable-producers", type=_csv(int), default=[1, 4, 16],
                   help="durable phase: concurrent producers per cell")
    p.add_argument("--durable-partitions", type=_csv(int), default=[1, 6], help="durable phase: partitions")
    p.add_argument("--durable-seconds", type=float, help="durable phase: time bound per cell (default 10, quick 2)")
    p.add_argument("--durable-records", type=int, help="durable phase: record bound per cell, all producers "
                   "together (default 1000000, quick 20000)")
    p.add_argument("--durable-window", type=int, default=1,
                   help="durable phase: unacknowledged records per producer (1 = wait for each ack)")
    p.add_argument("--soak-seconds", type=float, help="soak phase: duration (default 600, quick 20)")
    p.add_argument("--soak-rate", type=float, help="soak phase: records/s (default: half of Keystream's measured "
                   "100B acks=1 p=6 produce rate, or of a short calibration run)")
    p.add_argument("--soak-sample-seconds", type=float, help="soak phase: RSS sampling period (default 5, quick 1)")
    p.add_argument("--scale-producers", type=int, default=20, help="scale phase: concurrent producers")
    p.add_argument("--scale-partitions", type=_csv(int), default=[6, 1000],
                   help="scale phase: partition counts (the report divides the last by the first)")
    p.add_argument("--scale-modes", type=_csv(str), default=["spread", "sticky"],
                   help="scale phase: spread (round-robin per record, as keyed records) and/or sticky "
                        "(keyless, librdkafka's partitioner)")
    p.add_argument("--scale-records", type=int, help="scale phase: records per run, all producers together "
                   "(default 1000000, quick 100000)")
    p.add_argument("--restart-partitions", type=int, default=1000, help="restart phase: partitions")
    p.add_argument("--restart-bytes", type=float, help="restart phase: log bytes to build (default 5e9, quick 2e8)")
    p.add_argument("--restart-topup", type=float, help="restart phase: bytes produced just before each later "
                   "kill -9 (default 2e8, quick 2e7)")
    p.add_argument("--schema-records", type=int, help="schema phase: records per produce run and decode loop "
                   "(default 200000 for 100 B and 50000 for 1 KiB; quick 20000)")
    p.add_argument("--schema-seconds", type=float, help="schema phase: seconds per registry load run (default 5, "
                   "quick 1.5)")
    p.add_argument("--tenants-seconds", type=float, help="tenants phase: seconds acme runs beside globex "
                   "(default 20, quick 8)")
    p.add_argument("--tenants-quota", type=float, default=1e6, help="tenants phase: acme's producer_byte_rate")
    p.add_argument("--tenants-baseline", type=Path, metavar="DIR", help="tenants phase: a Keystream source tree "
                   "(e.g. `git archive 8b61bfe | tar -x -C DIR`) whose broker the no-quota hot path is compared with")
    p.add_argument("--phase-timeout", type=float, default=120.0, help="bound on any single run, seconds")
    p.add_argument("--keystream-prop", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="extra server.properties line for Keystream (repeatable)")
    p.add_argument("--keystream-client-prop", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="extra confluent-kafka setting for clients of Keystream (repeatable)")
    p.add_argument("--tls", action="store_true",
                   help="also run produce/consume against a Keystream with an mTLS SSL listener and report it "
                        "as a ratio of Keystream's plaintext figures")
    p.add_argument("--install-peer", action="store_true", help=f"pip install {launch.TANSU_PIN} first")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with broker logs and data")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.tls and "keystream" not in args.brokers:
        p.error("--tls compares Keystream over mTLS with Keystream over plaintext: include keystream in --brokers")
    unknown = (set(args.only) - set(PHASES) or set(args.brokers) - {"keystream", "tansu"}
               or set(args.scale_modes) - set(scale.MODES))
    if unknown:
        p.error(f"unknown value(s): {', '.join(sorted(unknown))}")
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.latency_seconds = args.latency_seconds or (3.0 if quick else 10.0)
    args.warmup_seconds = 0.5 if quick else 1.0
    args.durable_seconds = args.durable_seconds or (2.0 if quick else 10.0)
    args.durable_records = args.durable_records or (20_000 if quick else 1_000_000)
    args.soak_seconds = args.soak_seconds or (20.0 if quick else 600.0)
    args.soak_sample_seconds = args.soak_sample_seconds or (1.0 if quick else 5.0)
    args.scale_records = args.scale_records or (100_000 if quick else 1_000_000)
    args.restart_bytes = int(args.restart_bytes or (2e8 if quick else 5e9))
    args.restart_topup = int(args.restart_topup if args.restart_topup is not None else (2e7 if quick else 2e8))
    args.schema_seconds = args.schema_seconds or (1.5 if quick else 5.0)
    args.tenants_seconds = args.tenants_seconds or (8.0 if quick else 20.0)
    args.join_delays = args.join_delays if args.join_delays is not None else ([0] if quick else [0, 3000])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.install_peer:
        launch.install_peer()
    started = datetime.now()
    workdir = Path(tempfile.mkdtemp(prefix="keystream-bench-"))
    session = Session(args, workdir)
    t0 = time.monotonic()
    try:
        if set(args.only) - {"schema", "tenants"}:  # these phases start their own brokers
            session.start()
            measure(session)
        if "schema" in args.only and "keystream" in args.brokers:
            schema.phase(session)
        if "tenants" in args.only and "keystream" in args.brokers:
            tenants.phase(session)
    finally:
        session.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = list(session.rows.values())
    for row in rows:
        if row["phase"] in ("schema", "registry"):
            schema_report.summarize_row(row)
            continue
        if row["phase"] in tenants.PHASES:
            tenants.summarize_row(row)
            continue
        report.summarize_row(row, args.brokers)
        report.summarize_tls(row)
        report.summarize_durable(row)
        report.summarize_restart(row)
    print()
    print(report.render(rows, args.brokers, session.info))
    print("\n".join(schema_report.lines(rows, session.info)))
    print("\n".join(tenants.lines(rows, session.info)))
    out = args.results_dir / f"{started:%Y%m%d-%H%M%S}.json"
    report.write_json(out, {
        "started": started.isoformat(timespec="seconds"), "seconds": time.monotonic() - t0,
        "machine": report.machine(), "args": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "brokers": session.info, "rows": rows,
    })
    print(f"\nresults: {out}" + (f"\nbroker logs: {workdir}" if args.keep else ""))
    failed = any(not s.get("complete") for r in rows for ss in r["samples"].values() for s in ss)
    return 1 if failed or any("start_error" in i for i in session.info.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
