"""Storage: the SQL catalog of runs, streams, event columns and external data.

``open_catalog(uri)`` opens a SQLite file (the embedded default) or a PostgreSQL database;
``data_roots=[...]`` names the only folders whose detector files it opens (roots.py).
"""

from .errors import (
    AmbiguousKey,
    CatalogError,
    ExternalDataError,
    ExternalDataMissing,
    NotFound,
    SchemaVersionError,
    UnknownHandler,
)
from .node import ArrayNode, Container, Node, TableNode
from .roots import OutsideDataRoots
from .run import Run, Stream
from .runs import RunCatalog
from .tree import Catalog, open_catalog

__all__ = [
    "AmbiguousKey",
    "ArrayNode",
    "Catalog",
    "CatalogError",
    "Container",
    "ExternalDataError",
    "ExternalDataMissing",
    "Node",
    "NotFound",
    "OutsideDataRoots",
    "Run",
    "RunCatalog",
    "SchemaVersionError",
    "Stream",
    "TableNode",
    "UnknownHandler",
    "open_catalog",
]
