"""``GET /documents/{run}``: a run's documents as written; ``POST /documents/{catalog}``:
documents in, through the one writer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import event_model
import msgpack
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from bluebroker import formats, packing
from bluebroker.catalog import Catalog, CatalogError, Run
from bluebroker.catalog.tree import check_catalog_path
from bluebroker.ingest import CatalogWriter

from ..deps import catalog, filename, json_response, node_at
from ..encoders import DOCUMENT_FORMATS
from ..encoders.jsonable import dumps
from ..errors import ApiError
from ..limits import check_body, limits
from ..negotiation import choose

router = APIRouter()


class WriterPool:
    """One writer per catalog path, each behind a lock so concurrent posts do not race."""

    def __init__(self, cat: Catalog) -> None:
        self.catalog = cat
        self._writers: dict[str, tuple[CatalogWriter, threading.Lock]] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[CatalogWriter, threading.Lock]:
        with self._lock:
            if path not in self._writers:
                self._writers[path] = (CatalogWriter(self.catalog, path), threading.Lock())
            return self._writers[path]


def _encode(name: str, doc: dict, media: str) -> bytes:
    if media == formats.MSGPACK:
        return packing.packb([name, doc])
    if media == formats.JSON_SEQ:  # RFC 7464 records, shaped as Tiled sends them
        if name == "datum":  # Tiled's Bluesky clients know datums in pages only
            name, doc = "datum_page", event_model.pack_datum_page(doc)
        return b"\x1e" + dumps({"name": name, "doc": doc}) + b"\n"
    return dumps([name, doc]) + b"\n"


@router.get("/api/v1/documents/{path:path}", summary="A run's documents, in order, as written")
def get_documents(request: Request, path: str) -> Response:
    node = node_at(request, path)
    if not isinstance(node, Run):
        raise ApiError(400, f"/{path} is not a run; documents are served per run")
    fill = request.query_params.get("fill", "false").lower()
    if fill not in ("false", "no", "0"):  # Tiled's client sends fill=False by default
        raise ApiError(
            400,
            f"fill={fill!r:.40} is not offered: documents come as written (fill=false), "
            "with detector data referenced; read it from the run's arrays",
        )
    media = choose(request, DOCUMENT_FORMATS, formats.NDJSON)
    headers = {"Content-Disposition": f'inline; filename="{filename(node, media)}"'}
    if media == formats.JSON:
        return Response(
            dumps([[n, d] for n, d in node.documents()]), media_type=media, headers=headers
        )

    def stream() -> Iterator[bytes]:
        for name, doc in node.documents():
            yield _encode(name, doc, media)

    return StreamingResponse(stream(), media_type=media, headers=headers)


def _pairs(body: object) -> list:
    if isinstance(body, list) and len(body) == 2 and isinstance(body[0], str):
        return [body]
    if isinstance(body, list):
        return body
    raise ApiError(400, "the body must be a [name, doc] pair or a list of such pairs")


def _decode(raw: bytes, kind: str) -> object:
    """The posted body, decoded; anything undecodable is a 400 naming the encoding."""
    try:
        if kind in (formats.MSGPACK, "application/msgpack"):
            return packing.unpackb(raw)
        if kind == formats.JSON:
            return json.loads(raw)
    except (ValueError, msgpack.UnpackException, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else str(err)[:200]
        raise ApiError(400, f"the body is not valid {kind}: {why}") from None
    raise ApiError(415, f"send documents as {formats.JSON} or {formats.MSGPACK}, not {kind!r:.80}")


@router.post("/api/v1/documents/{path:path}", summary="Write documents into a catalog of runs")
async def post_documents(request: Request, path: str) -> Response:
    try:
        path = check_catalog_path(path)
    except CatalogError as err:
        raise ApiError(400, str(err)) from None
    mounts = catalog(request).mounts
    if path.split("/")[0] in mounts or "" in mounts:  # runs written there could never be read
        raise ApiError(
            400,
            f"/{path} is inside a mounted source (a folder or a MongoDB database), which is "
            "served read-only; write to a catalog path outside it",
        )
    raw = await request.body()  # at most max_body_bytes: RequestLimitMiddleware counts it
    kind = request.headers.get("content-type", formats.JSON).split(";")[0].strip().lower()
    body = await run_in_threadpool(_decode, raw, kind)
    del raw
    await run_in_threadpool(check_body, body, limits(request.app).max_depth)
    pairs = _pairs(body)
    if not pairs:  # nothing to write: no catalog is created for it
        return json_response({"written": 0, "duplicates": 0, "rejected": []})
    cat = catalog(request)

    def write():
        existing = cat.catalog_paths()
        if path not in existing and any(
            p.startswith(path + "/") or path.startswith(p + "/") for p in existing
        ):
            raise ApiError(
                400,
                f"/{path} overlaps an existing catalog path; catalog paths nest "
                "only through namespaces, e.g. bmm/raw beside bmm/processed",
            )
        writer, lock = request.app.state.writers.get(path)
        with lock:
            return writer.write_many(pairs, strict=False)

    result = await run_in_threadpool(write)
    rejected = [
        {"index": r.index, "name": r.name, "uid": r.error.uid, "error": str(r.error)}
        for r in result.rejected
    ]
    status = 422 if rejected else 200
    return json_response(
        {"written": result.written, "duplicates": result.duplicates, "rejected": rejected}, status
    )
