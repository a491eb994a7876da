"""Start-up work on a partition directory: discard interrupted compaction output, find the
segments, and after an unclean shutdown verify batches by CRC, truncating a torn or corrupt tail.

What an unclean start must verify: everything from the recovery point (below it the data was
fsynced), unless the machine has not rebooted since the last checkpoint was written. The
checkpoint records the boot it was written in (`/proc/sys/kernel/random/boot_id`) and the active
segment's size; every byte below that size was written by a completed `pwrite` before it, so after
a process crash (`kill -9`, OOM) in the same boot those bytes are intact in the page cache and only
what follows them — the active segment's tail and segments rolled since — is read and CRC-checked.
After a reboot (power loss: unflushed pages may be lost) the boot differs and recovery starts at
the recovery point as in Kafka. LogManager.load of 1,000 partitions with 5 GB written since their
recovery point, in the page cache: 6.1 s (4.5 s CPU, every byte read and CRC-checked) -> 0.7 s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from keystream.broker.errors import KafkaError
from keystream.broker.log.fileio import remove_quietly
from keystream.broker.log.index import CorruptIndex
from keystream.broker.log.segment import Segment
from keystream.broker.records import ATTRIBUTES_OFFSET, HEADER_SIZE, crc32c, parse_header

log = logging.getLogger(__name__)
SCAN_WINDOW = 1 << 20
CLEANED_SUFFIX = ".log.cleaned"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""  # unknown: never trust unflushed bytes


BOOT_ID = _boot_id()


def tidy_directory(directory: str) -> None:
    """Remove what an interrupted write or compaction left: the old segment is still intact then."""
    for name in os.listdir(directory):
        if name.endswith((CLEANED_SUFFIX, ".tmp", ".deleted")):
            remove_quietly(os.path.join(directory, name))


def segment_bases(directory: str) -> list[int]:
    bases = []
    for name in os.listdir(directory):
        if name.endswith(".log") and len(name) == 24 and name[:20].isdigit():
            bases.append(int(name[:20]))
    return sorted(bases)


def first_unverified(segs: list[Segment], cp: Mapping) -> tuple[int, int]:
    """(segment index, file position) where an unclean start's CRC check must begin."""
    rp = int(cp.get("recovery_point", 0))
    found = (max((i for i, s in enumerate(segs) if s.base_offset <= rp), default=0), 0)
    if not BOOT_ID or cp.get("boot_id") != BOOT_ID or "active_base" not in cp:
        return found
    base, size = int(cp["active_base"]), int(cp["active_size"])
    for i, s in enumerate(segs):
        if s.base_offset == base and s.size >= size:
            written = (i, size) if size < s.size or i == len(segs) - 1 else (i + 1, 0)
            return max(found, written)
        if s.base_offset >= base:
            return max(found, (i, 0))
    return found


def recover_log(segs: list[Segment], cp: Mapping) -> None:
    """Verify the segments from `first_unverified` on; cut the log at the first bad batch."""
    first, start = first_unverified(segs, cp)
    prev_end = segs[first].base_offset
    for i in range(first, len(segs)):
        seg = segs[i]
        seg.active = i == len(segs) - 1
        if recover_segment(seg, prev_end, start if i == first else 0):
            for later in segs[i + 1:]:
                later.delete_files()
            del segs[i + 1:]
            seg.active = True
            break
        prev_end = seg.end_offset()


