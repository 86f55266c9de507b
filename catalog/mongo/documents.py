"""Documents of a Databroker "mongo_normalized" MongoDB database made plain Bluesky documents.

Shared by the live Mongo catalog (this package) and the migration (``bluebroker ingest
mongo``): ``_id`` (Mongo's ObjectId) is dropped; Mongo datetimes become POSIX times in
``time`` fields and ISO 8601 strings elsewhere; other BSON-only values become plain ones.
Events and datums, stored one per Mongo document, are grouped into pages here.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import CatalogError

PAGE = 2500  # events (or datums) per page; Databroker read Mongo in pages of this size


class MongoSourceError(CatalogError, ValueError):
    """A Mongo source that cannot be read as given (said in one line)."""


def _pymongo():
    try:
        import pymongo
    except ImportError as err:  # pragma: no cover - pymongo is in the catalog extra
        raise MongoSourceError(
            "reading MongoDB needs pymongo: pip install 'bluebroker[catalog]'"
        ) from err
    return pymongo


def open_database(uri: str, what: str = "--uri", timeout_ms: int = 10_000):
    """The database that ``uri`` names (``mongodb://host:27017/metadatastore``); a URI that
    names none is refused in words, as is a server that does not answer."""
    pymongo = _pymongo()
    if not isinstance(uri, str) or not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise MongoSourceError(f"{what} must be a mongodb:// URI, got {str(uri)[:80]!r}")
    try:
        client = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=False, connect=False
        )
        database = client.get_default_database()
    except pymongo.errors.ConfigurationError as err:
        if "database" in str(err).lower() or "default" in str(err).lower():
            raise MongoSourceError(
                f"{what} must name the database, e.g. mongodb://host:27017/metadatastore"
            ) from None
        raise MongoSourceError(f"{what} is not a usable MongoDB URI: {err}") from None
    except pymongo.errors.InvalidURI as err:
        raise MongoSourceError(f"{what} is not a valid MongoDB URI: {err}") from None
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as err:
        client.close()
        first = str(err).split(",")[0].split("\n")[0][:200]
        raise MongoSourceError(f"cannot reach the MongoDB server of {what}: {first}") from None
    return database


# -- Mongo's types into plain ones ------------------------------------------------------------


def _seconds(value: datetime.datetime) -> float:
    if value.tzinfo is None:  # pymongo hands out naive datetimes in UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def plain(value: Any, key: str = "") -> Any:
    """``value`` with BSON-only types made plain: datetimes (POSIX seconds under a key named
    ``time``, else ISO 8601), ObjectId and other BSON scalars (strings, numbers), recursively."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if kind is dict:
        return {k: plain(v, k) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return _seconds(value) if key == "time" else value.isoformat()
    if isinstance(value, dict):  # SON and other mappings
        return plain(dict(value), key)
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, int):  # bson.Int64
        return int(value)
    name = kind.__name__
    if name == "Decimal128":
        return float(value.to_decimal())
    if name in ("ObjectId", "Regex", "Code", "DBRef", "Timestamp", "UUID"):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value  # bytes and the rest: left to the writer's checks


def document(doc: dict) -> dict:
    """A Mongo document as a Bluesky document: without Mongo's ``_id``, made plain."""
    doc.pop("_id", None)
    return plain(doc)


def _event(doc: dict) -> dict:
    """An event document made plain cheaply: events are most of a database, and their values
    are nearly always plain numbers, so only the spots where BSON types turn up are looked at."""
    doc.pop("_id", None)
    if type(doc.get("time")) is datetime.datetime:
        doc["time"] = _seconds(doc["time"])
    for part in ("data", "timestamps"):
        values = doc.get(part)
        if type(values) is not dict:
            raise ValueError(
                f"event {str(doc.get('uid'))[:80]!r} has {part!r} that is "
                f"{type(values).__name__}, not a mapping of fields"
            )
        if values:
            for k, v in values.items():
                if type(v) not in (float, int, str, bool):
                    values[k] = plain(v, "time" if part == "timestamps" else "")
    return doc


# -- pages -------------------------------------------------------------------------------------


def event_pages(events: Iterable[dict], size: int = PAGE) -> Iterator[dict]:
    """Event pages of consecutive events of one descriptor; a new page starts whenever the
    events' fields change (a page's columns must all be as long as it)."""
    page: list[dict] = []
    shape: tuple | None = None
    for event in events:
        here = (
            event.get("descriptor"),
            tuple(event.get("data") or ()),
            tuple(event.get("timestamps") or ()),
            None if "filled" not in event else tuple(event["filled"] or ()),
        )
        if page and (here != shape or len(page) >= size):
            yield _event_page(page)
            page = []
        shape = here
        page.append(event)
    if page:
        yield _event_page(page)


def _event_page(events: list[dict]) -> dict:
    first = events[0]
    page: dict[str, Any] = {
        "descriptor": first["descriptor"],
        "uid": [e["uid"] for e in events],
        "seq_num": [e["seq_num"] for e in events],
        "time": [e["time"] for e in events],
        "data": {k: [e["data"][k] for e in events] for k in first.get("data") or {}},
        "timestamps": {
            k: [e["timestamps"][k] for e in events] for k in first.get("timestamps") or {}
        },
    }
    if "filled" in first:
        page["filled"] = {k: [e["filled"][k] for e in events] for k in first["filled"] or {}}
    return page


def datum_pages(datums: Iterable[dict], size: int = PAGE) -> Iterator[dict]:
    """Datum pages of consecutive datums of one resource with the same datum_kwargs keys."""
    page: list[dict] = []
    shape: tuple | None = None
    for datum in datums:
        here = (datum.get("resource"), tuple(datum.get("datum_kwargs") or ()))
        if page and (here != shape or len(page) >= size):
            yield _datum_page(page)
            page = []
        shape = here
        page.append(datum)
    if page:
        yield _datum_page(page)


def _datum_page(datums: list[dict]) -> dict:
    keys = datums[0].get("datum_kwargs") or {}
    return {
        "resource": datums[0]["resource"],
        "datum_id": [d["datum_id"] for d in datums],
        "datum_kwargs": {k: [d["datum_kwargs"][k] for d in datums] for k in keys},
    }
