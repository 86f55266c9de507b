"""Handlers that read resource/datum-referenced files, Databroker style.

A handler class is built as ``cls(resource_path, **resource_kwargs)`` and called as
``handler(**datum_kwargs)`` to return one event's value. Built-ins cover the common area
detector and ophyd.sim formats; anything registered in the ``databroker.handlers`` entry point
group (area-detector-handlers, facility packages) is found too and takes precedence.

The resource path a handler is given has been checked against the catalog's data roots. The
built-ins also check every other file they open (:func:`allowed`): a template, a datum's
kwargs or an HDF5 link can name any file. Third-party handlers are trusted to do the same.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from importlib.metadata import entry_points
from typing import Any

import h5py
import numpy as np

from bluebroker.hdf5_open import open_hdf5

from .roots import OutsideDataRoots

# How the catalog reading right now checks a path against its data roots (roots.check, bound):
# built-in handlers pass every file they open beyond their resource path through it.
_check: ContextVar[Callable[[str], str] | None] = ContextVar("data_root_check", default=None)


@contextlib.contextmanager
def checking(check: Callable[[str], str]) -> Iterator[None]:
    """Handlers run inside this see ``check`` through :func:`allowed`."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


_guarded: ContextVar[Callable[[str], str] | None] = ContextVar("data_root_guard", default=None)
_hooked = False
_MODULES = (".py", ".pyc", ".pth")


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run a handler (built or called) with every file Python opens checked against the data
    roots: third-party handlers build file names from kwargs too (ophyd's NPY_SEQ puts a
    datum's ``index`` into one), and an audit hook sees their opens where a wrapper cannot.
    Python importing code from ``sys.path`` meanwhile is let through; files HDF5 or other C
    libraries open themselves are not seen (open_dataset checks HDF5's)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # for the life of the process: it cannot be removed
        _hooked = True
    token = _guarded.set(_check.get() or allowed)
    try:
        yield
    finally:
        _guarded.reset(token)


def _audit(event: str, args: tuple) -> None:
    if event != "open":
        return
    check = _guarded.get()
    if check is None or not isinstance(args[0], str | bytes):  # not guarded, or an open fd
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path.endswith(_MODULES) and any(
        os.path.commonpath((path, os.path.abspath(entry or "."))) == os.path.abspath(entry or ".")
        for entry in sys.path
        if isinstance(entry, str)
    ):
        return
    check(path)


def allowed(path: str) -> str:
    """The real path of ``path`` if the catalog reading now may open it (a handler's own
    template or a datum's index can name files elsewhere); refused outside a read."""
    check = _check.get()
    if check is None:
        raise OutsideDataRoots(f"file {path!r}: handlers open files only while a catalog reads")
    return check(path)


def _linked(base: str, name: str) -> list[str]:
    """Where HDF5 may look for a file a link, external storage or virtual dataset names:
    beside the file that names it, and (relative names) in the working directory."""
    if os.path.isabs(name):
        return [name]
    return [os.path.join(os.path.dirname(base), name), os.path.abspath(name)]


def open_dataset(file: h5py.File, name: str) -> h5py.Dataset:
    """``file[name]``, refusing external links, external storage and virtual datasets that
    lead outside the data roots (an HDF5 file can hand out any file's bytes that way)."""
    node: Any = file
    for part in [p for p in name.split("/") if p]:
        link = node.get(part, getlink=True)
        if link is None:
            raise KeyError(name)
        if isinstance(link, h5py.ExternalLink):
            for path in _linked(node.file.filename, link.filename):
                allowed(path)
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise KeyError(name)
    allowed(node.file.filename)
    for entry in node.external or ():
        for path in _linked(node.file.filename, os.fsdecode(entry[0])):
            allowed(path)
    if node.is_virtual:
        for source in node.virtual_sources():
            if source.file_name != ".":
                for path in _linked(node.file.filename, source.file_name):
                    allowed(path)
    return node


class AreaDetectorHDF5:
    """``AD_HDF5``: frames in ``/entry/data/data``; point n is frames [n*fpp, (n+1)*fpp)."""

    dataset = "/entry/data/data"
    swmr = False

    def __init__(self, filename: str, frame_per_point: int = 1, **_: Any) -> None:
        self.file = open_hdf5(allowed(filename), swmr=self.swmr)
        self.frame_per_point = int(frame_per_point)

    def __call__(self, point_number: int, **_: Any) -> np.ndarray:
        ds = open_dataset(self.file, self.dataset)
        if self.file.swmr_mode:  # not when it joined a file already open without SWMR
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


# A template's field widths and frames per point are the sender's choice: "%999999999s"
# would build a gigabyte name, a billion frames per point a billion names.
_WIDE = re.compile(r"%[-+ #0]*(\d{3,}|\*)|\.(\d{3,}|\*)")
MAX_FRAMES = 100_000


class AreaDetectorTiff:
    """``AD_TIFF``: one file per frame named ``template % (path, filename, frame)``."""

    def __init__(
        self, fpath: str, template: str, filename: str, frame_per_point: int = 1, **_: Any
    ) -> None:
        self.path = os.path.join(fpath, "")
        if _WIDE.search(str(template)) or not 0 < int(frame_per_point) <= MAX_FRAMES:
            raise ValueError(
                f"template {template!r} with frame_per_point {frame_per_point} is not a "
                f"usable AD_TIFF resource (field widths under 100, 1 to {MAX_FRAMES} frames)"
            )
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
        return np.stack([tifffile.imread(allowed(n)) for n in names])


class NumpySequence:
    """``NPY_SEQ`` (ophyd.sim): one ``{resource_path}_{index}.npy`` file per event."""

    def __init__(self, filename: str, root: str = "", **_: Any) -> None:
        self.name = os.path.join(root, filename)

    def __call__(self, index: int, **_: Any) -> np.ndarray:
        return np.load(allowed(f"{self.name}_{int(index)}.npy"), allow_pickle=False)


BUILTIN: dict[str, type] = {
    "AD_HDF5": AreaDetectorHDF5,
    "AD_HDF5_SINGLE": AreaDetectorHDF5,
    "AD_HDF5_SWMR": AreaDetectorHDF5SWMR,
    "AD_TIFF": AreaDetectorTiff,
    "NPY_SEQ": NumpySequence,
}


def files_named(spec: str, path: str, kwargs: dict) -> list[str]:
    """The files a resource names, as far as can be told before any datum: its own path and,
    for built-ins whose kwargs build other names, the first of those (a datum's index cannot
    leave the folder, see the handlers). ValueError for kwargs a handler would refuse."""
    cls = registry().get(spec)
    if cls is AreaDetectorTiff:
        tiff = AreaDetectorTiff(path, **kwargs)
        return [path, tiff.template % (tiff.path, tiff.filename, 0)]
    if cls is NumpySequence:
        return [f"{NumpySequence(path, **kwargs).name}_0.npy"]
    return [path]


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
