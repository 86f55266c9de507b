"""Every error is JSON that says what was wrong and how to mend it: ``{"detail": "..."}``.

A client's mistake is a 4xx naming the mistake. Anything else is a bug: its 500 carries only
an error id, and the traceback goes to the server log under that id, because exception text
(SQL, parameters, paths) tells an outsider about the inside and a user nothing they can act on.
"""

from __future__ import annotations

import json
import logging
import uuid

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bluebroker.catalog import (
    AmbiguousKey,
    ExternalDataError,
    ExternalDataMissing,
    NotFound,
    OutsideDataRoots,
    UnknownHandler,
)
from bluebroker.catalog.errors import SourceUnavailable
from bluebroker.catalog.search import QueryTimeout
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
    (OutsideDataRoots, 403),  # before its parent ExternalDataError: not the file's fault
    (ExternalDataMissing, 404),
    (UnknownHandler, 501),
    (ExternalDataError, 502),
    (QueryTimeout, 503),
    (SourceUnavailable, 503),  # a mounted MongoDB database that does not answer
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

    @app.exception_handler(sa.exc.TimeoutError)
    async def _busy(request: Request, exc: sa.exc.TimeoutError) -> JSONResponse:
        detail = "the server is busy: every catalog connection is in use; try again shortly"
        return _json(503, detail, {"Retry-After": "2"})

    for exc_type, status in STATUS:
        app.add_exception_handler(exc_type, _handler(status))


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return _json(status, str(exc))

    return handle


def internal_error(exc: BaseException, where: str) -> str:
    """Log ``exc`` with a new error id and return the one-line detail a client is shown."""
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error %s serving %s", error_id, where, exc_info=exc)
    return (
        f"internal error {error_id}; nothing you sent explains it, the server log has the "
        "details under this id: please report it"
    )


class InternalErrorMiddleware:
    """Answer an unexpected exception with a 500 that holds only an error id, and keep the
    connection: the exception is logged here, not re-raised, so a keep-alive connection
    serves its next request (Starlette's own handler re-raises and the server drops it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            where = f"{scope.get('method')} {scope.get('path')!r:.300}"  # repr: no forged lines
            detail = internal_error(exc, where)
            if started:  # too late for a status: the client sees a cut-off body
                return
            body = json.dumps({"detail": detail}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
