"""Small crash-safe file helpers: whole-file replace via temp + fsync + rename, positional I/O loops."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any


def fsync_dir(path: str) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so a crash leaves the old or the new file, never a mix."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pwrite_all(fd, data, 0)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def write_json(path: str, obj: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(obj, sort_keys=True).encode(), durable=durable)


def read_json(path: str) -> Any | None:
    """The parsed file, or None when it is missing or unreadable (callers fall back to recovery)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, pos: int) -> None:
    """os.pwrite until every byte is written (short writes happen on full disks and signals)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, pos)
        if n <= 0:
            raise OSError("short write")
        view = view[n:]
        pos += n


def pread_exact(fd: int, size: int, pos: int) -> bytes:
    """os.pread that retries short reads; returns fewer bytes only at end of file."""
    data = os.pread(fd, size, pos)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, pos + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def read_text_checkpoint(path: str) -> list[list[str]] | None:
    """Kafka's checkpoint text format: version line, count line, then one entry per line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if len(lines) < 2 or lines[0].strip() != "0":
            return None
        count = int(lines[1])
        entries = [line.split() for line in lines[2 : 2 + count]]
        return entries if len(entries) == count else None
    except (OSError, ValueError):
        return None


def write_text_checkpoint(path: str, entries: list[tuple], *, durable: bool = True) -> None:
    body = ["0", str(len(entries))] + [" ".join(str(x) for x in e) for e in entries]
    atomic_write(path, ("\n".join(body) + "\n").encode(), durable=durable)
