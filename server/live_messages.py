"""Live messages: which nodes can be watched (views) and what each change looks like to them.

A change of the catalog's log becomes one message per kind of view (a stream, its data or
timestamps table, one column) and envelope (JSON or msgpack); the hub (``live.py``) builds
each once and hands it to every subscriber of that view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from bluebroker import packing
from bluebroker.catalog import ArrayNode, Catalog, CatalogError, Node, Run, RunCatalog, Stream
from bluebroker.catalog.changes import Change
from bluebroker.catalog.external import ExternalArray
from bluebroker.catalog.schema import runs, streams
from bluebroker.catalog.tables import EventTable

from .encoders.jsonable import dumps
from .errors import ApiError

ENVELOPES = ("json", "msgpack")
INLINE_ROWS = 10_000  # appended rows sent with their data; longer appends send a link
INLINE_BYTES = 8_000_000
SMALL_AS_LIST = 4096  # elements of a numeric column sent as a list in msgpack messages


@dataclass(frozen=True)
class View:
    """What a subscriber watches: a node, and which of its changes' data it wants."""

    scope: str  # "catalog", "run" or "stream": whose sequence numbers count
    node_id: int
    path: tuple[str, ...]
    family: str  # "container", "table" or "array"
    table: str | None = None  # "data" or "timestamps" for tables and their columns
    column: str | None = None  # the array's column

    @property
    def key(self) -> tuple[str, int]:
        return (self.scope, self.node_id)


def view_of(node: Node) -> View:
    """The view of a node that has live updates, or a 400 saying which nodes do."""
    path = node.path
    if getattr(node, "live", None) is False:  # a mounted source that sends no notices
        raise ApiError(
            400,
            f"/{'/'.join(path)} is read from a mounted source (a MongoDB database) that sends "
            "no change notices, so it has no live updates; read it again to see new runs",
        )
    if isinstance(node, RunCatalog):
        if node.queries:
            raise ApiError(400, "subscribe to the whole catalog of runs, without a search")
        return View("catalog", node.catalog_id, path, "container")
    if isinstance(node, Run):
        return View("run", node.id, path, "container")
    if isinstance(node, Stream):
        return View("stream", node.id, path, "container")
    if isinstance(node, EventTable):
        return View("stream", node.stream.id, path, "table", node.kind)
    stream = getattr(node, "stream", None)
    if (
        isinstance(node, ArrayNode)
        and isinstance(stream, Stream)
        and path[-2] in ("data", "timestamps")
    ):
        return View("stream", stream.id, path, "array", path[-2], path[-1])
    watched = getattr(node, "live_scope", None)  # a served folder (bluebroker.directory)
    if watched is not None:
        return View(watched[0], watched[1], path, "container")
    raise ApiError(
        400,
        f"/{'/'.join(path)} has no live updates; subscribe to a catalog of runs, a run, a "
        "stream, its data or timestamps table, or one of their columns",
    )


def schema_message(
    catalog: Catalog, view: View, sequence: int, start: int | None, envelope: str
) -> dict:
    """The first message of every subscription: what is watched and where the sequence is;
    ``stopped`` (runs, streams and their tables and columns) says whether the run has ended,
    so that a client waiting for the stop knows it will not come again."""
    msg: dict[str, Any] = {
        "type": "schema",
        "version": 1,
        "path": "/" + "/".join(view.path),
        "structure_family": view.family,
        "scope": view.scope,
        "sequence": sequence,
        "start": start,
        "envelope_format": envelope,
    }
    if view.family != "container":
        node = catalog.node(view.path)
        if isinstance(node, EventTable):
            msg["columns"] = ["seq_num", *node.internal_columns]
        elif isinstance(node, ArrayNode):
            shape, dtype, dims = node.info()
            msg.update(shape=list(shape), dtype=str(dtype), dims=list(dims))
    if view.scope in ("run", "stream"):
        msg["stopped"] = _stopped(catalog, view)
    return msg


def _stopped(catalog: Catalog, view: View) -> bool:
    query = sa.select(runs.c.stop_digest.is_not(None))
    if view.scope == "run":
        query = query.where(runs.c.id == view.node_id)
    else:
        query = query.join(streams, streams.c.run_id == runs.c.id).where(
            streams.c.id == view.node_id
        )
    with catalog.connect() as conn:
        return bool(conn.execute(query).scalar())


