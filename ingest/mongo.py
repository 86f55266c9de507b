"""The migration's view of a Databroker "mongo_normalized" MongoDB database.

The reader (``MongoSource``: the layout, its quirks, the order documents come in) and the
normalization of Mongo's types live on the catalog side (``bluebroker.catalog.mongo``),
where the live Mongo catalog that ``serve --mount NAME=mongodb://...`` serves reads through
them too; they are re-exported here for ``bluebroker ingest mongo``, whose own pieces
(``time_bound`` for ``--since``/``--until``) stay here.
"""

from __future__ import annotations

import datetime
import math

from bluebroker.catalog.mongo.documents import (
    PAGE,
    MongoSourceError,
    _event,
    _pymongo,
    _seconds,
    datum_pages,
    document,
    event_pages,
    open_database,
    plain,
)
from bluebroker.catalog.mongo.reader import ASSETS, METADATASTORE, MongoSource

__all__ = [
    "ASSETS",
    "METADATASTORE",
    "PAGE",
    "MongoSource",
    "MongoSourceError",
    "_event",
    "_pymongo",
    "datum_pages",
    "document",
    "event_pages",
    "open_database",
    "plain",
    "time_bound",
]


def time_bound(text: str, what: str) -> float:
    """``--since``/``--until``: POSIX seconds, or an ISO 8601 date or date-time (UTC unless
    it says otherwise)."""
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise MongoSourceError(
                f"{what} takes a date (2019-05-01), a date-time (2019-05-01T08:00) or POSIX "
                f"seconds, got {text!r:.60}"
            ) from None
        return _seconds(when)
    if not math.isfinite(value):
        raise MongoSourceError(f"{what} must be a finite time, got {text!r:.60}")
    return value
