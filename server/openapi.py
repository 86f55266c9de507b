"""The published OpenAPI schema, completed so that it describes the API the routes really serve.

The route handlers read much of their input from ``request.query_params`` (filters, format,
column, fill, max_size, download) and their body from raw bytes, so FastAPI's own schema
misses them, and it lists a 422 validation body that this server never sends (a bad
parameter is a 400 with ``{"detail": ...}``). ``install`` wraps ``app.openapi`` to fill in
what each route reads, the formats it answers with, and every status it returns. Filters come
from the query registry and formats from the format registry, the ones the routes themselves
use, so the published API cannot drift from the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from bluebroker import formats

from . import docs_ui
from .encoders import ARRAY_FORMATS, DOCUMENT_FORMATS, RUN_FORMATS, STREAM_FORMATS, TABLE_FORMATS
from .openapi_parts import (
    BINARY,
    COLUMN,
    DOWNLOAD,
    ENVELOPE_FORMAT,
    FILL,
    MAX_SIZE,
    PAIRS,
    SCHEMAS,
    SIGNATURE_PARAMS,
    filter_params,
    format_param,
    query_param,
    schema_ref,
)

REASONS = {
    400: "The request cannot be read: a bad parameter, slice, query or body, or the wrong "
    "kind of node for this route; the detail says what is accepted. (A request line over "
    "64 KiB never reaches the API: uvicorn refuses it with a plain-text 400.)",
    401: "No credential, or a wrong, expired or revoked one (the server's token, an API key "
    "or a session); the detail says how to sign in.",
    403: "Signed in, but this credential lacks the scope the route needs (read:metadata, "
    "read:data, write:data or admin).",
    404: "No node at this path (the detail names what exists), or a missing detector file.",
    406: "The format asked for (Accept or ?format=) is not offered here; the detail lists "
    "those that are.",
    413: "The body, or the data asked for, is more than this server takes or sends in one "
    "request; the detail says what to send or read instead.",
    414: "The URL (path and query) is longer than this server accepts; send fewer or "
    "shorter filters.",
    415: "The body is neither JSON nor msgpack.",
    416: "The Range header is not one 'bytes=FIRST-LAST' (or FIRST-, -COUNT) inside the file; "
    "Content-Range gives the file's size.",
    429: "Too many failed sign-ins (or API-key requests) from this address in a minute; wait "
    "the Retry-After seconds.",
    422: "Some documents were refused (each listed with its reason); the others were written.",
    501: "The detector file's format (resource spec) has no reader on this server.",
    502: "A detector file exists but cannot be read.",
    503: "The catalog did not answer in time (a search over the server's time limit, or the "
    "database unreachable); narrow the search or try again.",
}
# Every request may get these: a 400 from uvicorn for a request line over 64 KiB, and a 414
# from RequestLimitMiddleware (server/limits.py) for a URL over the server's max_url_bytes.
ALWAYS = (400, 414)


@dataclass(frozen=True)
class Route:
    """What one operation serves beyond its signature."""

    ok: dict[str, dict]  # media type -> JSON Schema of the 200 body
    errors: tuple[int, ...] = ()  # each with an Error body, unless named in ``bodies``
    params: tuple[dict, ...] = ()
    headers: dict[str, dict] = field(default_factory=dict)
    public: bool = False  # reachable without the API key
    body: dict | None = None
    filters: bool = False  # takes the query registry's filters (read when the schema is made)
    bodies: dict[int, tuple[str, str]] = field(default_factory=dict)  # status: (schema, why)


def _files(offered: list[str]) -> dict[str, dict]:
    return {m: ({} if m == formats.JSON else BINARY) for m in offered}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}, "required": True}


DISPOSITION = {"Content-Disposition": _header("inline or attachment, with a file name")}
ARRAY_HEADERS = {
    **DISPOSITION,
    "X-Array-Shape": _header("the shape sent, comma-separated (empty for a scalar)"),
    "X-Array-Dtype": _header("the numpy dtype, e.g. <f8"),
}
NODE_ERRORS = (400, 404, 503)  # a path resolved in the catalog (uids within a time limit)
DATA_ERRORS = (*NODE_ERRORS, 406, 413, 501, 502)  # 413: over the server's max_read_bytes
ARRAY = Route(
    _files(ARRAY_FORMATS),
    DATA_ERRORS,
    (format_param(ARRAY_FORMATS), MAX_SIZE, DOWNLOAD),
    ARRAY_HEADERS,
)
TABLE_OK = {**_files(TABLE_FORMATS), formats.JSON: {"type": "array", "items": {"type": "object"}}}
TABLE = Route(
    TABLE_OK, DATA_ERRORS, (format_param(TABLE_FORMATS), COLUMN, FILL, DOWNLOAD), DISPOSITION
)
CONTAINER_FORMATS = [*STREAM_FORMATS, *(m for m in RUN_FORMATS if m not in STREAM_FORMATS)]
# a stream's table at /container/full (Tiled's client reads tables as datasets there) is sent
# in the table's formats
CONTAINER_FORMATS += [m for m in TABLE_FORMATS if m not in CONTAINER_FORMATS]
DOCUMENTS_OK = {
    **_files(DOCUMENT_FORMATS),
    formats.NDJSON: {"type": "string"},
    formats.JSON_SEQ: {"type": "string"},
    formats.JSON: {"type": "array", "items": schema_ref("DocumentPair")},
}
POST_BODY = {
    "required": True,
    "description": "A [name, doc] pair or a list of pairs; msgpack bodies may carry numpy "
    "arrays (msgpack-numpy), never pickled objects.",
    "content": {formats.JSON: {"schema": PAIRS}, formats.MSGPACK: {"schema": PAIRS}},
}

PRINCIPAL = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["owner", "anonymous", "user", "service"]},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "via": {"type": "string"},
    },
}
HTML_PAGE = {"text/html": {"type": "string"}}
REVOKED = {"type": "object", "properties": {"revoked": {"type": "integer"}}}
TOKENS = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string"},
        "expires_in": {"type": "integer"},
        "refresh_token": {"type": "string"},
        "refresh_token_expires_in": {"type": "integer"},
        "principal": {"type": "string"},
    },
}
DEVICE = {
    "type": "object",
    "properties": {
        "device_code": {"type": "string"},
        "user_code": {"type": "string"},
        "verification_uri": {"type": "string"},
        "verification_uri_complete": {"type": "string"},
        "expires_in": {"type": "integer"},
        "interval": {"type": "number"},
    },
}
API_KEY = {
    "type": "object",
    "properties": {
        "secret": {"type": "string", "description": "the key: shown in this answer only"},
        "first_eight": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "expires": {"type": ["number", "null"]},
    },
}

ROUTES: dict[tuple[str, str], Route] = {
    ("get", "/api/v1/"): Route({formats.JSON: schema_ref("About")}, public=True),
    ("get", "/healthz"): Route(
        {formats.JSON: schema_ref("Health")},
        (503,),
        public=True,
        bodies={
            503: ("Health", "Degraded: the catalog or the Kafka ingest is down (it says which).")
        },
    ),
    ("get", "/api/v1/metadata/{path}"): Route(
        {formats.JSON: schema_ref("Node")}, (*NODE_ERRORS, 502)
    ),
    ("get", "/api/v1/search/{path}"): Route(
        {formats.JSON: schema_ref("Page")}, (*NODE_ERRORS, 502), filters=True
    ),
    ("get", "/api/v1/array/full/{path}"): ARRAY,
    ("get", "/api/v1/array/block/{path}"): ARRAY,
    ("get", "/api/v1/table/full/{path}"): TABLE,
    ("get", "/api/v1/table/partition/{path}"): TABLE,
    ("get", "/api/v1/container/full/{path}"): Route(
        _files(CONTAINER_FORMATS),
        (*NODE_ERRORS, 406, 413),
        (format_param(CONTAINER_FORMATS), DOWNLOAD),
        DISPOSITION,
    ),
    ("get", "/api/v1/asset/bytes/{path}"): Route(  # a served folder's file (routes/files.py)
        {formats.OCTET: BINARY},
        (*NODE_ERRORS, 403, 416),  # 403: a link out of the served folder
        headers={
            "Content-Disposition": _header("attachment, with the file's name"),
            "Accept-Ranges": _header("bytes: a Range header (bytes=FIRST-LAST) gets a 206"),
        },
    ),
    ("get", "/api/v1/documents/{path}"): Route(
        DOCUMENTS_OK, (*NODE_ERRORS, 406), (format_param(DOCUMENT_FORMATS),), DISPOSITION
    ),
    ("post", "/api/v1/documents/{path}"): Route(
        {formats.JSON: schema_ref("WriteResult")},
        (400, 404, 413, 415, 422),
        body=POST_BODY,
        bodies={
            404: ("Error", "No route: the path holds a line break, which no route takes."),
            422: ("WriteResult", REASONS[422]),
        },
    ),
    ("get", "/api/v1/auth/whoami"): Route({formats.JSON: PRINCIPAL}),
    ("post", "/api/v1/auth/apikey"): Route({formats.JSON: API_KEY}, (400, 403, 404, 429)),
    ("get", "/api/v1/auth/apikey"): Route(
        {formats.JSON: {"type": "object", "properties": {"keys": {"type": "array"}}}},
        (400, 403, 404, 429),
    ),
    ("delete", "/api/v1/auth/apikey"): Route(
        {formats.JSON: {"type": "object", "properties": {"revoked": {"type": "integer"}}}},
        (400, 403, 404, 429),
    ),
    # OpenID Connect sign-in (server/routes/oidc_routes.py): these are reached before signing
    # in (a server without sign-in answers them with a 404)
    ("get", "/api/v1/auth/methods"): Route(
        {formats.JSON: {"type": "object", "properties": {"oidc": {}}}}, public=True
    ),
    ("get", "/api/v1/auth/login"): Route({}, (400, 404, 429, 502), public=True),
    ("get", "/api/v1/auth/callback"): Route(HTML_PAGE, (400, 404, 429, 502), public=True),
    ("post", "/api/v1/auth/device_code"): Route({formats.JSON: DEVICE}, (404, 429), public=True),
    ("get", "/api/v1/auth/device"): Route(HTML_PAGE, (404, 429), public=True),
    ("post", "/api/v1/auth/device_code/token"): Route(
        {formats.JSON: TOKENS}, (400, 404, 429), public=True
    ),
    # these answer a bad or spent credential with a 401 (and 403, 429 as every such route)
    ("post", "/api/v1/auth/session/refresh"): Route({formats.JSON: TOKENS}, (400, 404)),
    ("post", "/api/v1/auth/logout"): Route({formats.JSON: REVOKED}, (400, 404)),
    ("get", "/api/v1/auth/sessions"): Route(
        {formats.JSON: {"type": "object", "properties": {"sessions": {"type": "array"}}}},
        (400, 404),
    ),
    ("delete", "/api/v1/auth/sessions"): Route({formats.JSON: REVOKED}, (400, 404)),
    ("get", "/api/v1/stream/single/{path}"): Route(
        {"text/event-stream": {"type": "string"}},
        NODE_ERRORS,
        (
            query_param(
                "Last-Event-ID",
                {"type": "string", "pattern": "^[0-9]+$"},
                "Resume after this sequence (what EventSource sends on reconnecting).",
            )
            | {"in": "header"},
            ENVELOPE_FORMAT,
        ),
    ),
}
PATH_EXAMPLES = {
    "/api/v1/metadata/{path}": "bmm/raw",
    "/api/v1/search/{path}": "bmm/raw",
    "/api/v1/array/full/{path}": "bmm/raw/<uid>/primary/data/det1",
    "/api/v1/array/block/{path}": "bmm/raw/<uid>/primary/data/det1",
    "/api/v1/table/full/{path}": "bmm/raw/<uid>/primary/data",
    "/api/v1/table/partition/{path}": "bmm/raw/<uid>/primary/data",
    "/api/v1/container/full/{path}": "bmm/raw/<uid>/primary",
    "/api/v1/documents/{path}": "bmm/raw",
    "/api/v1/stream/single/{path}": "bmm/raw",
}
WEBSOCKET = (
    "The same path also takes a websocket (ws://), with ?start= and ?envelope_format=json or "
    "msgpack; it closes with 1008 for a bad API key, 1011 when the catalog cannot serve it "
    "now (reconnect later), 4400 for a bad request, 4404 for no such node and 4429 when the "
    "subscriber fell too far behind."
)


def _response(
    status: int, content: dict[str, dict], headers: dict | None = None, why: str = ""
) -> dict:
    out: dict[str, Any] = {
        "description": why or ("OK" if status == 200 else REASONS[status]),
        "content": {media: {"schema": schema} for media, schema in content.items()},
    }
    if headers:
        out["headers"] = headers
    return out


def _error_content(status: int, name: str) -> dict[str, dict]:
    content = {formats.JSON: schema_ref(name)}
    if status == 400:  # uvicorn's own answer to a request line over 64 KiB
        content["text/plain"] = {"type": "string"}
    return content


def complete(schema: dict[str, Any], *, api_key: bool) -> dict[str, Any]:
    """Fill FastAPI's ``schema`` in place with what ``ROUTES`` says each route serves."""
    components = schema.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components.setdefault("schemas", {}).update(SCHEMAS)
    components["securitySchemes"] = {
        "apiKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "the header 'Authorization: Apikey <key>'",
        },
        "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
    }
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            route = ROUTES.get((method, path))
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation body; ours is a 400
            for status in ALWAYS:
                responses[str(status)] = _response(status, _error_content(status, "Error"))
            if route is None:
                continue
            _complete_operation(path, op, route, api_key)
            if path == "/api/v1/stream/single/{path}":
                op["description"] = WEBSOCKET
    return schema


