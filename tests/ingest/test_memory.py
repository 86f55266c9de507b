"""An ingest worker's memory must not grow with the length of a run (issue 20): whatever the
writer keeps between batches (caches of runs, descriptors, streams) is per run or per stream,
never per event. The Python heap is measured with tracemalloc in a fresh process (writer_heap.py)
after each batch; allocations count bytes, not time, so the load of the machine does not
change the verdict. (Resident size, which glibc's malloc also shapes, is measured by
benchmarks/ingest_memory.py over a million events.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bluebroker.ingest import native_memory

SCRIPT = Path(__file__).with_name("writer_heap.py")
BATCHES, PER_BATCH = 60, 200
WARM_UP = 20  # the first merges of stored chunks load their code and caches
# 8,000 events go by after the warm-up: a leak of 25 bytes per event would pass this bound.
LIMIT = 200 * 1024


def heap_after_each_batch(uri: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), uri, str(BATCHES), str(PER_BATCH)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_python_heap_does_not_grow_with_events(catalog_uri):
    heap = heap_after_each_batch(catalog_uri)
    assert len(heap) == BATCHES
    settled = heap[WARM_UP:]
    growth = max(settled) - settled[0]
    assert growth < LIMIT, (
        f"the writer's Python heap grew {growth / 1024:.0f} KiB over "
        f"{(BATCHES - WARM_UP) * PER_BATCH} events after warm-up: {[h // 1024 for h in heap]}"
    )


@pytest.mark.skipif(native_memory._LIBC is None, reason="glibc only")
def test_malloc_tuning_applies_and_trims():
    assert native_memory.tune_malloc()
    native_memory.give_back()  # must not fail, whatever the heap holds


def test_cyclic_garbage_is_collected_though_the_collector_runs_rarely():
    """A fetch response kept alive by a reference cycle, as kafka-python's are, must not wait
    for a full collection that an ingest process's thresholds (tune_gc_for_ingest) almost
    never start: the worker calls collect_cycles between batches."""
    import gc
    import time
    import weakref

    class Response:
        pass

    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1000)
    try:
        response = Response()
        response.records = bytes(2 * 2**20)
        response.self = response  # the cycle
        gone = weakref.ref(response)
        gc.collect(1)  # survived the young generations, as an in-use response does
        del response
        now = time.monotonic() + 2 * native_memory.COLLECT_EVERY
        assert gone() is not None  # nothing but a full collection frees it
        assert native_memory.collect_cycles(now)
        assert gone() is None
        assert not native_memory.collect_cycles(now)  # at most once per COLLECT_EVERY
    finally:
        gc.set_threshold(*thresholds)
