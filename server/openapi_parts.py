"""The pieces of the completed OpenAPI schema (``server/openapi.py``): the component schemas
of the JSON bodies the routes send and take, and the parameters they read from the query
string, the search filters built from the query registry and ``format`` from the format one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bluebroker import formats
from bluebroker.ingest.validation import NAMES
from bluebroker.queries import DUPLICATES, OPERATORS, QUERIES

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
            # Tiled's shape: structure family -> media type -> short names (?format=csv)
            "aliases": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
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
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "catalog": {"type": "string"},
            "ingest": {"type": "object"},
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


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def query_param(name: str, schema: dict, description: str, **extra: Any) -> dict[str, Any]:
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
    return query_param(
        "format",
        {"type": "string", "enum": [*names, *offered]},
        "The response format, by short name or media type (overrides Accept).",
    )


DOWNLOAD = query_param(
    "download",
    {"type": "boolean", "default": False},
    "true: Content-Disposition says attachment (browsers save the file) instead of inline.",
)
MAX_SIZE = query_param(
    "max_size",
    {"type": "integer", "minimum": 1, "default": 1024},
    "PNG and TIFF only: images wider or taller than this many pixels are downsampled.",
)
COLUMN = query_param(
    "column",
    {"type": "array", "items": {"type": "string"}},
    "The columns to send (repeat the parameter for several); without it, all of them.",
    style="form",
    explode=True,
)
FILL = query_param(
    "fill",
    {"type": "boolean", "default": True},
    "false, on a stream's data or timestamps table: detector fields as their datum ids "
    "instead of the detector data (legacy Databroker's unfilled tables).",
)
ENVELOPE_FORMAT = query_param(
    "envelope_format",
    {"type": "string", "enum": ["json", "msgpack"], "default": "json"},
    "The websocket's message encoding (ws:// at this same path). Server-Sent Events are "
    "JSON whatever this says.",
)

# What the routes' own signatures declare only as strings, said more exactly.
SIGNATURE_PARAMS: dict[str, dict[str, Any]] = {
    "slice": {
        "description": "numpy syntax per dimension, comma-separated: 0:5, 3, ::2,1:4, -1,...",
        "example": "0:5",
    },
    "block": {
        "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
        "description": "One block index per dimension, comma-separated, as counted in the "
        "array's structure.chunks",
        "example": "0",
    },
    "partition": {"description": "The partition's index (tables have one: 0)", "example": 0},
}

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
