"""The FastAPI application: ``create_app(catalog)``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from bluebroker import __version__
from bluebroker.catalog import Catalog

from . import errors, openapi
from .auth import require_api_key
from .compression import CompressionMiddleware
from .limits import Limits, RequestLimitMiddleware
from .routes import about, data, documents, nodes, stream


def create_app(
    catalog: Catalog,
    *,
    api_key: str | None = None,
    live_queue_limit: int = 1000,
    **limits: int | float,
) -> FastAPI:
    """Serve ``catalog`` under ``/api/v1``; with ``api_key``, every data route needs it.
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
    app.state.api_key = api_key
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
    app.add_middleware(errors.InternalErrorMiddleware)  # outermost: catches the others' errors
    app.include_router(about.router)
    guarded = [Depends(require_api_key)]
    for module in (nodes, data, documents):
        app.include_router(module.router, dependencies=guarded)
    app.include_router(stream.router)  # checks the API key itself: websockets too
    openapi.install(app)  # the published schema completed from the registries; offline /docs
    return app
