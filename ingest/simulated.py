"""Simulated detectors that write real HDF5 files, as area detectors do.

Used by ``bluebroker demo`` and by the tests.

``HDF5Camera`` speaks resource/datum (spec ``AD_HDF5``, frames in ``/entry/data/data``);
``StreamHDF5Camera`` speaks stream_resource/stream_datum (``application/x-hdf5``). Both keep
the frames they wrote in ``frames`` so that what the catalog reads back can be checked.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import event_model
import h5py
import numpy as np
from ophyd.sim import NullStatus


class _Camera:
    external: str

    def __init__(self, name: str, directory: Path, shape=(4, 5), dtype="uint16") -> None:
        self.name = name
        self.parent = None
        # Absolute: documents name files for readers in other processes and folders (a
        # relative root would make a "file://localhostdata/..." URI, or point elsewhere).
        self.directory = Path(directory).resolve()
        self.frame_shape = tuple(shape)
        self.frame_dtype = np.dtype(dtype)
        self.frames: list[np.ndarray] = []
        self.path: Path | None = None
        self._file: h5py.File | None = None
        self._assets: list[tuple[str, dict]] = []
        self.hints = {"fields": [name]}

    def _open(self) -> None:
        self.path = self.directory / f"{self.name}_{uuid.uuid4().hex[:8]}.h5"
        self._file = h5py.File(self.path, "w")
        self._file.create_dataset(
            "/entry/data/data",
            shape=(0, *self.frame_shape),
            maxshape=(None, *self.frame_shape),
            dtype=self.frame_dtype,
            chunks=(1, *self.frame_shape),
        )
        self._index = 0

    def _write_frame(self) -> int:
        ds = self._file["/entry/data/data"]
        i = self._index
        frame = np.arange(np.prod(self.frame_shape)).reshape(self.frame_shape) + 7 * len(
            self.frames
        )
        frame = frame.astype(self.frame_dtype)
        ds.resize(i + 1, axis=0)
        ds[i] = frame
        self._file.flush()
        self.frames.append(frame)
        self._index += 1
        return i

    def unstage(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        return [self]

    def collect_asset_docs(self):
        items, self._assets = self._assets, []
        yield from items

    def describe(self):
        return {
            self.name: {
                "source": f"SIM:{self.name}",
                "dtype": "array",
                "dtype_numpy": self.frame_dtype.str,
                "shape": list(self.frame_shape),
                "external": self.external,
            }
        }

    def read_configuration(self):
        return {}

    def describe_configuration(self):
        return {}


class HDF5Camera(_Camera):
    """Writes one frame per trigger; events carry datum ids (resource/datum)."""

    external = "FILESTORE:"

    def stage(self):
        self._open()
        bundle = event_model.compose_resource(
            spec="AD_HDF5",
            root=str(self.directory),
            resource_path=self.path.name,
            resource_kwargs={"frame_per_point": 1},
            start={"uid": "filled-in-by-the-RunEngine"},
        )
        self._compose_datum = bundle.compose_datum
        self._assets.append(("resource", bundle.resource_doc))
        return [self]

    def trigger(self):
        i = self._write_frame()
        datum = self._compose_datum(datum_kwargs={"point_number": i})
        self._assets.append(("datum", datum))
        self._datum_id = datum["datum_id"]
        self._time = time.time()
        return NullStatus()

    def read(self):
        return {self.name: {"value": self._datum_id, "timestamp": self._time}}


class StreamHDF5Camera(_Camera):
    """Writes one frame per trigger and announces it with stream_resource/stream_datum."""

    external = "STREAM:"

    def stage(self):
        self._open()
        bundle = event_model.compose_stream_resource(
            mimetype="application/x-hdf5",
            uri=f"file://localhost{self.path}",
            data_key=self.name,
            parameters={"dataset": "/entry/data/data", "chunk_shape": [1, *self.frame_shape]},
        )
        self._compose = bundle.compose_stream_datum
        self._assets.append(("stream_resource", bundle.stream_resource_doc))
        return [self]

    def trigger(self):
        i = self._write_frame()
        self._assets.append(
            ("stream_datum", self._compose(indices=event_model.StreamRange(start=i, stop=i + 1)))
        )
        return NullStatus()

    def read(self):
        return {}
