"""What every route needs: the catalog, the node at a path, links, response helpers."""

from __future__ import annotations

from fastapi import Request, Response

from bluebroker import formats
from bluebroker.catalog import Catalog, Node

from .encoders.jsonable import dumps


def catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def node_at(request: Request, path: str) -> Node:
    return catalog(request).node(path)


def api_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api/v1"


def json_response(obj: object, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=formats.JSON)


def filename(node: Node, media: str) -> str:
    """A download name such as ``1a2b3c4d_primary_data.csv``."""
    path = list(node.path)
    uid_at = next((i for i, p in enumerate(path) if len(p) > 30), None)
    if uid_at is not None:  # from the run on, its uid shortened as people quote it
        path = [path[uid_at][:8], *path[uid_at + 1 :]]
    return "_".join(path or ["root"]) + "." + formats.EXTENSIONS.get(media, "bin")


def data_response(
    request: Request, body: bytes, media: str, node: Node, headers: dict[str, str] | None = None
) -> Response:
    disposition = (
        "attachment" if request.query_params.get("download") in ("1", "true") else "inline"
    )
    all_headers = {"Content-Disposition": f'{disposition}; filename="{filename(node, media)}"'}
    all_headers.update(headers or {})
    return Response(body, media_type=media, headers=all_headers)
