"""Pick the response format from ``?format=`` or the ``Accept`` header."""

from __future__ import annotations

import msgpack
import orjson
from fastapi import Request, Response

from bluebroker import formats

from .encoders.jsonable import dumps
from .errors import ApiError


def choose(request: Request, offered: list[str], default: str) -> str:
    """The media type to answer with, or a 406 that lists what this node offers."""
    explicit = request.query_params.get("format")
    if explicit:
        media = formats.resolve(explicit)
        if media in offered:
            return media
        raise ApiError(406, _unavailable(f"format {explicit!r:.80}", offered))
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return default
    ranked = []
    for i, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, media.strip().lower()))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "") or (media.endswith("/*") and default.startswith(media[:-1])):
            return default
        if media in offered:
            return media
        if media.endswith("/*"):
            for m in offered:
                if m.startswith(media[:-1]):
                    return m
    raise ApiError(406, _unavailable(f"Accept: {accept:.200}", offered))


def _unavailable(asked: str, offered: list[str]) -> str:
    names = sorted({k for k, v in formats.ALIASES.items() if v in offered})
    return (
        f"{asked} is not available here; ask for one of {', '.join(offered)} "
        f"(or ?format= {', '.join(names)})"
    )


def wants_msgpack(request: Request) -> bool:
    """Whether metadata should go as msgpack: the client asked for it by ``Accept`` (as
    Tiled's client does for every metadata request) or by ``?format=msgpack``, ahead of
    JSON."""
    explicit = request.query_params.get("format")
    if explicit:
        return formats.resolve(explicit) == formats.MSGPACK
    accept = request.headers.get("accept", "")
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == formats.MSGPACK:
            return True
        if media in (formats.JSON, "application/*", "*/*"):
            return False
    return False


def tiled_client(request: Request) -> bool:
    """Whether the request comes from Tiled's own Python client (``python-tiled/<version>``
    in ``User-Agent``, which Tiled's server also reads to serve each client version what it
    understands). It is given Tiled's shapes where ours differ: no contents inlined above
    the runs, and Arrow tables with pandas metadata (the index named there)."""
    return request.headers.get("user-agent", "").startswith("python-tiled/")


def metadata_response(request: Request, obj: object, status: int = 200) -> Response:
    """Metadata (the envelope, the root's description, search pages) as JSON, or as msgpack
    when the client prefers it."""
    if wants_msgpack(request):
        # Through JSON first: the same values either way (NaN as nil, numpy as numbers).
        body = msgpack.packb(orjson.loads(dumps(obj)))
        return Response(body, status_code=status, media_type=formats.MSGPACK)
    return Response(dumps(obj), status_code=status, media_type=formats.JSON)
