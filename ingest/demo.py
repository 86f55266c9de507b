"""A simulated beamline that keeps acquiring runs into a catalog, for demos and first steps.

A real ``bluesky.RunEngine`` drives ``ophyd.sim`` motors and detectors and an area detector
that writes HDF5 files next to the catalog, so every kind of document (events, baseline,
resource/datum, stream_resource/stream_datum) flows through the one writer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .writer import CatalogWriter


def plans(data_dir: Path) -> Iterator[tuple[str, object]]:
    """An endless round of typical plans: (description, plan generator)."""
    from bluesky import plans as bp
    from bluesky import preprocessors as bpp
    from ophyd.sim import det1, det2, det4, motor, motor1, motor2

    from .simulated import HDF5Camera, StreamHDF5Camera

    data_dir.mkdir(parents=True, exist_ok=True)
    for i in itertools.count():
        cam = HDF5Camera("cam", data_dir, shape=(64, 64))
        scam = StreamHDF5Camera("scam", data_dir, shape=(32, 48), dtype="float32")
        yield from (
            (
                "scan det1 det2 vs motor",
                bpp.baseline_wrapper(
                    bp.scan([det1, det2], motor, -1, 1, 21, md={"sample": f"Cu foil {i}"}),
                    [motor1, motor2],
                ),
            ),
            (
                "count area detector (HDF5, resource/datum)",
                bp.count([cam, det1], num=5, md={"sample": f"Fe2O3 {i}"}),
            ),
            ("grid scan det4 det1", bp.grid_scan([det4, det1], motor1, -1, 1, 5, motor2, -1, 1, 5)),
            (
                "count streaming detector (HDF5, stream_resource)",
                bp.count([scam, det1], num=4, md={"sample": f"Si {i}"}),
            ),
        )


def acquire(
    writer: CatalogWriter,
    data_dir: Path,
    runs: int | None,
    interval: float,
    report: Callable[[str], None] = print,
) -> int:
    """Acquire ``runs`` runs (forever when None), ``interval`` seconds apart."""
    from bluesky import RunEngine

    RE = RunEngine({"beamline": "bmm", "operator": "demo"}, context_managers=[])
    RE.subscribe(writer)
    done = 0
    for description, plan in plans(data_dir):
        if runs is not None and done >= runs:
            break
        (uid,) = RE(plan)
        run = writer.catalog[writer.path][uid]
        counts = run.metadata["summary"]["num_events"]
        report(
            f"run {done + 1}: {description}: uid {uid[:8]} scan_id "
            f"{run.metadata['start']['scan_id']} events {counts}"
        )
        done += 1
        if runs is None or done < runs:
            time.sleep(interval)
    return done
