"""Whole streams and runs as files: netCDF (through xarray) and HDF5 (through h5py).

External (detector-file) fields are left out: they can be large, and they are already files
that can be downloaded or opened where they lie (see each field's data_sources).
"""

from __future__ import annotations

import io
import json

from bluebroker import formats
from bluebroker.catalog import Run, Stream

from ..errors import ApiError
from .jsonable import dumps
from .tables import write_hdf5_group


def encode_stream(stream: Stream, media: str) -> bytes:
    if media == formats.NETCDF:
        ds = stream.read()
        ds.attrs["descriptors"] = dumps(stream.descriptors).decode()
        sink = io.BytesIO()
        ds.to_netcdf(sink, engine="h5netcdf")
        return sink.getvalue()
    if media == formats.HDF5:
        return _hdf5({stream.name: stream}, {"uid": stream.run.uid})
    raise ApiError(406, f"streams are not served as {media}")


def encode_run(run: Run, media: str) -> bytes:
    if media == formats.HDF5:
        streams = {name: run[name] for name in run}
        return _hdf5(
            streams,
            {
                "start": json.dumps(run.metadata["start"], default=str),
                "stop": json.dumps(run.metadata["stop"], default=str),
            },
        )
    raise ApiError(406, f"runs are not served as {media}")


def _hdf5(streams: dict[str, Stream], attrs: dict[str, str]) -> bytes:
    import h5py

    sink = io.BytesIO()
    with h5py.File(sink, "w") as f:
        f.attrs.update(attrs)
        for name, stream in streams.items():
            group = f.create_group(name)
            group.attrs["descriptors"] = dumps(stream.descriptors).decode()
            write_hdf5_group(group.create_group("data"), stream["data"].read())
            write_hdf5_group(group.create_group("timestamps"), stream["timestamps"].read())
    return sink.getvalue()
