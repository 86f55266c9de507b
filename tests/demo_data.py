"""The demo's data for tests: ``bluebroker demo``'s own plans (ingest/demo.py) acquired by a
real RunEngine with ophyd.sim devices: a scan of det1/det2 with a baseline, a count of the
HDF5 area detector ``cam`` (5 frames of 64x64 uint16) with det1, a grid scan, and a count of
the streaming detector ``scam`` (4 frames of 32x48 float32) with det1."""

from __future__ import annotations

from pathlib import Path

ONE_ROUND = 4  # the demo's plans come round after four runs


def acquire_demo(catalog, files: Path, runs: int = ONE_ROUND) -> list[str]:
    """Run the demo's first ``runs`` plans into ``catalog``'s ``bmm/raw``, detector files in
    ``files`` (which must lie in the catalog's data roots); returns the uids, oldest first."""
    from bluebroker.ingest import CatalogWriter
    from bluebroker.ingest.demo import Acquisition

    acquisition = Acquisition(CatalogWriter(catalog, "bmm/raw"), files, report=lambda _: None)
    try:
        done = acquisition.run(runs, 0)
    finally:
        acquisition.stop()
    assert done == runs, f"the demo acquired {done} of {runs} runs"
    return list(catalog["bmm/raw"])
