"""Start-up work on a partition directory: discard interrupted compaction output, find the
segments, and after an unclean shutdown verify batches by CRC, truncating a torn or corrupt tail.
"""

from __future__ import annotations

import logging
import os

from keystream.broker.log.fileio import remove_quietly
from keystream.broker.log.segment import Segment
from keystream.broker.records import ATTRIBUTES_OFFSET, HEADER_SIZE, crc32c, parse_header

log = logging.getLogger(__name__)
SCAN_WINDOW = 1 << 20
CLEANED_SUFFIX = ".log.cleaned"


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


def recover_segment(seg: Segment, min_offset: int) -> bool:
    """Check every batch by CRC and offset order, rebuild the indexes, cut at the first bad byte.

    Returns True when bytes were truncated (a torn write or corruption).
    """
    seg.index.reset()
    seg.timeindex.reset()
    seg.index.close()
    seg.timeindex.close()
    seg.max_timestamp, seg.offset_of_max_timestamp, seg.bytes_since_index = -1, -1, 0
    seg.first_batch_timestamp = None
    pos, next_offset = 0, max(min_offset, seg.base_offset)
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
        data = window[off : off + h.size] if off + h.size <= len(window) else seg.read(pos, h.size)
        if len(data) != h.size or crc32c(data[ATTRIBUTES_OFFSET:]) != h.crc:
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
    seg.index.write_all()
    seg.timeindex.write_all()
    return truncated

