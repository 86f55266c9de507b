"""``/docs``: Swagger UI served from the swagger-ui-bundle package, so it works offline.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and its favicon from
fastapi.tiangolo.com, and Swagger UI asks validator.swagger.io to check the schema; none of
that reaches a beamline network cut off from the internet. Here every asset comes from this
server, and the online validator is switched off. ``/redoc`` (CDN-only) is dropped.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import Route

from .errors import ApiError

DOCS = "/docs"
ASSETS = DOCS + "/assets"
# The only files the page needs; anything else under /docs/assets is a 404.
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def assets_dir() -> Path:
    """Swagger UI's packaged files (``swagger-ui-bundle-v2`` ships Swagger UI 5, which reads
    OpenAPI 3.1 as FastAPI writes it)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def install(app: FastAPI) -> None:
    """Replace FastAPI's CDN-based ``/docs`` (and ``/redoc``) with the packaged Swagger UI."""
    cdn_pages = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [
        r for r in app.router.routes if not (isinstance(r, Route) and r.path in cdn_pages)
    ]
    app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url = DOCS, None, None
    folder = assets_dir()

    @app.get(DOCS, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in FILES:
            raise ApiError(404, f"no documentation asset {name!r}; the page is at {DOCS}")
        return FileResponse(
            folder / name,
            media_type=FILES[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )
