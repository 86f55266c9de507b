"""Reading a block of an uncompressed chunked HDF5 dataset chunk by chunk, one read per chunk.

Why not h5py's own read: for a dataset opened without a chunk cache, HDF5 reads each chunk's
selection row by row (a 1,000 x 1,000 slice of 500 x 500 chunks is 2,000 small reads); with
a chunk cache, it reads whole chunks but allocates a fresh buffer for each, and in a server's
worker threads glibc hands those buffers back to the kernel after every request, so each read
pays a page fault per 4 KiB (about twice the cost of the read itself). Here each chunk the
block touches is read whole, in one ``read_direct_chunk``, into a buffer that the thread
keeps, and its selected part is copied into the result: one allocation per request (the
result, which the server sends without a further copy).

Only for what this can read exactly: chunked, unfiltered (no compression, shuffle or
checksum), numeric data, read with step-1 slices and integers. Anything else returns None
and is read by h5py.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from typing import Any

import numpy as np

MIN_CHUNK_BYTES = 64 * 1024  # smaller chunks: h5py's cache handles them without page faults
MAX_CHUNK_BYTES = 8 * 1024 * 1024  # each worker thread keeps a buffer of one chunk
MAX_OVERREAD = 4  # read whole chunks only while they hold at most 4x the bytes asked for

_local = threading.local()


def _scratch(nbytes: int) -> np.ndarray:
    """This thread's chunk buffer, grown as needed (kept between requests: reusing it is the
    point)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.size < nbytes:
        buf = _local.buf = np.empty(nbytes, np.uint8)
    return buf[:nbytes]


_plain: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _plain_chunked(ds: Any) -> bool:
    """Whether ``ds`` is chunked, unfiltered and numeric (remembered for as long as the
    dataset object lives: hdf5_handles.py keeps them open between requests)."""
    import h5py

    known = _plain.get(ds)
    if known is None:
        plist = ds.id.get_create_plist() if ds.chunks is not None else None
        known = _plain[ds] = bool(
            plist is not None
            and not ds.is_virtual
            and ds.dtype.kind in "iufc"
            and plist.get_layout() == h5py.h5d.CHUNKED
            and plist.get_nfilters() == 0
        )
    return known


def read_by_chunks(ds: Any, read: tuple) -> np.ndarray | None:
    """``ds[read]`` (``read`` as from ``normalize_index``: integers and ascending slices, one
    per dimension), or None when this way does not apply or would read much more than asked."""
    if not read or not all(
        isinstance(r, int) or (r.step in (None, 1) and r.stop > r.start) for r in read
    ):
        return None
    if not _plain_chunked(ds):
        return None
    chunk, dtype = ds.chunks, ds.dtype
    chunk_bytes = math.prod(chunk) * dtype.itemsize
    if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        return None
    lo = [r if isinstance(r, int) else r.start for r in read]
    hi = [r + 1 if isinstance(r, int) else r.stop for r in read]
    grids = [range(a // c, (b - 1) // c + 1) for a, b, c in zip(lo, hi, chunk, strict=True)]
    wanted = math.prod(b - a for a, b in zip(lo, hi, strict=True)) * dtype.itemsize
    if math.prod(len(g) for g in grids) * chunk_bytes > MAX_OVERREAD * wanted:
        return None
    out = np.empty([b - a for a, b in zip(lo, hi, strict=True)], dtype)
    buf = _scratch(chunk_bytes)
    whole = buf.view(dtype).reshape(chunk)
    for cell in itertools.product(*grids):
        origin = tuple(i * c for i, c in zip(cell, chunk, strict=True))
        parts = [
            (max(a, o), min(b, o + c), o, a)
            for a, b, o, c in zip(lo, hi, origin, chunk, strict=True)
        ]
        src = tuple(slice(s - o, e - o) for s, e, o, _ in parts)
        dst = tuple(slice(s - a, e - a) for s, e, _, a in parts)
        try:
            ds.id.read_direct_chunk(origin, out=buf)
        except RuntimeError:
            if ds.id.get_chunk_info_by_coord(origin).byte_offset is not None:
                raise
            out[dst] = ds.fillvalue  # a chunk never written holds the fill value
            continue
        out[dst] = whole[src]
    squeeze = tuple(i for i, r in enumerate(read) if isinstance(r, int))
    return out.squeeze(axis=squeeze) if squeeze else out
