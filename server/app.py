"""The FastAPI application: ``create_app(catalog)``."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from bluebroker import __version__
from bluebroker.catalog import Catalog

from . import errors, openapi
from .api_keys import ApiKeyStore
from .auth import AuthSettings, require
from .compression import CompressionMiddleware
from .headers import SecurityHeadersMiddleware
from .limits import Limits, RequestLimitMiddleware
from .observability import Metrics, ObservabilityMiddleware
from .principals import READ_DATA, READ_METADATA, WRITE_DATA
from .routes import (
    about,
    auth_routes,
    data,
    documents,
    files,
    home,
    nodes,
    oidc_routes,
    ops,
    stream,
    web,
)


def create_app(
    catalog: Catalog,
    *,
    api_key: str | None = None,
    auth: AuthSettings | None = None,
    live_queue_limit: int = 1000,
    **limits: int | float,
) -> FastAPI:
    """Serve ``catalog`` under ``/api/v1``.

    ``auth`` says who may come in (see :class:`~bluebroker.server.auth.AuthSettings`);
    ``api_key`` alone is the single-user shorthand: that key, and keys made with
    ``bluebroker api-key create``, are needed for everything. With neither, the server is
    open (a library server in a test or a notebook; ``bluebroker serve`` never does this).
    A live subscriber more than ``live_queue_limit`` messages behind is disconnected.
    ``limits`` are :class:`~bluebroker.server.limits.Limits` fields (``max_body_bytes``,
    ``max_read_bytes``, ``search_timeout``...), each refused with a status naming it."""
    try:
        bounds = Limits(**limits)
    except TypeError:
        known = ", ".join(Limits.__dataclass_fields__)
        raise TypeError(f"create_app limits are {known}; got {sorted(limits)}") from None
    app = FastAPI(
        title="bluebroker",
        version=__version__,
        description="Bluesky runs as containers, tables and arrays. See /api/v1/ for formats.",
        openapi_url="/openapi.json",
    )
    app.state.catalog = catalog
    if auth is None:
        auth = AuthSettings(token=api_key, keys=ApiKeyStore(catalog.engine) if api_key else None)
    app.state.auth = auth
    app.state.api_key = auth.token  # what /api/v1/ says about sign-in (routes/about.py)
    app.state.writers = documents.WriterPool(catalog)
    app.state.live_queue_limit = live_queue_limit
    app.state.hub = None  # made on the first subscription (server/live.py)
    app.state.limits = bounds
    catalog.search_timeout = bounds.search_timeout  # the catalog's searches (catalog/runs.py)
    errors.install(app)
    app.add_middleware(CompressionMiddleware)
    app.add_middleware(
        RequestLimitMiddleware,
        max_body_bytes=bounds.max_body_bytes,
        max_url_bytes=bounds.max_url_bytes,
    )
    app.add_middleware(SecurityHeadersMiddleware, cors_origins=auth.cors_origins)
    app.add_middleware(errors.InternalErrorMiddleware)  # catches the others' errors
    app.state.metrics = Metrics(app)  # /metrics (routes/ops.py); public with metrics_public
    app.state.metrics_public = False
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)  # outermost
    # Routes are matched in the order included, each router's in turn: the data and
    # metadata routes come first, so a read is matched in about 3 us rather than 33 us
    # behind the sign-in, web-page and OIDC routes (their paths share no prefix with these).
    app.router.routes.append(data.lean_array_full(require(READ_DATA)))  # the slice route
    app.include_router(data.router, dependencies=[Depends(require(READ_DATA))])
    app.include_router(nodes.router, dependencies=[Depends(require(READ_METADATA))])
    app.include_router(files.router, dependencies=[Depends(require(READ_DATA))])
    app.include_router(documents.router, dependencies=[Depends(_documents_scope)])
    app.include_router(about.router)
    app.include_router(ops.router)  # /metrics, /readyz
    app.include_router(auth_routes.router)
    app.include_router(home.router)  # the web page at /, where the printed ?token= URL lands
    app.include_router(web.router)  # the web page's /browse/{path} and /static/{file}
    app.include_router(oidc_routes.router)  # OpenID Connect sign-in (server/oidc.py)
    app.include_router(stream.router)  # checks the caller itself: websockets too
    openapi.install(app)  # the published schema completed from the registries; offline /docs
    return app


async def _documents_scope(request: Request) -> None:
    """Reading a run's documents is reading data; posting documents is writing."""
    scope = READ_DATA if request.method in ("GET", "HEAD") else WRITE_DATA
    await require(scope)(request)
