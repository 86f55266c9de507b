"""Area-detector arrays in the shape TiledWriter gives them, for Tiled's own client only.

TiledWriter (bluesky-tiled-plugins 2.0) does not keep an external field's event-model shape:
each event's part is ``datum_shape``, made from the descriptor's ``shape`` and the resource's
frames per point (``frame_per_point`` of a legacy resource, ``multiplier`` of a
stream_resource). A ``(6, 5)`` camera with one frame per point becomes ``(1, 6, 5)`` per
event, and a ``(1,)`` field with none ``()``. Code written against a Tiled server filled by
TiledWriter indexes that frame axis (``cam[-1, 0, :2]``), so Tiled's client is shown it:
the same values, reshaped row by row. Our own client and the databroker facade keep the
event-model shape; only the routes that serve Tiled's client use what is here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bluebroker.catalog import ArrayNode
from bluebroker.catalog.errors import ExternalDataError
from bluebroker.catalog.external import ExternalArray
from bluebroker.structures import ArrayStructure


def writer_row_shape(declared: tuple[int, ...], multiplier: int | None) -> tuple[int, ...]:
    """The per-event shape TiledWriter gives an external field declared ``declared`` whose
    resource has ``multiplier`` frames per point (its consolidators' rule, joined by stack)."""
    row = () if tuple(declared) == (1,) else tuple(declared)
    if multiplier:
        row = row or (multiplier,)
        if row[0] != multiplier:
            row = (multiplier, *row[1:]) if row[0] == 1 else (multiplier, *row)
    return row


def _multiplier(node: ExternalArray) -> int | None:
    """Frames per point of the field's first resource (None when it names none or no row
    has data yet): one datum looked up, or the stream_resources of a streamed field."""
    try:
        if node.streamed:
            found = node.asset_locations()
            parameters = found[0].get("parameters", {}) if found else {}
            value = parameters.get("multiplier", parameters.get("frame_per_point"))
        elif node.stream.num_rows() == 0:
            return None
        else:
            _, _, docs = node.datum_lookup(0, 1)
            kwargs = next(iter(docs.values()), {}).get("resource_kwargs") or {}
            value = kwargs.get("frame_per_point", kwargs.get("multiplier"))
    except (ExternalDataError, OSError):
        return None
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


class FramedArray(ArrayNode):
    """An external field seen with TiledWriter's per-event shape: rows are read from the
    field as stored and reshaped (same number of values per row)."""

    def __init__(self, node: ExternalArray, row_shape: tuple[int, ...]) -> None:
        super().__init__(node.path)
        self.node = node
        self.row_shape = row_shape

    @property
    def metadata(self) -> dict[str, Any]:
        return self.node.metadata

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.node.shape[0], *self.row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self.node.dtype

    @property
    def dims(self) -> tuple[str, ...]:
        """As Tiled's composite read names the axes it is not told (``cam_dim1``...)."""
        return ("time", *(f"{self.node.key}_dim{i}" for i in range(1, len(self.shape))))

    def info(self) -> tuple[tuple[int, ...], np.dtype, tuple[str, ...]]:
        return self.shape, self.dtype, self.dims

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        rows = self.node.read_rows(start, stop)
        return rows.reshape((rows.shape[0], *self.row_shape))


def as_tiled_writes(node: Any) -> Any:
    """``node`` as Tiled's client would find it on a server filled by TiledWriter: a
    :class:`FramedArray` when the per-event shape differs, else ``node`` itself. A node
    with ``as_seen_by_tiled`` says what it is to Tiled (directory/tiled_strings.py)."""
    own_view = getattr(node, "as_seen_by_tiled", None)
    if own_view is not None:
        return own_view()
    if isinstance(node, FramedArray) or not isinstance(node, ExternalArray):
        return node
    ours = tuple(node.shape[1:])
    declared = node.data_key.get("shape")
    declared = ours if declared is None else declared
    if not all(isinstance(n, int) and n >= 0 for n in declared):
        return node  # variable-sized: TiledWriter refuses such fields
    row = writer_row_shape(tuple(declared), _multiplier(node))
    if row == ours or math.prod(row) != math.prod(ours):
        return node  # the same shape, or one we could not fill with these values
    return FramedArray(node, row)


def _default_axis_names(node: ExternalArray, shape: tuple[int, ...]) -> tuple[str, ...] | None:
    """Axis names as Tiled's client would make them for a field whose descriptor names none
    (``cam_dim1``, ...: TiledWriter stores no names then), else None (ours are the same).
    Only external fields: TiledWriter keeps inline arrays in its internal table, which Tiled's
    ``read()`` gives as one column of lists (a 1-D variable); ours stay n-d, a deliberate gain."""
    if node.data_key.get("dims") or len(shape) < 2:
        return None
    key = node.path[-1]
    return ("time", *(f"{key}_dim{i}" for i in range(1, len(shape))))


def framed_structure(node: Any) -> dict[str, Any] | None:
    """The array structure Tiled's client is given for ``node`` when it differs from ours
    (framed, or axes it would name otherwise), else None."""
    shown = as_tiled_writes(node)
    if shown is node:
        if not isinstance(node, ExternalArray):
            return None
        shape, dtype, _ = node.info()
        names = _default_axis_names(node, shape)
        if names is None:
            return None
        return ArrayStructure.from_array_info(shape, dtype, names).to_json()
    if hasattr(shown, "tiled_structure"):  # one our structures cannot say (bytes strings)
        return shown.tiled_structure()
    return ArrayStructure.from_array_info(*shown.info()).to_json()
