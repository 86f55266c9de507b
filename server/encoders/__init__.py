"""Transcoding: numpy arrays, pandas tables and whole streams into the formats people read."""

from bluebroker import formats

ARRAY_FORMATS = [
    formats.JSON,
    formats.OCTET,
    formats.MSGPACK,
    formats.CSV,
    formats.PNG,
    formats.TIFF,
]
TABLE_FORMATS = [
    formats.JSON,
    formats.ARROW,
    formats.PARQUET,
    formats.CSV,
    formats.MSGPACK,
    formats.XLSX,
    formats.HDF5,
]
STREAM_FORMATS = [formats.NETCDF, formats.HDF5]
RUN_FORMATS = [formats.HDF5]
DOCUMENT_FORMATS = [formats.NDJSON, formats.JSON_SEQ, formats.MSGPACK, formats.JSON]
