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

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from bluebroker import formats
from bluebroker.ingest.validation import NAMES
from bluebroker.queries import DUPLICATES, OPERATORS, QUERIES

from . import docs_ui
from .encoders import ARRAY_FORMATS, DOCUMENT_FORMATS, RUN_FORMATS, STREAM_FORMATS, TABLE_FORMATS

ERROR_REF = {"$ref": "#/components/schemas/Error"}
REASONS = {
    400: "The request cannot be read: a bad parameter, slice, query or body, or the wrong "
    "kind of node for this route; the detail says what is accepted.",
    401: "A missing or wrong API key (this server was started with one).",
    404: "No node at this path (the detail names what exists), or a missing detector file.",
    406: "The format asked for (Accept or ?format=) is not offered here; the detail lists "
    "those that are.",
    413: "The body is larger than this server accepts.",
    415: "The body is neither JSON nor msgpack.",
    422: "Some documents were refused (each listed with its reason); the others were written.",
    501: "The detector file's format (resource spec) has no reader on this server.",
    502: "A detector file exists but cannot be read.",
}
BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}

# JSON bodies of the routes' 200 responses (other media types are files: BINARY).
LINKS = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
RESOURCE = {
    "type": "object",
    "required": ["id", "attributes", "links"],
    "properties": {
        "id": {"type": "string"},
        "attributes": {
            "type": "object",
            "properties": {
                "ancestors": {"type": "array", "items": {"type": "string"}},
                "structure_family": {"enum": ["container", "array", "table"]},
                "specs": {"type": "array", "items": {"type": "object"}},
                "metadata": {"type": "object"},
                "structure": {"type": "object"},
                "sorting": {"type": "array", "items": {"type": "object"}},
                "data_sources": {"type": "array", "items": {"type": "object"}},
            },
        },
        "links": LINKS,
        "meta": {"type": ["object", "null"]},
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string", "description": "what to fix"}},
    },
    "Resource": RESOURCE,
    "About": {
        "type": "object",
        "required": ["api_version", "library_version", "formats", "queries", "authentication"],
        "properties": {
            "api_version": {"type": "integer"},
            "library_version": {"type": "string"},
            "formats": {"type": "object"},
            "aliases": {"type": "object", "additionalProperties": {"type": "string"}},
            "queries": {"type": "array", "items": {"type": "string"}},
            "authentication": {"type": "object"},
            "links": LINKS,
            "meta": {"type": "object"},
        },
    },
    "Node": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"$ref": "#/components/schemas/Resource"}},
    },
    "Page": {
        "type": "object",
        "required": ["data", "links", "meta"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}},
            "links": LINKS,
            "meta": {
                "type": "object",
                "required": ["count"],
                "properties": {"count": {"type": "integer", "minimum": 0}},
            },
        },
    },
    "WriteResult": {
        "type": "object",
        "required": ["written", "duplicates", "rejected"],
        "properties": {
            "written": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "name", "error"],
                    "properties": {
                        "index": {"type": "integer"},
                        "name": {"type": "string"},
                        "uid": {"type": ["string", "null"]},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
    "DocumentPair": {
        "type": "array",
        "prefixItems": [{"enum": list(NAMES)}, {"type": "object"}],
        "minItems": 2,
        "maxItems": 2,
        "description": "[name, document] as a RunEngine emits it",
    },
}
PAIRS = {
    "oneOf": [
        {"$ref": "#/components/schemas/DocumentPair"},
        {"type": "array", "items": {"$ref": "#/components/schemas/DocumentPair"}},
    ]
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: dict, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
        **extra,
    }


def format_param(offered: list[str]) -> dict[str, Any]:
    """``?format=``: the short names of the format registry that lead to what is offered,
    and the media types themselves (what ``negotiation.choose`` accepts)."""
    names = sorted(k for k, v in formats.ALIASES.items() if v in offered)
    return _query(
        "format",
        {"type": "string", "enum": [*names, *offered]},
        "The response format, by short name or media type (overrides Accept).",
    )


DOWNLOAD = _query(
    "download",
    {"type": "boolean", "default": False},
    "true: Content-Disposition says attachment (browsers save the file) instead of inline.",
)
MAX_SIZE = _query(
    "max_size",
    {"type": "integer", "minimum": 1, "default": 1024},
    "PNG and TIFF only: images wider or taller than this many pixels are downsampled.",
)
COLUMN = _query(
    "column",
    {"type": "array", "items": {"type": "string"}},
    "The columns to send (repeat the parameter for several); without it, all of them.",
    style="form",
    explode=True,
)
FILL = _query(
    "fill",
    {"type": "boolean", "default": True},
    "false, on a stream's data or timestamps table: detector fields as their datum ids "
    "instead of the detector data (legacy Databroker's unfilled tables).",
)
ENVELOPE_FORMAT = _query(
    "envelope_format",
    {"type": "string", "enum": ["json", "msgpack"], "default": "json"},
    "The websocket's message encoding (ws:// at this same path). Server-Sent Events are "
    "JSON whatever this says.",
)

# Field types of the query registry's dataclasses, as JSON Schema; a facility's own query
# with other annotations is described as any JSON value.
ANNOTATIONS = {
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "list": {"type": "array"},
    "tuple": {"type": "array"},
    "str | None": {"type": ["string", "null"]},
}
FIELD_SCHEMAS = {
    ("comparison", "operator"): {"enum": list(OPERATORS)},
    ("scan_id", "scan_ids"): {"type": "array", "items": {"type": "integer"}},
    ("scan_id", "duplicates"): {"enum": list(DUPLICATES)},
    ("partial_uid", "partial_uids"): {"type": "array", "items": {"type": "string", "minLength": 1}},
    ("time_range", "since"): {"type": ["number", "string", "null"]},
    ("time_range", "until"): {"type": ["number", "string", "null"]},
}


def filter_params() -> list[dict[str, Any]]:
    """One parameter per field of every query in the registry, as the client sends them:
    ``filter[<query>][condition][<field>]=<JSON>`` (repeat a query's parameters to apply it
    several times; all filters must hold)."""
    params = []
    for qname, cls in sorted(QUERIES.items()):
        doc = " ".join((cls.__doc__ or "").split())
        for f in dataclasses.fields(cls):
            schema = FIELD_SCHEMAS.get((qname, f.name)) or ANNOTATIONS.get(str(f.type), {})
            required = f.default is dataclasses.MISSING and f.default_factory is (
                dataclasses.MISSING
            )
            params.append(
                {
                    "name": f"filter[{qname}][condition][{f.name}]",
                    "in": "query",
                    "required": False,
                    "description": f"{doc} ({f.name}, JSON-encoded"
                    + ("; needed with this query's other fields)" if required else ")"),
                    "content": {formats.JSON: {"schema": schema}},
                }
            )
    return params


@dataclass(frozen=True)
class Route:
    """What one operation serves beyond its signature."""

    ok: dict[str, dict]  # media type -> JSON Schema of the 200 body
    errors: tuple[int, ...] = ()
    params: tuple[dict, ...] = ()
    headers: dict[str, dict] = field(default_factory=dict)
    public: bool = False  # reachable without the API key
    body: dict | None = None
    filters: bool = False  # takes the query registry's filters (read when the schema is made)


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
DATA_ERRORS = (400, 404, 406, 501, 502)
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
DOCUMENTS_OK = {
    **_files(DOCUMENT_FORMATS),
    formats.NDJSON: {"type": "string"},
    formats.JSON_SEQ: {"type": "string"},
    formats.JSON: {"type": "array", "items": _ref("DocumentPair")},
}
POST_BODY = {
    "required": True,
    "description": "A [name, doc] pair or a list of pairs; msgpack bodies may carry numpy "
    "arrays (msgpack-numpy), never pickled objects.",
    "content": {formats.JSON: {"schema": PAIRS}, formats.MSGPACK: {"schema": PAIRS}},
}

ROUTES: dict[tuple[str, str], Route] = {
    ("get", "/api/v1/"): Route({formats.JSON: _ref("About")}, public=True),
    ("get", "/healthz"): Route(
        {formats.JSON: {"type": "object", "properties": {"status": {"const": "ok"}}}},
        public=True,
    ),
    ("get", "/api/v1/metadata/{path}"): Route({formats.JSON: _ref("Node")}, (400, 404, 502)),
    ("get", "/api/v1/search/{path}"): Route(
        {formats.JSON: _ref("Page")}, (400, 404, 502), filters=True
    ),
    ("get", "/api/v1/array/full/{path}"): ARRAY,
    ("get", "/api/v1/array/block/{path}"): ARRAY,
    ("get", "/api/v1/table/full/{path}"): TABLE,
    ("get", "/api/v1/table/partition/{path}"): TABLE,
    ("get", "/api/v1/container/full/{path}"): Route(
        _files(CONTAINER_FORMATS),
        (400, 404, 406),
        (format_param(CONTAINER_FORMATS), DOWNLOAD),
        DISPOSITION,
    ),
    ("get", "/api/v1/documents/{path}"): Route(
        DOCUMENTS_OK, (400, 404, 406), (format_param(DOCUMENT_FORMATS),), DISPOSITION
    ),
    ("post", "/api/v1/documents/{path}"): Route(
        {formats.JSON: _ref("WriteResult")}, (400, 413, 415, 422), body=POST_BODY
    ),
    ("get", "/api/v1/stream/single/{path}"): Route(
        {"text/event-stream": {"type": "string"}},
        (400, 404),
        (
            _query(
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
    "msgpack; it closes with 1008 for a bad API key, 4400 for a bad request, 4404 for no "
    "such node and 4429 when the subscriber fell too far behind."
)


def _response(status: int, content: dict[str, dict], headers: dict | None = None) -> dict:
    out: dict[str, Any] = {
        "description": "OK" if status == 200 else REASONS[status],
        "content": {media: {"schema": schema} for media, schema in content.items()},
    }
    if headers:
        out["headers"] = headers
    return out


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
            if op.get("parameters") or op.get("requestBody"):
                responses["400"] = _response(400, {formats.JSON: ERROR_REF})
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
        errors.add(401)
        op["security"] = [{"apiKeyHeader": []}, {"apiKeyQuery": []}]
    for status in sorted(errors):
        content = (
            {formats.JSON: _ref("WriteResult")} if status == 422 else {formats.JSON: ERROR_REF}
        )
        responses[str(status)] = _response(status, content)
    params = op.setdefault("parameters", [])
    have = {(p["name"], p["in"]) for p in params}
    extra = [*route.params, *(filter_params() if route.filters else ())]
    params.extend(p for p in extra if (p["name"], p["in"]) not in have)
    for p in params:
        if p["in"] == "path" and path in PATH_EXAMPLES:
            p["description"] = "A node's path in the tree, e.g. " + PATH_EXAMPLES[path]
            p["example"] = PATH_EXAMPLES[path]
    if route.body is not None:
        op["requestBody"] = route.body


def install(app: FastAPI) -> None:
    """Serve the completed schema at ``app.openapi_url`` and Swagger UI at ``/docs`` from
    packaged assets (no CDN). Call after the routes are included."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(base(), api_key=app.state.api_key is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    docs_ui.install(app)


__all__ = ["ROUTES", "complete", "filter_params", "format_param", "install"]
