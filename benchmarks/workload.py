"""Deterministic Bluesky document workload shared by every benchmark side.

N runs (default 100) of M events (default 1000).  Each run is::

    start      plan_name="scan", scan_id=<run index + 1>
    descriptor one stream, "primary", 5 scalar float fields f0..f4
    event * M  single ``event`` documents (never pages)
    stop       exit_status="success"

Documents are composed with ``event_model.compose_run`` (no RunEngine: it is
far too slow for 100k events).  Every uid, time and value is derived from
``seed``, so two calls with the same arguments produce identical documents
in any process.  This module imports only the standard library,
``event_model`` and ``numpy``: it is imported from both the bluebroker venv
and the peer (Tiled) venv.

    from benchmarks.workload import workload
    for run_docs in workload(runs=5, events=1000):
        for name, doc in run_docs:
            callback(name, doc)
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import event_model
import numpy as np

DEFAULT_RUNS = 100
DEFAULT_EVENTS = 1000
DEFAULT_SEED = 20240101
STREAM = "primary"
FIELDS = tuple(f"f{i}" for i in range(5))
OBJECT_NAME = "sim"
BASE_TIME = 1_700_000_000.0  # fixed epoch so times are reproducible
EVENT_PERIOD = 0.01  # seconds between events inside a run
RUN_GAP = 60.0  # seconds between the ends of consecutive runs


def _uid(seed: int, *parts: object) -> str:
    """A reproducible UUID4-shaped uid from the seed and a path of parts."""
    key = ":".join(str(p) for p in (seed, *parts)).encode()
    return str(uuid.UUID(bytes=hashlib.md5(key).digest(), version=4))


def _run_start_time(index: int, events: int) -> float:
    return BASE_TIME + index * (events * EVENT_PERIOD + RUN_GAP)


def data_keys() -> dict[str, dict]:
    return {
        f: {
            "dtype": "number",
            "shape": [],
            "source": f"SIM:{f.upper()}",
            "object_name": OBJECT_NAME,
            "precision": 6,
        }
        for f in FIELDS
    }


def run_values(index: int, events: int = DEFAULT_EVENTS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The (events, 5) float64 array of f0..f4 values of run ``index``."""
    rng = np.random.default_rng([seed, index])
    return rng.standard_normal((events, len(FIELDS)))


def run_uid(index: int, seed: int = DEFAULT_SEED) -> str:
    return _uid(seed, index, "start")


def run_documents(
    index: int,
    events: int = DEFAULT_EVENTS,
    seed: int = DEFAULT_SEED,
    validate_events: bool = False,
) -> Iterator[tuple[str, dict]]:
    """Yield the ``(name, doc)`` pairs of run ``index`` (0-based).

    start, descriptor and stop are schema-validated by event_model; events are
    not by default (validation costs more than composing them), which can be
    turned on with ``validate_events``.
    """
    t0 = _run_start_time(index, events)
    bundle = event_model.compose_run(
        uid=run_uid(index, seed),
        time=t0,
        metadata={
            "plan_name": "scan",
            "scan_id": index + 1,
            "detectors": [OBJECT_NAME],
            "motors": [],
            "num_points": events,
            "plan_args": {"num": events},
            "hints": {"dimensions": [[["time"], STREAM]]},
            "purpose": "bluebroker benchmark workload",
        },
    )
    yield "start", bundle.start_doc

    desc_bundle = bundle.compose_descriptor(
        name=STREAM,
        data_keys=data_keys(),
        object_keys={OBJECT_NAME: list(FIELDS)},
        hints={OBJECT_NAME: {"fields": list(FIELDS)}},
        configuration={OBJECT_NAME: {"data": {}, "timestamps": {}, "data_keys": {}}},
        time=t0,
        uid=_uid(seed, index, "descriptor", STREAM),
    )
    yield "descriptor", desc_bundle.descriptor_doc

    compose_event = desc_bundle.compose_event
    values = run_values(index, events, seed).tolist()
    for i, row in enumerate(values):
        t = t0 + (i + 1) * EVENT_PERIOD
        yield (
            "event",
            compose_event(
                data=dict(zip(FIELDS, row, strict=True)),
                timestamps={f: t for f in FIELDS},
                seq_num=i + 1,
                uid=_uid(seed, index, "event", i),
                time=t,
                validate=validate_events,
            ),
        )

    yield (
        "stop",
        bundle.compose_stop(
            exit_status="success",
            reason="",
            uid=_uid(seed, index, "stop"),
            time=t0 + (events + 1) * EVENT_PERIOD,
        ),
    )


def workload(
    runs: int = DEFAULT_RUNS,
    events: int = DEFAULT_EVENTS,
    seed: int = DEFAULT_SEED,
    validate_events: bool = False,
) -> Iterator[Iterator[tuple[str, dict]]]:
    """Yield, for each run in order, an iterator of its ``(name, doc)`` pairs."""
    for index in range(runs):
        yield run_documents(index, events, seed, validate_events)


def iter_documents(
    runs: int = DEFAULT_RUNS,
    events: int = DEFAULT_EVENTS,
    seed: int = DEFAULT_SEED,
    validate_events: bool = False,
) -> Iterator[tuple[str, dict]]:
    """All ``(name, doc)`` pairs of the whole workload as one flat stream."""
    for run_docs in workload(runs, events, seed, validate_events):
        yield from run_docs


if __name__ == "__main__":  # quick self-check: python benchmarks/workload.py
    import collections
    import sys
    import time

    t = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    for name, _doc in iter_documents(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        counts[name] += 1
    print(dict(counts), f"{time.perf_counter() - t:.2f}s")
