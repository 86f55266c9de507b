"""``/metadata/{path}`` and ``/search/{path}``: the tree, its metadata, searching and paging."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from bluebroker.catalog import Container, RunCatalog
from bluebroker.queries import QueryError, normalize_key
from bluebroker.query_params import from_params

from ..deps import api_base, node_at
from ..envelope import ATTRIBUTES, resource
from ..errors import ApiError
from ..limits import limits
from ..negotiation import metadata_response, tiled_client

router = APIRouter()
MAX_PAGE = 300
MAX_SORT_KEYS = 16


def _fields(value: str | list[str] | None) -> tuple[str, ...] | None:
    """The attributes asked for: ``fields=a,b`` (ours) or ``fields=a&fields=b`` (Tiled's),
    where ``count`` (Tiled's ``len()``) asks for none of them."""
    if value is None:
        return None
    parts = [value] if isinstance(value, str) else value
    wanted = tuple(f for part in parts for f in part.split(",") if f and f != "count")
    unknown = [f for f in wanted if f not in ATTRIBUTES]
    if unknown:
        raise ApiError(
            400, f"unknown fields {unknown[:5]!r:.200}; choose from {', '.join(ATTRIBUTES)}"
        )
    return wanted


def _inline(request: Request) -> bool:
    """Whether containers above the runs embed their children: yes for our client, no for
    Tiled's (see envelope.structure) or when asked with Tiled's ``max_depth=0``."""
    depth = request.query_params.get("max_depth")
    if depth is not None:
        if not depth.isdigit() or len(depth) > 6:
            raise ApiError(400, f"max_depth must be a whole number >= 0, not {depth!r:.40}")
        return int(depth) > 0
    return not tiled_client(request)


def _fields_param(request: Request) -> tuple[str, ...] | None:
    values = request.query_params.getlist("fields")
    return _fields(values) if values else None


@router.get("/api/v1/metadata/{path:path}", summary="A node: metadata, structure, links")
def metadata(request: Request, path: str, fields: str | None = None) -> Response:
    node = node_at(request, path)
    tiled = tiled_client(request)
    item = resource(
        node, api_base(request), _fields_param(request), inline=_inline(request), tiled=tiled
    )
    return metadata_response(request, {"data": item})


def parse_sort(text: str) -> list[tuple[str, int]]:
    """``start.time,-scan_id`` -> ``[('start.time', 1), ('scan_id', -1)]``; a key that
    cannot name metadata is a QueryError."""
    out = []
    for key in (k.strip() for k in text.split(",") if k.strip()):
        out.append((key[1:], -1) if key.startswith("-") else (key, 1))
    if len(out) > MAX_SORT_KEYS:
        raise QueryError(f"sort by at most {MAX_SORT_KEYS} keys, got {len(out)}")
    for key, _ in out:
        normalize_key(key)
    return out


@router.get(
    "/api/v1/search/{path:path}", summary="Children of a container, filtered, sorted, paged"
)
def search(
    request: Request,
    path: str,
    sort: str | None = None,
    fields: str | None = None,
    offset: int = Query(0, alias="page[offset]", ge=0),
    limit: int = Query(100, alias="page[limit]", ge=0, le=MAX_PAGE),
) -> Response:
    max_offset = limits(request.app).max_offset
    if offset > max_offset:
        raise ApiError(
            400,
            f"page[offset] is at most {max_offset}; narrow the search with filters, or sort "
            "the other way (sort=-start.time) to page from the other end",
        )
    node = node_at(request, path)
    if not isinstance(node, Container):
        raise ApiError(
            400, f"/{path} is a {node.structure_family}, not a container; use /metadata for it"
        )
    queries = from_params(list(request.query_params.multi_items()))
    if (queries or sort) and not isinstance(node, RunCatalog) and not hasattr(node, "search"):
        raise ApiError(
            400,
            f"/{path} cannot be filtered or sorted; catalogs of runs and served folders can",
        )
    for query in queries:
        node = node.search(query)
    sort = ",".join(request.query_params.getlist("sort")) or None  # Tiled repeats sort=
    if sort:
        node = node.sort(*parse_sort(sort))
    count = len(node)
    base = api_base(request)
    counting = request.query_params.getlist("fields") == ["count"]  # Tiled's len()
    wanted = _fields_param(request)
    inline = _inline(request)
    data = (
        []
        if counting
        else [
            resource(child, base, wanted, inline=inline, tiled=tiled_client(request))
            for _, child in node.items_range(offset, limit)
        ]
    )
    return metadata_response(
        request,
        {
            "data": data,
            "links": _page_links(request, path, offset, limit, count),
            "meta": {"count": count},
        },
    )


def _page_links(
    request: Request, path: str, offset: int, limit: int, count: int
) -> dict[str, str | None]:
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("page[offset]", "page[limit]")
    ]
    url = f"{api_base(request)}/search/{path}".rstrip("/")

    def at(o: int) -> str:
        return url + "?" + urlencode([*params, ("page[offset]", o), ("page[limit]", limit)])

    last = max(0, (count - 1) // limit * limit) if limit else 0
    return {
        "self": at(offset),
        "first": at(0),
        "last": at(last),
        "next": at(offset + limit) if limit and offset + limit < count else None,
        "prev": at(max(0, offset - limit)) if limit and offset > 0 else None,
    }
