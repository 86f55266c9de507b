"""Every error is JSON that says what was wrong and how to mend it: ``{"detail": "..."}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bluebroker.catalog import (
    AmbiguousKey,
    CatalogError,
    ExternalDataError,
    ExternalDataMissing,
    NotFound,
    UnknownHandler,
)
from bluebroker.queries import QueryError
from bluebroker.slicing import SliceError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, raised by route code."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


STATUS = [
    (NotFound, 404),
    (AmbiguousKey, 400),
    (QueryError, 400),
    (SliceError, 400),
    (IndexError, 400),
    (ExternalDataMissing, 404),
    (UnknownHandler, 501),
    (ExternalDataError, 502),
    (CatalogError, 500),
]


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Map exceptions to JSON error responses."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}; the API lives under /api/v1 (see /docs)"
        return _json(exc.status_code, str(detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg')}")
        return _json(400, "invalid request: " + "; ".join(parts))

    for exc_type, status in STATUS:
        app.add_exception_handler(exc_type, _handler(status))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s", request.url)
        return _json(
            500,
            f"internal error ({type(exc).__name__}: {exc}); the server log has "
            "the details, please report it",
        )


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return _json(status, str(exc))

    return handle