def _complete_operation(path: str, op: dict, route: Route, api_key: bool) -> None:
    responses = op["responses"]
    responses["200"] = _response(200, route.ok, route.headers)
    errors = set(route.errors)
    if api_key and not route.public:
        errors |= {401, 403, 429}  # no or a wrong credential; a missing scope; guessing
        op["security"] = [{"apiKeyHeader": []}, {"apiKeyQuery": []}]
    for status in sorted(errors):
        name, why = route.bodies.get(status, ("Error", ""))
        responses[str(status)] = _response(status, _error_content(status, name), why=why)
    params = op.setdefault("parameters", [])
    have = {(p["name"], p["in"]) for p in params}
    extra = [*route.params, *(filter_params() if route.filters else ())]
    params.extend(p for p in extra if (p["name"], p["in"]) not in have)
    for p in params:
        if p["in"] == "path" and path in PATH_EXAMPLES:
            p["description"] = "A node's path in the tree, e.g. " + PATH_EXAMPLES[path]
            p["example"] = PATH_EXAMPLES[path]
        elif p["in"] == "query" and p["name"] in SIGNATURE_PARAMS:
            p.update(SIGNATURE_PARAMS[p["name"]])
    if route.body is not None:
        op["requestBody"] = route.body


def install(app: FastAPI) -> None:
    """Serve the completed schema at ``app.openapi_url`` and Swagger UI at ``/docs`` from
    packaged assets (no CDN). Call after the routes are included."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(base(), api_key=not app.state.auth.open)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    docs_ui.install(app)


__all__ = ["ROUTES", "complete", "filter_params", "format_param", "install"]
