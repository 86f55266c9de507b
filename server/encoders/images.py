"""Arrays as pictures: a 2-D plane (the first plane of higher-dimension data unless the slice
picks another), downsampled by striding when larger than ``max_size`` pixels on a side."""

from __future__ import annotations

import io
import math

import numpy as np

from ..errors import ApiError


def plane(arr: np.ndarray, max_size: int) -> np.ndarray:
    """A 2-D (or H x W x 3/4 colour) plane of ``arr``, no larger than ``max_size`` per side."""
    if arr.dtype.kind in "OUS":
        raise ApiError(406, "an image needs numbers; this array holds strings or objects")
    if arr.ndim < 2:
        arr = np.atleast_2d(arr)
    colour = arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8
    while arr.ndim > (3 if colour else 2):
        arr = arr[0]
    steps = [max(1, math.ceil(n / max_size)) for n in arr.shape[:2]]
    return arr[:: steps[0], :: steps[1]]


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    data = arr.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = data[finite].min(), data[finite].max()
    scaled = np.zeros(arr.shape) if hi == lo else (data - lo) / (hi - lo) * 255
    return np.where(finite, scaled, 0).astype(np.uint8)


def encode_png(arr: np.ndarray, max_size: int) -> bytes:
    from PIL import Image

    img = plane(arr, max_size)
    if img.dtype in (np.uint8, np.uint16):  # kept as they are: 8- or 16-bit grey (or RGB)
        pil = Image.fromarray(np.ascontiguousarray(img))
    else:  # floats, wide integers, booleans: scaled to 0-255 between min and max
        pil = Image.fromarray(_to_8bit(img))
    out = io.BytesIO()
    pil.save(out, format="PNG")
    return out.getvalue()


def encode_tiff(arr: np.ndarray, max_size: int) -> bytes:
    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(out, np.ascontiguousarray(plane(arr, max_size)))
    return out.getvalue()
