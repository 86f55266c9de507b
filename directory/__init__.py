"""Serving a folder of files (HDF5/NeXus, TIFF and TIFF sequences, CSV/TSV/XDI, Parquet,
Zarr, anything else as bytes) in the same tree as catalogs of runs.

``DirectorySource(catalog, folder, name)`` indexes the folder in the catalog's database
(``register()``, incremental) and ``catalog.mount(name, source)`` serves it at ``/name``;
``bluebroker serve directory FOLDER`` does both and serves it at the root.
"""

from .readers import Entry, Reader
from .register import Report
from .source import DirectorySource

__all__ = ["DirectorySource", "Entry", "Reader", "Report"]
