"""A simulated beamline that keeps acquiring runs into a catalog, for demos and first steps.

A real ``bluesky.RunEngine`` drives ``ophyd.sim`` motors and detectors and an area detector
that writes HDF5 files next to the catalog, so every kind of document (events, baseline,
resource/datum, stream_resource/stream_datum) flows through the one writer.

``Acquisition.stop()`` may be called from a signal handler: the run in progress is aborted
through the RunEngine (it still gets its stop document) and no new run starts, so Ctrl-C
ends the demo in a moment and leaves a consistent catalog.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

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


def highest_scan_id(writer: CatalogWriter) -> int:
    """The highest scan_id among the runs of the writer's catalog path (0 when none), so a
    restarted demo goes on numbering where it stopped and ``runs[1]`` stays one run."""
    from bluebroker.catalog.schema import runs

    catalog_id = writer.catalog[writer.path].catalog_id
    with writer.catalog.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(runs.c.scan_id)).where(runs.c.catalog_id == catalog_id)
        ).scalar()
    return int(value or 0)


class _QuietAbort(logging.Filter):
    """The RunEngine logs an abort it was asked for with a traceback, and warns about its
    tracing on the way; a stopped demo is not an error."""

    def __init__(self, stopping: threading.Event) -> None:
        super().__init__()
        self.stopping = stopping

    def filter(self, record: logging.LogRecord) -> bool:
        from bluesky.utils import RequestAbort

        if not self.stopping.is_set():
            return True
        asked = record.exc_info and isinstance(record.exc_info[1], RequestAbort)
        return record.levelno >= logging.ERROR and not asked


class Acquisition:
    """Simulated runs into ``writer``'s catalog path, until ``stop()``."""

    def __init__(
        self,
        writer: CatalogWriter,
        data_dir: Path,
        report: Callable[[str], None] = print,
    ) -> None:
        from bluesky import RunEngine

        self.writer = writer
        self.data_dir = data_dir
        self.report = report
        self.done = 0
        self.aborted = False  # a run was cut short by stop()
        self.RE = RunEngine({"beamline": "bmm", "operator": "demo"}, context_managers=[])
        self.RE.md["scan_id"] = highest_scan_id(writer)
        self.RE.subscribe(writer)
        self._stopping = threading.Event()
        logging.getLogger("bluesky").addFilter(_QuietAbort(self._stopping))
        self._stopper = threading.Thread(target=self._abort_when_stopped, daemon=True)
        self._stopper.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """End soon: no new run starts, the one in progress is aborted. Only sets an event,
        so it is safe in a signal handler; a thread of ours talks to the RunEngine."""
        self._stopping.set()

    def _abort_when_stopped(self) -> None:
        self._stopping.wait()
        from bluesky.utils import TransitionError

        if self.RE.state == "running":
            # TransitionError: the run ended meanwhile, there is nothing left to abort
            with contextlib.suppress(TransitionError):
                self.RE.abort("the demo was stopped")

    def run(self, runs: int | None, interval: float) -> int:
        """Acquire ``runs`` runs (until stopped when None), ``interval`` seconds apart;
        returns how many ran to their end."""
        from bluesky.utils import RunEngineInterrupted

        for description, plan in plans(self.data_dir):
            if self.stopping or (runs is not None and self.done >= runs):
                break
            try:
                (uid,) = self.RE(plan)
            except RunEngineInterrupted:
                self.aborted = True
                break
            run = self.writer.catalog[self.writer.path][uid]
            counts = run.metadata["summary"]["num_events"]
            self.done += 1
            self.report(
                f"run {self.done}: {description}: uid {uid[:8]} scan_id "
                f"{run.metadata['start']['scan_id']} events {counts}"
            )
            if runs is None or self.done < runs:
                self._stopping.wait(interval)
        return self.done

    def wait(self) -> None:
        """Block until ``stop()``."""
        self._stopping.wait()
