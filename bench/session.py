"""One benchmark session: the brokers it started, the rows measured so far, and failure capture.

Kept apart from the phases so that a broker which dies or never starts turns into failed samples
with its exit code and log tail, never into a crashed run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import brokers as launch
from bench import produce, topics
from bench.brokers import Broker, BrokerError

TLS = "keystream-tls"  # the mTLS Keystream of `--tls`; compared with the plaintext "keystream"
DURABLE = "keystream-durable"  # the log.flush.interval.messages=1 Keystream of the durable phase


class Session:
    """The brokers of one run, the rows measured so far, and the extra Keystream instances."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rows: dict[str, dict] = {}
        self.brokers: dict[str, Broker] = {}
        self.extra: dict[int, Broker] = {}  # Keystream per join delay other than the base one
        self.durable: Broker | None = None  # Keystream with log.flush.interval.messages=1 (durable phase)
        self.info: dict[str, dict] = {}
        self.codecs: dict[tuple[str, str, int], str] = {}

    def make(self, name: str, delay_ms: int = 0) -> Broker:
        if name == "tansu":
            return launch.tansu(self.workdir)
        if name == TLS:
            return launch.keystream_tls(self.workdir, delay_ms, dict(self.args.keystream_prop),
                                        dict(self.args.keystream_client_prop))
        return launch.keystream(self.workdir, delay_ms, dict(self.args.keystream_prop),
                                dict(self.args.keystream_client_prop),
                                name="keystream" if delay_ms == self.base_delay else f"keystream-delay{delay_ms}")

    @property
    def base_delay(self) -> int:
        return self.args.join_delays[0] if self.args.join_delays else 0

    @property
    def started(self) -> list[str]:
        """Every broker of the run: the compared ones, then the mTLS Keystream when `--tls`."""
        return [*self.args.brokers, *([TLS] if self.args.tls else [])]

    def start(self) -> None:
        for name in self.started:
            broker = self.make(name, self.base_delay)
            self.brokers[name] = broker
            self.info[name] = {"version": launch.version_of(name), "argv": broker.argv, "port": broker.port}
            try:
                broker.start()
                print(f"started {name} pid {broker.pid} on {broker.bootstrap}", flush=True)
            except BrokerError as exc:
                self.info[name]["start_error"] = str(exc)
                print(f"FAILED to start {name}: {exc}", flush=True)
                self.info[name]["exit_code"] = broker.stop()
                broker.proc = None  # every later run of this broker is reported as 'did not start'

    def join_broker(self, name: str, delay_ms: int) -> Broker:
        if name != "keystream" or delay_ms == self.base_delay:
            return self.brokers[name]
        if delay_ms not in self.extra:
            broker = self.make(name, delay_ms)
            self.extra[delay_ms] = broker
            self.info[broker.name] = {"argv": broker.argv, "port": broker.port}
            try:
                broker.start()
            except BrokerError as exc:
                self.info[broker.name].update(start_error=str(exc), exit_code=broker.stop())
                broker.proc = None
                raise
        return self.extra[delay_ms]

    def durable_broker(self) -> Broker:
        """Keystream that fsyncs before answering every acks=-1 produce, started on first use."""
        if self.durable is None:
            props = {**dict(self.args.keystream_prop), "log.flush.interval.messages": "1"}
            broker = launch.keystream(self.workdir, self.base_delay, props, dict(self.args.keystream_client_prop),
                                      name=DURABLE)
            self.durable = broker
            self.info[DURABLE] = {"version": launch.version_of("keystream"), "argv": broker.argv,
                                  "port": broker.port, "props": props}
            try:
                broker.start()
                print(f"started {DURABLE} pid {broker.pid} on {broker.bootstrap}", flush=True)
            except BrokerError as exc:
                self.info[DURABLE].update(start_error=str(exc), exit_code=broker.stop())
                broker.proc = None
        return self.durable

    def stop(self) -> None:
        extra = [*self.extra.values(), *([self.durable] if self.durable else [])]
        for name, broker in [*self.brokers.items(), *((b.name, b) for b in extra)]:
            if broker.proc is not None:  # None: never started, or already stopped after a failed start
                peak = broker.peak_rss_mib() if broker.alive() else None
                code = broker.stop()
                entry = self.info.setdefault(name, {})
                entry.update(peak_rss_mib=peak or entry.get("peak_rss_mib", 0), exit_code=code,
                             log=str(broker.log_path) if self.args.keep else None)

    def codec(self, broker: Broker, compression: str, size: int) -> str:
        """What the client really sends to this broker for a compression setting, checked once."""
        key = (broker.name, compression, size)
        if key not in self.codecs:
            topic = topics.unique_name("codec")
            try:
                topics.create(broker, topic, 1)
                self.codecs[key] = produce.wire_codec(broker, topic, compression, size)
            except Exception as exc:
                self.codecs[key] = f"unknown ({type(exc).__name__}: {exc})"
            topics.delete(broker, topic)
            self.info.setdefault(broker.name, {}).setdefault("wire_codec", {})[f"{compression} {size}B"] = self.codecs[key]
        return self.codecs[key]

    def order(self, repeat: int, *, tls: bool = False) -> list[str]:
        """Brokers in the order of this repeat (flipped on odd repeats); `tls` adds the mTLS one."""
        names = self.started if tls else list(self.args.brokers)
        return names if repeat % 2 == 0 else names[::-1]

    def record(self, key: str, phase: str, label: str, params: dict, broker: str, sample: dict) -> None:
        row = self.rows.setdefault(key, {"phase": phase, "label": label, "params": params, "samples": {}})
        row["samples"].setdefault(broker, []).append(sample)
        error = (sample.get("first_error") or "incomplete").splitlines()[0]
        status = "ok" if sample.get("complete") else f"FAILED: {error}"
        print(f"  {broker:<10} {label:<30} {_brief(sample)} {status}", flush=True)


def _brief(sample: dict) -> str:
    if sample.get("join_ms") is not None:
        return f"{sample['join_ms']:.0f} ms"
    if sample.get("e2e_p50_ms") is not None:
        return f"e2e p50 {sample['e2e_p50_ms']:.1f} ms p99 {sample['e2e_p99_ms']:.1f} ms"
    if sample.get("seconds"):
        flushes = sample.get("device_flushes")
        tail = f" disk flushes {flushes / sample['seconds']:,.0f}/s" if flushes is not None else ""
        return f"{sample['records'] / sample['seconds']:,.0f} rec/s cpu {sample['broker_cpu_s']:.2f}s{tail}"
    return ""


def guarded(broker: Broker, fn, *a, **kw) -> dict:
    """Run one measurement; a broker failure becomes a failed sample, never a crashed run."""
    if broker.proc is None:
        return {"complete": False, "first_error": f"{broker.name} did not start (see DID NOT START below)"}
    try:
        broker.check_alive()
        return fn(*a, **kw)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if not broker.alive() and broker.proc is not None:
            detail += f" (broker exited with code {broker.proc.returncode})\n{broker.log_tail()}"
        return {"complete": False, "first_error": detail}
