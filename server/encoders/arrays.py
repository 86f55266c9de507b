"""Arrays into bytes: raw, JSON, msgpack, CSV, and images (PNG, TIFF)."""

from __future__ import annotations

import io

import msgpack
import numpy as np

from bluebroker import formats

from ..errors import ApiError
from .images import encode_png, encode_tiff
from .jsonable import dumps


def encode_array(arr: np.ndarray, media: str, max_size: int) -> bytes | memoryview:
    """The body for ``media``. Raw bytes are the array's own memory when it is contiguous
    and native (no copy of a large slice; the response holds the array until it is sent)."""
    if media == formats.OCTET:
        if arr.dtype.kind == "O":  # fixed-length strings (S, U) have one: itemsize each
            raise ApiError(
                406,
                "this array holds strings or objects, which have no raw-bytes "
                "form; ask for format=json, msgpack or csv",
            )
        native = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        return memoryview(np.ascontiguousarray(native).reshape(-1).view(np.uint8))
    if media == formats.JSON:
        return dumps(arr.tolist())
    if media == formats.MSGPACK:
        return msgpack.packb(arr.tolist(), default=str)
    if media == formats.CSV:
        if arr.ndim > 2:
            raise ApiError(
                406,
                f"CSV holds 1-D or 2-D data and this slice is {arr.ndim}-D "
                f"{arr.shape}; slice further (e.g. slice=0) or ask for "
                "format=json, octet-stream, tiff",
            )
        out = io.StringIO()
        np.savetxt(out, np.atleast_1d(arr), delimiter=",", fmt="%s")
        return out.getvalue().encode()
    if media == formats.PNG:
        return encode_png(arr, max_size)
    if media == formats.TIFF:
        return encode_tiff(arr, max_size)
    raise ApiError(406, f"arrays are not served as {media}")
