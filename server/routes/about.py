"""``GET /api/v1/``: what this server offers; ``GET /healthz``: is it alive."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bluebroker import __version__, formats
from bluebroker.queries import QUERIES
from bluebroker.query_params import LOOKUPS

from ..deps import api_base, catalog, json_response
from ..encoders import ARRAY_FORMATS, DOCUMENT_FORMATS, STREAM_FORMATS, TABLE_FORMATS
from ..negotiation import metadata_response

router = APIRouter()


def _aliases(offered: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """Tiled's shape: structure family -> media type -> its short names for ``?format=``."""
    return {
        family: {
            media: sorted(k for k, v in formats.ALIASES.items() if v == media) for media in types
        }
        for family, types in offered.items()
    }


def _required(request: Request) -> bool:
    """Whether a caller needs a credential to read (Tiled's client then insists on one)."""
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        return request.app.state.api_key is not None
    return not (auth.open or auth.public)


@router.get("/api/v1/", summary="About this server: version, formats, queries, auth")
@router.get("/api/v1", include_in_schema=False)
def about(request: Request) -> Response:
    base = api_base(request)
    offered = {
        "array": ARRAY_FORMATS,
        "table": TABLE_FORMATS,
        "container": STREAM_FORMATS,
        "documents": DOCUMENT_FORMATS,
    }
    return metadata_response(
        request,
        {
            "api_version": 1,
            "library_version": __version__,
            "formats": offered,
            "aliases": _aliases(offered),
            "queries": sorted([*QUERIES, *LOOKUPS]),
            # Tiled's shape: an API-key-only server lists no login providers (Tiled's client
            # then asks for api_key=...); how to send the key is said beside them.
            "authentication": {
                "required": _required(request),
                "providers": [],
                "links": None,
                "api_key": {"header": "Authorization: Apikey <key>", "query": "api_key"},
            },
            "links": {
                "self": base,  # no trailing slash: Tiled's client appends "/<route>"
                "documentation": str(request.base_url) + "docs",
                "openapi": str(request.base_url) + "openapi.json",
            },
            "meta": {"root_path": base},
        },
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
