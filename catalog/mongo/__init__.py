"""A legacy Databroker "mongo_normalized" MongoDB database served in place, read-only.

``mount_mongo(catalog, 'csx', 'mongodb://host/metadatastore?assets=assets')`` serves its runs
at ``/csx`` beside the SQL catalogs (``bluebroker serve --mount csx=mongodb://...``), behind
the same node classes, so routes, clients and the databroker facade see one tree. The reader
(``MongoSource``) and the normalization of Mongo's documents are shared with the migration,
``bluebroker ingest mongo``.
"""

from .documents import MongoSourceError, document, plain
from .reader import MongoSource
from .source import MongoCatalogSource, check_mongo, mount_mongo, parse_spec

__all__ = [
    "MongoCatalogSource",
    "MongoSource",
    "MongoSourceError",
    "check_mongo",
    "document",
    "mount_mongo",
    "parse_spec",
    "plain",
]
