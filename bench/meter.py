"""Wall clock and CPU around one measured phase, for the broker and for this client process.

The client's own CPU is recorded too: when it is near one core the run is client-bound and the
wall-clock ratio says little, while the broker's CPU per record still does.
"""

from __future__ import annotations

import resource
import time

from bench import procstat
from bench.brokers import Broker


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Call begin() just before the load starts and end() as soon as it is acknowledged or read."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._start: tuple[float, procstat.CpuSample, float] | None = None

    def begin(self) -> None:
        self._start = (time.monotonic(), procstat.cpu_sample(self.broker.pid), _client_cpu())

    def end(self) -> dict[str, float | str]:
        assert self._start is not None, "Meter.end() without begin()"
        wall, cpu, client = time.monotonic(), procstat.cpu_sample(self.broker.pid), _client_cpu()
        broker_cpu, source = procstat.cpu_delta(self._start[1], cpu)
        return {
            "seconds": wall - self._start[0],
            "broker_cpu_s": broker_cpu,
            "broker_cpu_clock": source,
            "client_cpu_s": client - self._start[2],
            "broker_peak_rss_mib": self.broker.peak_rss_mib(),
        }
