"""``GET /api/v1/``: what this server offers; ``GET /healthz``: is it alive."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bluebroker import __version__, formats
from bluebroker.queries import QUERIES

from ..deps import api_base, catalog, json_response
from ..encoders import ARRAY_FORMATS, DOCUMENT_FORMATS, STREAM_FORMATS, TABLE_FORMATS

router = APIRouter()


@router.get("/api/v1/", summary="About this server: version, formats, queries, auth")
@router.get("/api/v1", include_in_schema=False)
def about(request: Request) -> Response:
    base = api_base(request)
    return json_response(
        {
            "api_version": 1,
            "library_version": __version__,
            "formats": {
                "array": ARRAY_FORMATS,
                "table": TABLE_FORMATS,
                "container": STREAM_FORMATS,
                "documents": DOCUMENT_FORMATS,
            },
            "aliases": formats.ALIASES,
            "queries": sorted(QUERIES),
            "authentication": {
                "required": request.app.state.api_key is not None,
                "providers": [
                    {"mode": "api_key", "header": "Authorization: Apikey <key>", "query": "api_key"}
                ]
                if request.app.state.api_key
                else [],
            },
            "links": {
                "self": base + "/",
                "documentation": str(request.base_url) + "docs",
                "openapi": str(request.base_url) + "openapi.json",
            },
            "meta": {"root_path": base},
        }
    )


@router.get("/healthz", summary="Liveness, catalog reachability and Kafka ingest state")
def healthz(request: Request) -> Response:
    """200 ``{"status": "ok"}`` when the catalog answers and the Kafka ingest (under
    ``serve --kafka``) consumes; otherwise 503 ``{"status": "degraded", ...}`` saying which is
    down, so a load balancer or an operator sees a dead ingest behind a live server."""
    import logging

    import sqlalchemy as sa

    body: dict = {"status": "ok"}
    try:
        with catalog(request).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as err:  # the details (hosts, users) go to the log only
        logging.getLogger(__name__).warning("healthz: catalog unreachable (%s)", err)
        body = {"status": "degraded", "catalog": "unreachable"}
    ingest = getattr(request.app.state, "ingest", None)
    if ingest is not None:
        body["ingest"] = ingest.health()
        if not body["ingest"]["ok"]:
            body["status"] = "degraded"
    return json_response(body, status=200 if body["status"] == "ok" else 503)
