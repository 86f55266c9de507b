"""Slice syntax on the wire: numpy's, one item per dimension, comma-separated.

``"0:5"``, ``"3"``, ``"::2,1:4"``, ``"-1,..."``. The client formats an index with
:func:`format_index`; the server parses it back with :func:`parse_index`.
"""

from __future__ import annotations

import re
from typing import Any

_ITEM = re.compile(r"^\s*(-?\d{1,19})?\s*(?::\s*(-?\d{1,19})?\s*(?::\s*(-?\d{1,19})?\s*)?)?$")
MAX_DIMS = 32  # numpy's arrays have at most 64 dimensions; ours far fewer


class SliceError(ValueError):
    """A slice that cannot be read; the message shows the accepted syntax."""


def parse_index(text: str | None) -> tuple:
    """``"0:5,::2"`` -> ``(slice(0, 5), slice(None, None, 2))``; empty or None -> ``()``."""
    if text is None or not text.strip():
        return ()
    items = text.split(",")
    if len(items) > MAX_DIMS:
        raise SliceError(f"a slice has at most {MAX_DIMS} items, one per dimension")
    out: list[Any] = []
    for item in items:
        item = item.strip()
        if item == "...":
            out.append(Ellipsis)
            continue
        m = _ITEM.match(item)
        if not m or not item:
            raise SliceError(
                f"cannot read slice item {item!r:.40} in {text!r:.80}; use numpy syntax (numbers "
                "of at most 19 digits) per dimension, "
                "e.g. '0:5', '3', '::2,1:4', '-1,...'"
            )
        if ":" not in item:
            out.append(int(m.group(1)))
            continue
        start, stop, step = (int(g) if g is not None else None for g in m.groups())
        if step == 0:
            raise SliceError(f"slice step cannot be zero in {text!r:.80}")
        out.append(slice(start, stop, step))
    if sum(1 for x in out if x is Ellipsis) > 1:
        raise SliceError(f"at most one '...' in {text!r:.80}")
    return tuple(out)


def format_index(index: Any) -> str:
    """The inverse of :func:`parse_index` for ints, slices and Ellipsis."""
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if item is Ellipsis:
            parts.append("...")
        elif isinstance(item, slice):
            start = "" if item.start is None else str(int(item.start))
            stop = "" if item.stop is None else str(int(item.stop))
            step = "" if item.step is None else f":{int(item.step)}"
            parts.append(f"{start}:{stop}{step}")
        elif isinstance(item, int) or hasattr(item, "__index__"):
            parts.append(str(int(item)))
        else:
            raise SliceError(f"unsupported index {item!r}; use integers, slices and ...")
    return ",".join(parts)


def result_shape(shape: tuple[int, ...], index: tuple) -> tuple[int, ...]:
    """The shape of ``array[index]`` for an array of ``shape``, without any data."""
    import numpy as np

    probe = np.lib.stride_tricks.as_strided(
        np.empty(1, dtype=np.uint8), shape=shape, strides=(0,) * len(shape)
    )
    return probe[index].shape