def build_message(
    catalog: Catalog, api: str, view: View, change: Change, node: Node | None = None
) -> dict:
    """The message for one change as this view shows it (runs in a worker thread); ``node``
    is the view's node when the caller has it already."""
    msg = message_head(api, view, change)
    if change.kind != "rows-appended" or view.family == "container":
        return msg
    start, stop = int(msg["start_row"]), int(msg["stop_row"])
    if stop - start > INLINE_ROWS:
        return msg
    node = node if node is not None else catalog.node(view.path)
    carried = change.rows()  # the rows as the writer's notice carried them, if it could
    if isinstance(node, EventTable):
        data = node.read_arrays(None, start=start, stop=stop, preread=carried)
    elif carried is not None and getattr(node, "stored", None) in carried:
        data = carried[node.stored]
    elif _external_bytes(node, stop - start) > INLINE_BYTES:
        return msg  # a detector's frames: sized before they are read, not after
    else:
        data = node.read_rows(start, stop)
    if _nbytes(data) <= INLINE_BYTES:
        msg["data"] = data
        if isinstance(data, dict):
            msg["dtypes"] = {k: v.dtype.str for k, v in data.items() if _listable(v)}
        elif _listable(data):
            msg["dtype"] = data.dtype.str
    return msg


def unreadable_message(api: str, view: View, change: Change, err: Exception) -> dict:
    """The change without its rows, when they could not be read (a detector file gone, the
    database away): the subscriber still gets every sequence, and ``error`` says why (the
    catalog's own words; anything else is not the subscriber's business)."""
    msg = message_head(api, view, change)
    msg["error"] = (
        str(err)[:500]
        if isinstance(err, CatalogError)
        else "the rows could not be read now; read them from links"
    )
    return msg


def message_head(api: str, view: View, change: Change) -> dict:
    """A change's message without data: its type, sequence, body and links."""
    msg: dict[str, Any] = {
        "type": change.kind,
        "sequence": change.seq,
        "timestamp": change.time,
        **(change.body or {}),
    }
    here = "/".join(view.path)
    if view.scope == "catalog" and "uid" in msg:
        msg["links"] = {"self": f"{api}/metadata/{here}/{msg['uid']}"}
    elif view.scope == "run" and change.kind == "stream-created":
        msg["links"] = {"self": f"{api}/metadata/{here}/{msg['name']}"}
    if change.kind != "rows-appended":
        return msg
    if view.family == "container":
        msg["links"] = {"data": f"{api}/table/full/{here}/data"}
        return msg
    start, stop = int(msg["start_row"]), int(msg["stop_row"])
    route = "array/full" if view.family == "array" else "table/full"
    where = f"?slice={start}:{stop}" if view.family == "array" else ""
    msg["links"] = {"full": f"{api}/{route}/{here}{where}"}
    return msg


def _external_bytes(node: Node, rows: int) -> int:
    """What reading ``rows`` rows of a file-backed column would take (0 for stored columns,
    whose rows came in documents): a stream_datum may cover thousands of large frames."""
    if not isinstance(node, ExternalArray):
        return 0
    shape, dtype = node.shape, node.dtype
    return rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize


def _listable(arr: Any) -> bool:
    """Numbers and booleans a message may carry as plain lists, with their dtype beside."""
    return isinstance(arr, np.ndarray) and arr.dtype.kind in "biuf"


def _nbytes(data: Any) -> int:
    if isinstance(data, dict):
        return sum(_nbytes(v) for v in data.values())
    return int(data.nbytes) if isinstance(data, np.ndarray) else 0


def encode(msg: dict, envelope: str) -> bytes:
    """JSON text (arrays as lists, NaN as null) or msgpack.

    In msgpack, small numeric columns go as plain lists (their dtypes are in the message):
    a subscriber decodes those in C, where a msgpack-numpy array costs a Python call per
    array, which at a hundred subscribers was most of a client's time. Larger arrays stay
    msgpack-numpy (raw bytes).
    """
    if envelope == "msgpack":
        data = msg.get("data")
        if isinstance(data, dict):
            msg = {**msg, "data": {k: _small_as_list(v) for k, v in data.items()}}
        elif data is not None:
            msg = {**msg, "data": _small_as_list(data)}
        return packing.packb(msg)
    return dumps(msg)


def _small_as_list(arr: Any) -> Any:
    return arr.tolist() if _listable(arr) and arr.size <= SMALL_AS_LIST else arr
