"""A longer schemathesis run than the suite's: the published OpenAPI schema against a real
server holding runs a real RunEngine wrote, with many examples per route.

    .venv/bin/python benchmarks/fuzz_api.py                       # SQLite, 500 examples
    .venv/bin/python benchmarks/fuzz_api.py --examples 2000 --seed 7
    .venv/bin/python benchmarks/fuzz_api.py --catalog postgresql://postgres@127.0.0.1/test

With a PostgreSQL URI the runs go to a fresh schema of that database, dropped afterwards.
Prints each failure (a 5xx, or a status, media type or body the schema does not describe)
with the curl command that reproduces it, and exits 1 if there was any. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bluebroker.catalog import Catalog, open_catalog  # noqa: E402
from bluebroker.server.run import background_server  # noqa: E402
from tests.server.test_schemathesis import fuzz  # noqa: E402


@contextlib.contextmanager
def catalog_at(uri: str | None, folder: Path) -> Iterator[Catalog]:
    """A new, empty catalog: a SQLite file in ``folder``, or a new schema of a PostgreSQL
    database (dropped when done); it reads detector files from ``folder``."""
    if uri is None or not uri.startswith("postgresql"):
        cat = open_catalog(
            uri or f"sqlite:///{folder}/catalog.db", create=True, data_roots=[folder]
        )
        yield cat
        cat.close()
        return
    import psycopg

    schema = f"fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in uri else "?"
    cat = open_catalog(
        f"{uri}{sep}options=-csearch_path%3D{schema}", create=True, data_roots=[folder]
    )
    try:
        yield cat
    finally:
        cat.close()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def write_runs(cat: Catalog, folder: Path) -> None:
    """The suite's beamline: a scan with a baseline, an HDF5 area detector, a streaming
    detector and a waveform, each written by a real RunEngine into /bmm/raw."""
    import numpy as np
    from bluesky import RunEngine
    from bluesky import plans as bp
    from bluesky import preprocessors as bpp
    from ophyd.sim import SynSignal, det1, det2, motor, motor1, motor2

    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.simulated import HDF5Camera, StreamHDF5Camera

    engine = RunEngine({}, loop=asyncio.new_event_loop(), context_managers=[])
    engine.subscribe(CatalogWriter(cat, "bmm/raw"))
    cam = HDF5Camera("cam", folder, shape=(6, 5))
    scam = StreamHDF5Camera("scam", folder, shape=(3, 4), dtype="float32")
    wave = SynSignal(func=lambda: np.linspace(0, 1, 7), name="wave")
    engine(bpp.baseline_wrapper(bp.scan([det1, det2], motor, -1, 1, 11), [motor1, motor2]))
    engine(bp.count([cam, det1], num=4))
    engine(bp.count([scam], num=3))
    engine(bp.count([wave], num=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", help="catalog URI (default: SQLite in a temp folder)")
    parser.add_argument("--examples", type=int, default=500, help="fuzzing examples per route")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run with its seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, catalog_at(args.catalog, Path(tmp)) as cat:
        write_runs(cat, Path(tmp))
        with background_server(cat) as url:
            began = time.monotonic()
            report = fuzz(url, args.examples, args.seed)
    took = time.monotonic() - began
    for label, statuses in sorted(report.statuses.items()):
        print(f"{label}: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
    for failure in report.failures:
        print(failure, end="\n\n")
    print(f"{report.requests} requests in {took:.0f} s: {len(report.failures)} failures")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
