"""Readers: what turns a file into nodes, chosen by the file's suffix, pluggable.

A facility adds its own format with an entry point in the group
``bluebroker.directory.readers`` naming a :class:`Reader` subclass (or instance)::

    [project.entry-points."bluebroker.directory.readers"]
    mydetector = "mypackage.readers:MyDetectorReader"

A reader *describes* a file once, at registration (the nodes it holds, their structure and
metadata, stored in the index), and *reads* data on request (an array slice, table columns).
Anything a reader raises while describing makes the file an unreadable entry, listed with
the reason; it never stops registration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np

log = logging.getLogger(__name__)
GROUP = "bluebroker.directory.readers"


@dataclass
class Entry:
    """One node a file yields: ``inner`` is its path inside the file ('' for the file)."""

    family: str  # 'container', 'array' or 'table'
    kind: str
    structure: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    inner: str = ""
    text: str = ""  # words for full-text search (headers, attribute values)


class Reader:
    """Base class of readers. ``files`` is one path, or a numbered sequence's members."""

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    # Whether numbered files of this reader ('img_001.tif', 'img_002.tif') form one array.
    sequences: ClassVar[bool] = False
    # Whether a folder with this suffix (a Zarr store) is one unit rather than a folder.
    folders: ClassVar[bool] = False

    def describe(self, files: list[str]) -> list[Entry]:
        raise NotImplementedError

    def read_array(self, files: list[str], inner: str, index: tuple) -> np.ndarray:
        raise NotImplementedError(f"{self.name} files hold no arrays")

    def read_table(self, files: list[str], inner: str, columns: list[str] | None) -> Any:
        raise NotImplementedError(f"{self.name} files hold no tables")


def builtin_readers() -> list[Reader]:
    from .readers_hdf5 import HDF5Reader
    from .readers_tables import CSVReader, ParquetReader, TSVReader, XDIReader
    from .readers_tiff import TIFFReader
    from .readers_zarr import ZarrReader

    readers: list[Reader] = [
        HDF5Reader(),
        TIFFReader(),
        CSVReader(),
        TSVReader(),
        XDIReader(),
        ParquetReader(),
    ]
    if ZarrReader.available():
        readers.append(ZarrReader())
    return readers


def load_readers() -> dict[str, Reader]:
    """Readers by name: the built-in ones, then entry points (which may replace them)."""
    readers = {r.name: r for r in builtin_readers()}
    for ep in entry_points(group=GROUP):
        try:
            loaded = ep.load()
            reader = loaded() if isinstance(loaded, type) else loaded
            if not isinstance(reader, Reader) or not reader.name or not reader.suffixes:
                raise TypeError("not a Reader with a name and suffixes")
        except Exception as err:  # one broken plug-in must not stop the server
            log.warning("reader entry point %s is unusable: %s", ep.name, err)
            continue
        readers[reader.name] = reader
    return readers


class Readers:
    """The readers in use, looked up by name or by a file name's suffix."""

    def __init__(self, readers: dict[str, Reader] | None = None) -> None:
        """The built-in and entry-point readers, with ``readers`` added (or replacing
        those of the same name)."""
        self.by_name = {**load_readers(), **(readers or {})}
        self._suffixes = sorted(
            ((s.lower(), r) for r in self.by_name.values() for s in r.suffixes),
            key=lambda item: -len(item[0]),
        )

    def for_name(self, filename: str, folder: bool = False) -> Reader | None:
        lower = filename.lower()
        for suffix, reader in self._suffixes:
            if lower.endswith(suffix) and reader.folders == folder:
                return reader
        return None

    def __getitem__(self, name: str) -> Reader:
        return self.by_name[name]


def normalize_index(index: tuple, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Split a numpy index into one that h5py-like readers take (non-negative, ascending
    slices and integers, one per dimension) and what is left to apply to the block read
    (a reversal for negative steps). Out-of-range integers raise IndexError."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        fill = len(shape) - (len(index) - 1)
        index = (*index[:at], *(slice(None),) * fill, *index[at + 1 :])
    if len(index) > len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    index = (*index, *(slice(None),) * (len(shape) - len(index)))
    read, after = [], []
    for item, n in zip(index, shape, strict=True):
        if isinstance(item, int | np.integer):
            i = int(item) + n if item < 0 else int(item)
            if not 0 <= i < n:
                raise IndexError(f"index {int(item)} is out of bounds for a dimension of {n}")
            read.append(i)
            continue
        start, stop, step = item.indices(n)
        rows = range(start, stop, step)
        if len(rows) == 0:
            read.append(slice(0, 0))
            after.append(slice(None))
        elif step > 0:
            read.append(slice(rows[0], rows[-1] + 1, step))
            after.append(slice(None))
        else:
            read.append(slice(rows[-1], rows[0] + 1, -step))
            after.append(slice(None, None, -1))
    return tuple(read), tuple(after)
