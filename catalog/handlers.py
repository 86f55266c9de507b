"""Handlers that read resource/datum-referenced files, Databroker style.

A handler class is built as ``cls(resource_path, **resource_kwargs)`` and called as
``handler(**datum_kwargs)`` to return one event's value. Built-ins cover the common area
detector and ophyd.sim formats; anything registered in the ``databroker.handlers`` entry point
group (area-detector-handlers, facility packages) is found too and takes precedence.
"""

from __future__ import annotations

import functools
import os
from importlib.metadata import entry_points
from typing import Any

import h5py
import numpy as np


class AreaDetectorHDF5:
    """``AD_HDF5``: frames in ``/entry/data/data``; point n is frames [n*fpp, (n+1)*fpp)."""

    dataset = "/entry/data/data"
    swmr = False

    def __init__(self, filename: str, frame_per_point: int = 1, **_: Any) -> None:
        self.file = h5py.File(filename, "r", swmr=self.swmr)
        self.frame_per_point = int(frame_per_point)

    def __call__(self, point_number: int, **_: Any) -> np.ndarray:
        ds = self.file[self.dataset]
        if self.swmr:
            ds.refresh()
        start = int(point_number) * self.frame_per_point
        out = ds[start : start + self.frame_per_point]
        if len(out) == 0:
            raise ValueError(
                f"{self.file.filename} has {ds.shape[0]} frames; point {point_number} is past them"
            )
        return out

    def close(self) -> None:
        self.file.close()


class AreaDetectorHDF5SWMR(AreaDetectorHDF5):
    """``AD_HDF5_SWMR``: the same, read while the detector is still writing."""

    swmr = True


class AreaDetectorTiff:
    """``AD_TIFF``: one file per frame named ``template % (path, filename, frame)``."""

    def __init__(
        self, fpath: str, template: str, filename: str, frame_per_point: int = 1, **_: Any
    ) -> None:
        self.path = os.path.join(fpath, "")
        self.template = template
        self.filename = filename
        self.frame_per_point = int(frame_per_point)

    def __call__(self, point_number: int, **_: Any) -> np.ndarray:
        import tifffile

        start = int(point_number) * self.frame_per_point
        names = [
            self.template % (self.path, self.filename, j)
            for j in range(start, start + self.frame_per_point)
        ]
        return np.stack([tifffile.imread(n) for n in names])


class NumpySequence:
    """``NPY_SEQ`` (ophyd.sim): one ``{resource_path}_{index}.npy`` file per event."""

    def __init__(self, filename: str, root: str = "", **_: Any) -> None:
        self.name = os.path.join(root, filename)

    def __call__(self, index: int, **_: Any) -> np.ndarray:
        return np.load(f"{self.name}_{index}.npy", allow_pickle=False)


BUILTIN: dict[str, type] = {
    "AD_HDF5": AreaDetectorHDF5,
    "AD_HDF5_SINGLE": AreaDetectorHDF5,
    "AD_HDF5_SWMR": AreaDetectorHDF5SWMR,
    "AD_TIFF": AreaDetectorTiff,
    "NPY_SEQ": NumpySequence,
}


@functools.cache
def registry() -> dict[str, Any]:
    """Built-in handlers overlaid with those installed under ``databroker.handlers``."""
    found: dict[str, Any] = dict(BUILTIN)
    for ep in entry_points(group="databroker.handlers"):
        found[ep.name] = ep
    return found


def handler_class(spec: str) -> type | None:
    entry = registry().get(spec)
    if entry is None:
        return None
    if not isinstance(entry, type):  # an entry point, loaded on first use
        entry = entry.load()
        registry()[spec] = entry
    return entry