def _resume(seg: Segment, start: int) -> tuple[int, int] | None:
    """Keep the indexes' entries below file position `start` and learn the segment's state there
    from the headers after the last kept entry: (offset at `start`, index entries on disk), or None
    (check from 0)."""
    if not (os.path.exists(seg.index.path) and os.path.exists(seg.timeindex.path)):
        return None  # a missing index: rebuilt by the full check
    try:
        seg.index.load(seg.size)
        seg.timeindex.load(seg.size)
    except CorruptIndex:
        return None
    ix, ti = seg.index, seg.timeindex
    on_disk = len(ix) + len(ti)
    keep = sum(1 for v in ix.values if v < start)
    from_pos = ix.values[keep - 1] if keep else 0
    next_offset, max_ts, max_off = seg.base_offset, -1, -1
    if keep:
        next_offset = ix.keys[keep - 1] + 1  # index keys are the indexed batch's last offset
    pos = from_pos
    try:
        for h in seg.iter_headers(from_pos, start):
            if h.position + h.size > start:
                return None
            if h.max_timestamp > max_ts:
                max_ts, max_off = h.max_timestamp, h.last_offset
            next_offset, pos = h.next_offset, h.position + h.size
    except KafkaError:  # a bad batch length: the checkpoint does not describe this file
        return None
    if pos != start:
        return None
    ix.truncate_to_entries(keep)
    ti.truncate_to_entries(sum(1 for v in ti.values if v < next_offset))
    last = ti.last
    seg.max_timestamp, seg.offset_of_max_timestamp = last if last is not None else (-1, -1)
    if max_ts > seg.max_timestamp:
        seg.max_timestamp, seg.offset_of_max_timestamp = max_ts, max_off
    seg.bytes_since_index = start - from_pos
    seg.first_batch_timestamp = parse_header(seg.read(0, HEADER_SIZE)).max_timestamp
    return next_offset, on_disk


def recover_segment(seg: Segment, min_offset: int, start: int = 0) -> bool:
    """Check every batch from file position `start` by CRC and offset order, index them, cut at the
    first bad byte. `start` > 0 trusts what precedes it (see the module docstring).

    Returns True when bytes were truncated (a torn write or corruption).
    """
    resumed = _resume(seg, start) if start else None
    on_disk = resumed[1] if resumed is not None else -1
    if seg.size == 0 and os.path.exists(seg.index.path) and os.path.exists(seg.timeindex.path):
        on_disk = 0  # a new empty segment (Segment made its empty indexes): nothing to rewrite
    if resumed is None:
        start = 0
        seg.index.reset()
        seg.timeindex.reset()
        seg.max_timestamp, seg.offset_of_max_timestamp, seg.bytes_since_index = -1, -1, 0
        seg.first_batch_timestamp = None
    seg.index.close()
    seg.timeindex.close()
    pos, next_offset = start, max(min_offset, resumed[0] if resumed is not None else seg.base_offset)
    window, wstart = b"", 0
    while pos < seg.size:
        if pos + HEADER_SIZE > wstart + len(window):
            window, wstart = seg.read(pos, min(SCAN_WINDOW, seg.size - pos)), pos
            if len(window) < HEADER_SIZE:
                break
        off = pos - wstart
        h = parse_header(window, off)
        if h.magic != 2 or h.batch_length < HEADER_SIZE - 12 or pos + h.size > seg.size:
            break
        if h.base_offset < next_offset or h.last_offset_delta < 0:
            break
        if off + h.size <= len(window):
            data = memoryview(window)[off + ATTRIBUTES_OFFSET : off + h.size]
        else:
            data = memoryview(seg.read(pos, h.size))[ATTRIBUTES_OFFSET:]
        if len(data) != h.size - ATTRIBUTES_OFFSET or crc32c(data) != h.crc:
            break
        seg._index_batch(h, pos, write=False)
        if seg.first_batch_timestamp is None:
            seg.first_batch_timestamp = h.max_timestamp
        next_offset = h.next_offset
        pos += h.size
    truncated = pos < seg.size
    if truncated:
        log.warning("truncating %s from %d to %d bytes after an unclean shutdown", seg.log_path, seg.size, pos)
        seg.truncate_to(pos, next_offset)
    seg.next_offset = next_offset
    if not seg.active:
        seg._final_time_entry(write=False)
    # Not fsynced: a lost or short index only costs a longer scan (a missing one is rebuilt).
    if truncated or on_disk != len(seg.index) + len(seg.timeindex):
        seg.index.write_all(durable=False)
        seg.timeindex.write_all(durable=False)
    return truncated
