"""HDF5 and NeXus files: a container of groups and arrays, attributes as metadata.

Data are read with h5py at request time, only the hyperslab asked for (h5py reads only the
chunks it covers). Links that leave the file (external links, virtual datasets) are refused
unless their target lies inside the served folder: a file in the tree must not become a way
to read files outside it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bluebroker.catalog.engine import jsonable
from bluebroker.hdf5_open import open_hdf5

from .hdf5_chunks import read_by_chunks
from .hdf5_handles import OPEN_FILES
from .readers import Entry, Reader, normalize_index

MAX_NODES = 10_000  # groups and datasets indexed per file
MAX_ATTR_ITEMS = 1_000  # an attribute with more elements is summarized, not stored


class RefusedLink(PermissionError):
    """A link in an HDF5 file that leads outside the served folder."""


def attrs_of(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in obj.attrs:
        try:
            value = obj.attrs[key]
        except Exception as err:  # an attribute h5py cannot decode is said, not fatal
            out[key] = f"<unreadable attribute: {err}>"
            continue
        if isinstance(value, np.ndarray) and value.size > MAX_ATTR_ITEMS:
            out[key] = f"<array {value.shape} {value.dtype}>"
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind == "O":
            value = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value
            ]
        if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
            value = value.reshape(()).item()  # NeXus writers often store scalars as [x]
        out[key] = jsonable(value)
    return out


def words(meta: dict[str, Any]) -> list[str]:
    found = []
    for value in meta.values():
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(str(v) for v in value if isinstance(v, str))
    return found


def dataset_structure(ds: Any) -> dict[str, Any]:
    dtype = ds.dtype
    if h5py_string(dtype):
        dtype = np.dtype(object)
    return {
        "shape": list(ds.shape),
        "dtype": dtype.str,
        "dims": [f"dim_{i}" for i in range(len(ds.shape))],
        "chunks": list(ds.chunks) if ds.chunks else None,
    }


def h5py_string(dtype: np.dtype) -> bool:
    import h5py

    return h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU"


class HDF5Reader(Reader):
    name = "hdf5"
    suffixes = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5", ".nexus", ".he5")

    def describe(self, files: list[str]) -> list[Entry]:
        import h5py

        entries: list[Entry] = []
        OPEN_FILES.forget(files[0])  # registration reads the file as it is now
        with open_hdf5(files[0]) as f:
            meta = attrs_of(f)
            kind = "nexus" if meta.get("NX_class") == "NXroot" else "hdf5"
            entries.append(
                Entry("container", kind, {"count": len(f)}, meta, "", " ".join(words(meta)))
            )

            def visit(name: str, obj: Any) -> None:
                if len(entries) > MAX_NODES:
                    return
                meta = attrs_of(obj)
                text = " ".join([name.rsplit("/", 1)[-1], *words(meta)])
                if isinstance(obj, h5py.Group):
                    entries.append(
                        Entry("container", "hdf5-group", {"count": len(obj)}, meta, name, text)
                    )
                elif obj.dtype.kind == "V" or obj.dtype.names:
                    entries.append(
                        Entry(
                            "container",
                            "error",
                            {"count": 0},
                            {**meta, "error": f"dataset of dtype {obj.dtype} is not served"},
                            name,
                            text,
                        )
                    )
                else:
                    entries.append(
                        Entry("array", "hdf5-dataset", dataset_structure(obj), meta, name, text)
                    )

            f.visititems(visit)
        if len(entries) > MAX_NODES:
            del entries[MAX_NODES:]
            entries[0].metadata = {
                **entries[0].metadata,
                "bluebroker_note": f"only the first {MAX_NODES} groups and datasets are indexed",
            }
        return entries

    def read_array(self, files: list[str], inner: str, index: tuple) -> np.ndarray:
        # The file stays open between requests (hdf5_handles.py); large uncompressed chunks
        # are read whole into a buffer each thread keeps (hdf5_chunks.py), the rest through
        # h5py with its default chunk cache.
        with OPEN_FILES.dataset(files[0], inner, check_links) as ds:
            if ds.shape == ():
                if index not in ((), (Ellipsis,)):
                    raise IndexError("this dataset is a scalar; read it without a slice")
                value = ds.asstr()[()] if h5py_string(ds.dtype) else ds[()]
                return np.asarray(value, dtype=object if h5py_string(ds.dtype) else None)
            read, after = normalize_index(index, ds.shape)
            block = read_by_chunks(ds, read)
            if block is None:
                source = ds.asstr() if h5py_string(ds.dtype) else ds
                block = np.asarray(source[read])
                if h5py_string(ds.dtype):
                    block = block.astype(object)
            return block[after] if after else block


def check_links(f: Any, ds: Any, path: str) -> None:
    """Refuse a dataset reached through an external link, or a virtual dataset whose source
    files are not inside the folder of the file itself or below it."""
    real = os.path.realpath(path)
    if os.path.realpath(ds.file.filename) != real:
        raise RefusedLink(f"{ds.name} is an external link to another file; not served")
    if ds.is_virtual:
        here = os.path.dirname(real)
        for source in ds.virtual_sources():
            name = source.file_name
            target = real if name == "." else os.path.realpath(os.path.join(here, name))
            if os.path.commonpath((target, here)) != here:
                raise RefusedLink(f"{ds.name} reads another file outside this folder; not served")
