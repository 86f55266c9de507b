"""Keep an ingest process's C heap from holding on to memory it no longer uses.

The Python objects of a batch die with the batch (the traced Python heap of a worker swung
between about 7 and 17 MB over a 300,000-event run, with no trend). What grew was the
process's resident size beneath it: glibc's malloc keeps freed memory for reuse, and two of
its habits turn a worker's transient buffers (a Kafka fetch response, a batch's column
arrays, the blobs of a merge of stored chunks) into resident memory that stays:

- its mmap threshold adapts upwards (from 128 KiB up to 32 MiB) each time a large block is
  freed, so after the first big merge the later big buffers come from the heap instead of
  their own mappings, and freeing them leaves holes that only shrink the heap if they sit at
  its top;
- each thread that allocates gets its own arena (up to 8 per CPU), and the Kafka client's
  threads keep theirs half empty.

So an ingest process fixes the threshold (big buffers get their own mappings, which go back
to the system when freed), keeps two arenas, and asks malloc to give back free pages every
few seconds (:func:`give_back`, which costs about a millisecond), and collects the cyclic
garbage that its rare collector runs leave (:func:`collect_cycles`, everywhere). The malloc
settings are glibc only; elsewhere they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import time

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # blocks this big or bigger get their own mapping
TRIM_THRESHOLD = 4 * 2**20  # free memory at the heap's top kept for reuse, at most
ARENA_MAX = 2
# Seconds between full collections of cyclic garbage (see collect_cycles).
COLLECT_EVERY = 1.0
# Set to 0 to leave glibc's own behaviour (to compare, or if it ever misbehaves).
SWITCH = "BLUEBROKER_INGEST_MALLOC_TUNING"


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or os.environ.get(SWITCH, "1") == "0":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  # present only in glibc (not musl)
        libc.mallopt  # noqa: B018
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold, its trim threshold and its number of arenas for this
    process (see the module's text); returns whether they were set."""
    if _LIBC is None:
        return False
    done = all(
        _LIBC.mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_ARENA_MAX, ARENA_MAX),
        )
    )
    if not done:
        log.warning("could not tune malloc for ingest; memory may stay high after spikes")
    return done


def give_back() -> None:
    """Collect cyclic garbage (:func:`collect_cycles`), then return the free pages of every
    malloc arena to the system (``malloc_trim(0)``)."""
    collect_cycles()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_last_collect = time.monotonic()


def collect_cycles(now: float | None = None) -> bool:
    """Collect cyclic garbage of every generation, at most once per ``COLLECT_EVERY`` seconds;
    returns whether it collected.

    An ingest process runs the cyclic collector rarely (``tune_gc_for_ingest``: a batch's
    documents make no cycles), but kafka-python's fetch responses do: each one (its
    ``PartitionData`` holding the 2 MiB of records as fetched) outlived its use in a cycle,
    was promoted to the oldest generation and waited there for a full collection, which
    those thresholds almost never start. A SQLite worker held 15 of them (30 MB) after
    100 s and grew by 25-45 MB over a 1,000,000-event run (+5 MB still with a collection
    every 10 s: a fetch a second waits that long). A full collection scans only what was
    not frozen at start-up: about 6 ms for 100,000 objects, so once a second costs < 1 %."""
    global _last_collect
    now = time.monotonic() if now is None else now
    if now - _last_collect < COLLECT_EVERY:
        return False
    _last_collect = now
    gc.collect()
    return True
