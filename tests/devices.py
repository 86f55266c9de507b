"""Devices for the tests. The HDF5 cameras live in bluebroker.ingest.simulated (the demo uses
them too); the TIFF camera writes one file per frame the way area detectors' TIFF plugin
does."""

from __future__ import annotations

import time
from pathlib import Path

import event_model
import numpy as np
import tifffile
from ophyd.sim import NullStatus

from bluebroker.ingest.simulated import HDF5Camera, StreamHDF5Camera

__all__ = ["HDF5Camera", "StreamHDF5Camera", "TiffCamera"]

TEMPLATE = "%s%s_%6.6d.tiff"


class TiffCamera(HDF5Camera):
    """Frames as ``<dir>/<name>_000000.tiff``..., announced with an ``AD_TIFF`` resource."""

    def stage(self):
        self.directory = Path(self.directory)
        bundle = event_model.compose_resource(
            spec="AD_TIFF",
            root=str(self.directory),
            resource_path="",
            resource_kwargs={"template": TEMPLATE, "filename": self.name, "frame_per_point": 1},
            start={"uid": "filled-in-by-the-RunEngine"},
        )
        self._compose_datum = bundle.compose_datum
        self._assets.append(("resource", bundle.resource_doc))
        self._index = 0
        return [self]

    def unstage(self):
        return [self]

    def trigger(self):
        i = self._index
        ramp = np.arange(np.prod(self.frame_shape)).reshape(self.frame_shape)
        frame = (ramp * (i + 1)).astype(self.frame_dtype)
        tifffile.imwrite(TEMPLATE % (f"{self.directory}/", self.name, i), frame)
        self.frames.append(frame)
        self._index += 1
        datum = self._compose_datum(datum_kwargs={"point_number": i})
        self._assets.append(("datum", datum))
        self._datum_id, self._time = datum["datum_id"], time.time()
        return NullStatus()
