"""Media types the server speaks, and the short names accepted in ``?format=``."""

from __future__ import annotations

JSON = "application/json"
MSGPACK = "application/x-msgpack"
OCTET = "application/octet-stream"
CSV = "text/csv"
PNG = "image/png"
TIFF = "image/tiff"
ARROW = "application/vnd.apache.arrow.file"
PARQUET = "application/x-parquet"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HDF5 = "application/x-hdf5"
NETCDF = "application/x-netcdf"
JSON_SEQ = "application/json-seq"
NDJSON = "application/x-ndjson"

ALIASES = {
    "json": JSON,
    "msgpack": MSGPACK,
    "octet-stream": OCTET,
    "bytes": OCTET,
    "csv": CSV,
    "png": PNG,
    "tiff": TIFF,
    "tif": TIFF,
    "arrow": ARROW,
    "parquet": PARQUET,
    "xlsx": XLSX,
    "excel": XLSX,
    "h5": HDF5,
    "hdf5": HDF5,
    "nc": NETCDF,
    "netcdf": NETCDF,
    "json-seq": JSON_SEQ,
    "jsonl": NDJSON,
    "ndjson": NDJSON,
}

EXTENSIONS = {
    JSON: "json",
    MSGPACK: "msgpack",
    OCTET: "bin",
    CSV: "csv",
    PNG: "png",
    TIFF: "tiff",
    ARROW: "arrow",
    PARQUET: "parquet",
    XLSX: "xlsx",
    HDF5: "h5",
    NETCDF: "nc",
    JSON_SEQ: "json-seq",
    NDJSON: "jsonl",
}


def resolve(name: str) -> str:
    """A media type from a short name or a media type; unknown names pass through."""
    return ALIASES.get(name.lower(), name)
