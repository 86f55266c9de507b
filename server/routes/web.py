"""The web page: ``/browse/{path}`` and ``/static/{file}`` (``/`` is in ``home.py``).

Every view of the page is a URL, so every ``/browse/...`` path answers with the same
``index.html`` and the page's own router (``web/router.js``) reads the path; a path that is
not in the tree still gets the page, which shows the API's 404 in words. Static files come
from the ``bluebroker.web`` package. The page loads them under ``/static/v-<version>/``, so
that the modules' relative imports carry the version too: such URLs (and ``?v=<version>``)
are cached for a day as immutable, and a repeat visit asks the network for no file at all;
any other URL (an older version's, or none) gets the current file and revalidates by ETag.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bluebroker import __version__

from ..auth import TOKEN_COOKIE, authenticate
from ..errors import ApiError

router = APIRouter()

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


@lru_cache(maxsize=1)
def _root() -> Path:
    return Path(str(resources.files("bluebroker.web"))).resolve()


@lru_cache(maxsize=1)
def asset_version() -> str:
    """The bluebroker version plus a digest of the page's files: a new build or an edited
    file gives new URLs, so a browser never runs yesterday's script against today's API."""
    digest = hashlib.sha256()
    for path in sorted(_root().rglob("*")):
        if path.is_file() and path.suffix in MEDIA_TYPES:
            digest.update(path.relative_to(_root()).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:8]}"


def index_response(request: Request) -> Response:
    """The page itself; a ``?token=`` that just became a cookie is taken out of the address
    bar (and the history) by a 303 to the same URL without it."""
    token = request.query_params.get("token")
    if token:
        with suppress(ApiError):  # a wrong token: the page shows the API's 401 in words
            authenticate(request)
        kept = request.cookies.get(TOKEN_COOKIE) == token  # opened the printed URL again
        if kept or getattr(request.state, "set_token_cookie", None):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            query = urlencode(rest)
            return RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
    html = (_root() / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(
        html.replace("{{version}}", asset_version()), headers={"Cache-Control": "no-cache"}
    )


@router.get("/browse", include_in_schema=False)
@router.get("/browse/{path:path}", include_in_schema=False)
def browse(request: Request, path: str = "") -> Response:
    return index_response(request)


@router.get("/static/{file:path}", include_in_schema=False)
def static(request: Request, file: str) -> Response:
    root = _root()
    pinned = request.query_params.get("v") == asset_version()
    head, _, rest = file.partition("/")
    if head.startswith("v-") and rest:  # /static/v-<version>/<file>
        file, pinned = rest, head[2:] == asset_version()
    target = (root / file).resolve()
    kind = MEDIA_TYPES.get(target.suffix)
    if kind is None or not target.is_relative_to(root) or not target.is_file():
        raise ApiError(404, f"no static file {file!r} in the web page's files")
    body = target.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    cache = "public, max-age=86400, immutable" if pinned else "no-cache"
    headers = {"Cache-Control": cache, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=kind, headers=headers)
