"""Broker CPU time and memory read from /proc, so the bench needs no extra dependency.

CPU is summed over the broker's process tree: a broker that forks helpers must not look cheaper
than it is. A fast peer spends only a fraction of a second of CPU on a run, so the per-thread
scheduler clock (nanoseconds) is used where it can be trusted, not only the 10 ms tick.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """The pid and every live descendant, found through the parent pid of each process."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


@dataclass(frozen=True)
class CpuSample:
    """Tick-based totals (include exited threads) and per-thread nanoseconds (precise)."""

    ticks_s: float
    thread_ns: dict[int, int]
    processes: int


def cpu_sample(pid: int) -> CpuSample:
    ticks, threads, members = 0, {}, descendants(pid)
    for member in members:
        fields = _stat_fields(member)
        if fields:
            # utime, stime, cutime, cstime are fields 14-17 of stat; index 11-14 here.
            ticks += sum(int(v) for v in fields[11:15])
        for task in (PROC / str(member) / "task").glob("*/schedstat"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                threads[int(task.parent.name)] = int(task.read_text().split()[0])
    return CpuSample(ticks / CLK_TCK, threads, len(members))


def cpu_delta(before: CpuSample, after: CpuSample) -> tuple[float, str]:
    """CPU seconds between two samples, and which clock gave them.

    The per-thread scheduler clock is exact but forgets threads that exited in between; the tick
    clock remembers them but is only good to a tick per reading. Use the exact one when the two
    agree within the tick error, the tick one otherwise.
    """
    ticks = after.ticks_s - before.ticks_s
    if not after.thread_ns:
        return ticks, "ticks"
    exact = sum(ns - before.thread_ns.get(tid, 0) for tid, ns in after.thread_ns.items()) / 1e9
    tolerance = 2 * max(before.processes, after.processes) / CLK_TCK + 0.01 * ticks
    return (exact, "schedstat") if abs(exact - ticks) <= tolerance else (ticks, "ticks")


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss_mib(pid: int) -> float:
    """Current resident set size of the tree, in MiB."""
    return sum(_status_kib(p, "VmRSS") for p in descendants(pid)) / 1024


def peak_rss_mib(pid: int) -> float:
    """Peak RSS since start (VmHWM) of the tree, in MiB: the high-water mark the issue caps."""
    return sum(_status_kib(p, "VmHWM") for p in descendants(pid)) / 1024
