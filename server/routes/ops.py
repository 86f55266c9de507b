"""``GET /metrics`` (Prometheus) and ``GET /readyz`` (may this process take traffic now).

``/healthz`` says whether the process and what it depends on are up; ``/readyz`` says
whether a load balancer should send it requests: the catalog answers, its schema is the one
this server was built for (during a rolling upgrade an old server behind a newer schema steps
aside), and the Kafka ingest under ``serve --kafka`` is not stalled.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from ..auth import require
from ..deps import catalog, json_response
from ..principals import READ_METADATA

router = APIRouter()
log = logging.getLogger(__name__)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus's text format. Async: the live hub's state is read on its own loop. Needs
    read:metadata like the rest of the API, unless ``serve --metrics-public``."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if not getattr(request.app.state, "metrics_public", False):
        await require(READ_METADATA)(request)
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> Response:
    """200 ``{"status": "ready"}``, or 503 ``{"status": "not ready", "reasons": [...]}``
    (open to anyone, as ``/healthz``: it says what, never hosts or users)."""
    import sqlalchemy as sa

    from bluebroker.catalog.schema import SCHEMA_VERSION, current_version

    reasons = []
    try:
        with catalog(request).engine.connect() as conn:
            version = current_version(conn)
    except sa.exc.SQLAlchemyError as err:
        log.warning("readyz: catalog unreachable (%s)", err)
        reasons.append("the catalog database does not answer")
    else:
        if version != SCHEMA_VERSION:
            reasons.append(
                f"the catalog's schema is version {version}, this server's is {SCHEMA_VERSION}: "
                "run bluebroker catalog upgrade, or serve it with a matching bluebroker"
            )
    ingest = getattr(request.app.state, "ingest", None)
    if ingest is not None:
        health = ingest.health()
        if not health["ok"]:
            reasons.append(f"the Kafka ingest is {health['state']}")
    if reasons:
        return json_response({"status": "not ready", "reasons": reasons}, status=503)
    return json_response({"status": "ready"})
