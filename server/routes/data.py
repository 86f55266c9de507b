"""Data: ``/array/full``, ``/array/block``, ``/table/full``, ``/table/partition``,
``/container/full``, each transcoded to the format asked for."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from bluebroker import formats
from bluebroker.catalog import ArrayNode, Node, Run, Stream, TableNode
from bluebroker.catalog.tables import EventTable
from bluebroker.slicing import parse_index, result_shape
from bluebroker.structures import block_chunks

from ..deps import data_response, node_at
from ..encoders import ARRAY_FORMATS, RUN_FORMATS, STREAM_FORMATS, TABLE_FORMATS
from ..encoders.arrays import encode_array
from ..encoders.containers import encode_run, encode_stream
from ..encoders.tables import encode_arrays, encode_table, unread_columns
from ..errors import ApiError
from ..limits import limits
from ..negotiation import choose, tiled_client
from ..tiled_frames import as_tiled_writes
from ..tiled_shapes import with_pandas_index

router = APIRouter()
MAX_IMAGE = 1024  # the default max_size of pictures


def _check_size(request: Request, nbytes: int, instead: str) -> None:
    """A 413 for a read larger than the server's ``max_read_bytes``, saying what to read
    instead: it would be held in memory whole, and then once more encoded."""
    limit = limits(request.app).max_read_bytes
    if nbytes > limit:
        raise ApiError(
            413,
            f"this read is {nbytes:,} bytes, over this server's limit of {limit:,} for one "
            f"request; {instead}",
        )


def _itemsize(dtype: np.dtype) -> int:
    return max(dtype.itemsize, 8) if dtype.kind in "OUS" else dtype.itemsize


def _max_size(request: Request) -> int:
    raw = request.query_params.get("max_size")
    if raw is None:
        return MAX_IMAGE
    top = limits(request.app).max_image_size
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= top:
        raise ApiError(
            400, f"max_size must be a whole number of pixels, 1 to {top}, not {raw!r:.40}"
        )
    return value


def _array(request: Request, path: str) -> ArrayNode:
    node = node_at(request, path)
    if not isinstance(node, ArrayNode):
        raise ApiError(400, _wrong_family(node, path, "an array"))
    if tiled_client(request):  # with TiledWriter's frame axis, as its structure says
        return as_tiled_writes(node)
    return node


def _wrong_family(node: Node, path: str, wanted: str) -> str:
    route = {"table": "/table/full", "container": "/search", "array": "/array/full"}
    return (
        f"/{path} is a {node.structure_family}, not {wanted}; read it with "
        f"{route[node.structure_family]}/{path}"
    )


def _send_array(request: Request, node: ArrayNode, arr: np.ndarray) -> Response:
    media = choose(request, ARRAY_FORMATS, formats.JSON)
    body = encode_array(arr, media, _max_size(request))
    native = arr.dtype.newbyteorder("=") if arr.dtype.kind not in "OUS" else arr.dtype
    headers = {"X-Array-Shape": ",".join(map(str, arr.shape)), "X-Array-Dtype": native.str}
    return data_response(request, body, media, node, headers)


ARRAY_FULL = "/api/v1/array/full/{path:path}"


@router.get(ARRAY_FULL, summary="An array, or the slice asked for")
def array_full(request: Request, path: str, slice: str = "") -> Response:
    node = _array(request, path)
    index = parse_index(slice)
    shape, dtype = node.shape, node.dtype
    try:
        wanted = result_shape(shape, index)
    except (IndexError, TypeError, ValueError, OverflowError) as err:
        raise ApiError(
            400, f"slice {slice!r:.80} does not fit this array of shape {list(shape)}: {err}"
        ) from None
    _check_size(
        request,
        math.prod(wanted) * _itemsize(dtype),
        f"slice it (e.g. slice=0:10 of its {shape[0] if shape else 1} rows) or read it "
        f"block by block (/array/block/{path}?block=...)",
    )
    return _send_array(request, node, node.read(index))


def lean_array_full(check: Callable[[Request], Awaitable[Any]]) -> Route:
    """``array_full`` also as a plain Starlette route, matched before FastAPI's (app.py):
    the same function behind the same ``check`` of the caller, without FastAPI's
    per-request parameter machinery, about 0.2 ms of a slice's request (viewers step
    through frames with it). The FastAPI route stays for the published API schema."""

    async def endpoint(request: Request) -> Response:
        await check(request)
        path, index = request.path_params["path"], request.query_params.get("slice", "")
        return await run_in_threadpool(array_full, request, path, index)

    return Route(ARRAY_FULL, endpoint, methods=["GET"], include_in_schema=False)


@router.get("/api/v1/array/block/{path:path}", summary="One block of an array (see chunks)")
def array_block(request: Request, path: str, block: str = Query(...)) -> Response:
    node = _array(request, path)
    try:
        ids = [int(b) for b in block.split(",")]
    except ValueError:
        raise ApiError(400, f"block must be comma-separated integers, got {block!r:.80}") from None
    shape = node.shape
    chunks = block_chunks(shape, node.dtype.itemsize)
    if len(ids) != len(shape) or any(
        not 0 <= i < len(c) for i, c in zip(ids, chunks, strict=False)
    ):
        raise ApiError(400, f"block {block!r:.80} is outside the chunks {chunks} of this array")
    index = tuple(slice(sum(c[:i]), sum(c[: i + 1])) for i, c in zip(ids, chunks, strict=True))
    size = math.prod(c[i] for i, c in zip(ids, chunks, strict=True)) * _itemsize(node.dtype)
    _check_size(request, size, f"slice it with /array/full/{path}?slice=...")
    return _send_array(request, node, node.read(index))


def _table(request: Request, path: str) -> TableNode:
    node = node_at(request, path)
    if not isinstance(node, TableNode):
        raise ApiError(400, _wrong_family(node, path, "a table"))
    return node


def _send_table(request: Request, node: TableNode) -> Response:
    columns = request.query_params.getlist("column") or None
    if columns:
        unknown = [c for c in columns if c not in node.columns]
        if unknown:
            raise ApiError(400, f"no columns {unknown[:5]!r:.200} here; columns: {node.columns}")
    fill = request.query_params.get("fill", "true").lower()
    if fill not in ("true", "false"):
        raise ApiError(400, f"fill must be true or false, not {fill!r:.40}")
    options = {}
    if fill == "false":
        if not node.fillable:
            raise ApiError(400, "fill=false applies to a stream's data (or timestamps) table only")
        options["fill"] = False
        if columns is None:  # every field as stored, detector fields as their datum ids
            columns = node.columns
    media = choose(request, TABLE_FORMATS, formats.JSON)
    _check_size(
        request,
        _table_bytes(node, columns),
        "ask for fewer columns (column=...), or read the big ones as arrays, slice by slice "
        "(/array/full/<table path>/<column>?slice=0:10)",
    )
    if media == formats.ARROW:  # the clients' wire format: numpy straight to Arrow
        # How many descriptors the rows came from: the databroker facade rebuilds legacy
        # tables from this one response when it is 1, and per descriptor otherwise.
        about = {"descriptors": str(len(node.stream.descriptors))} if node.fillable else None
        body = encode_arrays(node.read_arrays(columns, **options), about)
        if tiled_client(request):  # its read_pandas() takes the index from pandas metadata
            body = with_pandas_index(body)
    else:
        body = encode_table(node.read(columns, **options), media, unread_columns(node, columns))
    return data_response(request, body, media, node)


def _table_bytes(node: TableNode, columns: list[str] | None) -> int:
    """What reading ``columns`` (all the table reads by default) holds in memory."""
    infos = getattr(node, "column_infos", None)
    if infos is None:  # configuration tables: one row per descriptor
        return 0
    names = set(columns or node.internal_columns)
    return sum(
        math.prod(shape) * _itemsize(dtype)
        for name, (_, (shape, dtype, _)) in infos().items()
        if name in names
    )


@router.get("/api/v1/table/full/{path:path}", summary="A table, or the columns asked for")
def table_full(request: Request, path: str) -> Response:
    return _send_table(request, _table(request, path))


@router.get("/api/v1/table/partition/{path:path}", summary="One partition of a table")
def table_partition(request: Request, path: str, partition: int = Query(...)) -> Response:
    node = _table(request, path)
    if partition != 0:
        raise ApiError(400, f"partition {partition} does not exist; this table has 1 (index 0)")
    return _send_table(request, node)


def _dataset_variables(request: Request, node: EventTable) -> Response:
    """A stream's data or timestamps read as Tiled's client reads an xarray dataset: the
    variables named in ``field=`` as one Arrow table (seq_num the pandas index)."""
    fields = request.query_params.getlist("field") or None
    unknown = [f for f in fields or [] if f not in node.columns]
    if unknown:
        raise ApiError(400, f"no variables {unknown[:5]!r:.200} here; variables: {node.columns}")
    media = choose(request, [formats.ARROW], formats.ARROW)
    _check_size(request, _table_bytes(node, fields), "ask for fewer variables (field=...)")
    return data_response(
        request, with_pandas_index(encode_arrays(node.read_arrays(fields))), media, node
    )


@router.get("/api/v1/container/full/{path:path}", summary="A stream or run as one file")
def container_full(request: Request, path: str) -> Response:
    node = node_at(request, path)
    if isinstance(node, EventTable):  # a stream's table, seen by Tiled's client as a dataset
        explicit = request.query_params.get("format")
        if request.query_params.getlist("field") or (
            explicit and formats.resolve(explicit) == formats.ARROW
        ):
            return _dataset_variables(request, node)  # its wide-table read of variables
        return _send_table(request, node)  # its exports (format=csv...): the table's formats
    streams = [node] if isinstance(node, Stream) else []
    if isinstance(node, Run):
        streams = list(node.values())
    _check_size(
        request,
        sum(2 * _table_bytes(s["data"], None) for s in streams),  # data and timestamps
        "read its streams' tables (/table/full/...), or their columns slice by slice",
    )
    if isinstance(node, Stream):
        media = choose(request, STREAM_FORMATS, formats.NETCDF)
        return data_response(request, encode_stream(node, media), media, node)
    if isinstance(node, Run):
        media = choose(request, RUN_FORMATS, formats.HDF5)
        return data_response(request, encode_run(node, media), media, node)
    raise ApiError(
        400, f"/{path} cannot be exported as one file; streams (netCDF, HDF5) and runs (HDF5) can"
    )
