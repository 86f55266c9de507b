"""Lazy views of detector data: ``Header.xarray_dask()`` and ``Broker.get_images()``.

Both read nothing until a frame or a chunk is asked for; each read fetches only that part
from the server (``array[i]``), however large the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def lazy_dataset(stream: Any) -> Any:
    """The stream as an ``xarray.Dataset`` whose variables are dask arrays, one chunk per
    event for images and one chunk per field for scalars."""
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(
            "xarray_dask() needs dask: pip install 'bluebroker[databroker]' (or dask[array])"
        ) from None
    import xarray

    data = stream["data"]
    keys: dict[str, dict] = {}
    for d in stream.descriptors:
        for k, v in d["data_keys"].items():
            keys.setdefault(k, v)
    times = data.read(["time"])
    variables = {}
    for name, data_key in keys.items():
        node = data[name]
        chunks = (1, *node.shape[1:]) if node.ndim > 1 else node.shape
        meta = np.empty((0,) * node.ndim, dtype=node.dtype)
        array = da.from_array(_Sliceable(node), chunks=chunks, meta=meta, name=False)
        attrs = {k: data_key[k] for k in ("source", "units", "dtype") if data_key.get(k)}
        variables[name] = xarray.Variable(node.dims, array, attrs=attrs)
    return xarray.Dataset(
        variables,
        coords={"time": times["time"].to_numpy(), "seq_num": ("time", times.index.to_numpy())},
        attrs={"stream_name": stream.path[-1], "uid": stream.path[-2]},
    )


class _Sliceable:
    """What dask needs of an array: shape, dtype, ndim and slicing (one request per slice)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.shape = tuple(node.shape)
        self.dtype = node.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.node[index])


class Images(Sequence):
    """Frames of one detector field across runs, read one at a time (like Databroker 1.x's
    pims-based ``Images``): ``len(images)``, ``images[i]``, ``images[a:b]``, iteration,
    ``frame_shape``, ``dtype``."""

    def __init__(self, arrays: list[Any], selection: range | None = None) -> None:
        self._arrays = arrays
        self._offsets = np.cumsum([0, *(a.shape[0] for a in arrays)])
        self._selection = range(int(self._offsets[-1])) if selection is None else selection

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return tuple(self._arrays[0].shape[1:]) if self._arrays else ()

    @property
    def dtype(self) -> np.dtype:
        return self._arrays[0].dtype if self._arrays else np.dtype(float)

    pixel_type = dtype

    def __len__(self) -> int:
        return len(self._selection)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return Images(self._arrays, self._selection[index])
        try:
            position = self._selection[index]
        except IndexError:  # still an IndexError (iteration relies on it), saying how many
            raise IndexError(
                f"frame {index} is out of range: there are {len(self)} frames "
                f"(valid: 0..{len(self) - 1}, or -1..-{len(self)})"
                if len(self)
                else f"frame {index}: there are no frames"
            ) from None
        run = int(np.searchsorted(self._offsets, position, side="right")) - 1
        return np.asarray(self._arrays[run][position - int(self._offsets[run])])

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"<Images: {len(self)} frames of {self.frame_shape} {self.dtype}>"
