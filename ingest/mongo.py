"""Read runs out of a Databroker "mongo_normalized" MongoDB database, as Bluesky documents.

The layout (written by suitcase-mongo and by the metadatastore/filestore of Databroker 0.x):
collections ``run_start``, ``run_stop``, ``event_descriptor`` and ``event`` in the
metadatastore database, ``resource`` and ``datum`` in the asset registry database (often a
different database, sometimes on another server). One Mongo document per logical document:
events are stored one by one, never as pages.

``MongoSource.documents(start)`` gives one run's documents in an order every reader of
Bluesky documents accepts: start, descriptors (by time), resources, datum pages, event pages
(each descriptor's events by time, in pages), stop. What years of such databases hold and the
writer would not take as is gets put right here, without changing what the documents say:

- ``_id`` (Mongo's ObjectId) is dropped; Mongo datetimes become POSIX times in ``time``
  fields and ISO 8601 strings elsewhere; other BSON-only values become plain ones;
- a descriptor with no ``name`` is the ``primary`` stream (Databroker read it so);
- resources that name no ``run_start`` (older databases) are found through the datum ids
  that the run's events hold, and datums are looked up by id wherever they are;
- ``root_map`` rewrites a resource's ``root`` (files that moved since);
- a resource without ``run_start`` (older databases) is given the run it was found through,
  which every later reader needs to place it;
- a run with no stop document is read all the same (it stays open in the catalog).
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

PAGE = 2500  # events (or datums) per page; Databroker read Mongo in pages of this size
METADATASTORE = ("run_start", "run_stop", "event_descriptor", "event")
ASSETS = ("resource", "datum")


class MongoSourceError(ValueError):
    """A Mongo source that cannot be read as given (said in one line)."""


def _pymongo():
    try:
        import pymongo
    except ImportError as err:  # pragma: no cover - pymongo is in the ingest extra
        raise MongoSourceError(
            "reading MongoDB needs pymongo: pip install 'bluebroker[ingest]'"
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


# -- the source --------------------------------------------------------------------------------


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


class MongoSource:
    """The runs of one mongo_normalized database pair, read lazily, oldest first."""

    def __init__(
        self,
        uri: str,
        assets_uri: str | None = None,
        *,
        query: dict | None = None,
        since: float | None = None,
        until: float | None = None,
        root_map: dict[str, str] | None = None,
        page_size: int = PAGE,
        names: tuple[str, str] = ("--uri", "--assets-uri"),
    ) -> None:
        """``names``: how errors call the two URIs (the command's options by default)."""
        self.mds = open_database(uri, names[0])
        self.assets = self.mds if not assets_uri else open_database(assets_uri, names[1])
        if query is not None and not isinstance(query, dict):
            raise MongoSourceError("--query must be a JSON object (a MongoDB filter on run_start)")
        try:
            names = set(self.mds.list_collection_names())
        except _pymongo().errors.OperationFailure as err:  # not authorized, and the like
            why = (err.details or {}).get("errmsg") or str(err)
            raise MongoSourceError(f"MongoDB refused to list {self.mds.name!r}: {why}") from None
        if "run_start" not in names:
            raise MongoSourceError(
                f"database {self.mds.name!r} has no run_start collection: it is not a "
                "Databroker metadatastore (mongo_normalized) database"
            )
        self.filter = dict(query or {})
        bounds: dict[str, float] = {}
        if since is not None:
            bounds["$gte"] = since
        if until is not None:
            bounds["$lt"] = until
        if bounds:
            self.filter = (
                {"$and": [self.filter, {"time": bounds}]} if self.filter else {"time": bounds}
            )
        self.root_map = dict(root_map or {})
        self.page_size = page_size
        self._col = {n: self.mds[n] for n in METADATASTORE}
        self._col.update({n: self.assets[n] for n in ASSETS})

    def close(self) -> None:
        self.mds.client.close()
        if self.assets.client is not self.mds.client:
            self.assets.client.close()

    def __enter__(self) -> MongoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count_runs(self) -> int:
        """How many runs the filter selects; a filter MongoDB refuses is a MongoSourceError."""
        pymongo = _pymongo()
        try:
            next(iter(self._col["run_start"].find(self.filter).limit(1)), None)
            return self._col["run_start"].count_documents(self.filter)
        except pymongo.errors.OperationFailure as err:
            why = (err.details or {}).get("errmsg") or str(err)
            raise MongoSourceError(f"MongoDB refused --query: {why}") from None

    def estimated_events(self) -> int | None:
        """The event collection's size, when every run is taken (else None: not known)."""
        return None if self.filter else self._col["event"].estimated_document_count()

    def run_starts(self) -> Iterator[dict]:
        """Start documents (made plain), oldest first."""
        cursor = self._col["run_start"].find(self.filter, sort=[("time", 1), ("_id", 1)])
        for doc in cursor:
            yield document(doc)

    def stop(self, uid: str) -> dict | None:
        doc = self._col["run_stop"].find_one({"run_start": uid})
        return None if doc is None else document(doc)

    def descriptors(self, uid: str) -> list[dict]:
        out = []
        for doc in self._col["event_descriptor"].find({"run_start": uid}, sort=[("time", 1)]):
            doc = document(doc)
            doc.setdefault("name", "primary")
            out.append(doc)
        return out

    def _resource(self, doc: dict, uid: str) -> dict:
        doc = document(doc)
        if not doc.get("run_start"):  # older databases: the run it was found through
            doc["run_start"] = uid
        root = doc.get("root")
        if isinstance(root, str) and root in self.root_map:
            doc["root"] = self.root_map[root]
        return doc

    def documents(self, start: dict, counts: dict | None = None) -> Iterator[tuple[str, dict]]:
        """One run's documents, in an order the writer accepts (see the module's docstring).
        ``counts`` (if given) gets ``events`` added as event pages are yielded."""
        uid = start["uid"]
        yield "start", start
        descriptors = self.descriptors(uid)
        yield from (("descriptor", d) for d in descriptors)
        resources: set[str] = set()
        datums: set[str] = set()
        found = list(self._col["resource"].find({"run_start": uid}))
        yield from self._assets(uid, found, resources, datums)
        for descriptor in descriptors:
            external = [
                k
                for k, v in (descriptor.get("data_keys") or {}).items()
                if isinstance(v, dict) and v.get("external")
            ]
            cursor = self._col["event"].find(
                {"descriptor": descriptor["uid"]}, sort=[("time", 1)], batch_size=self.page_size
            )
            for page in event_pages(map(_event, cursor), self.page_size):
                if external:
                    yield from self._datums_of(uid, page, external, resources, datums)
                if counts is not None:
                    counts["events"] = counts.get("events", 0) + len(page["uid"])
                yield "event_page", page
        stop = self.stop(uid)
        if stop is not None:
            yield "stop", stop

    def _assets(
        self, uid: str, found: list[dict], resources: set[str], datums: set[str]
    ) -> Iterator[tuple[str, dict]]:
        """Resources not yet given (and every datum of theirs)."""
        new = []
        for doc in found:
            if doc.get("uid") in resources:
                continue
            resources.add(doc.get("uid"))
            new.append(self._resource(doc, uid))
            yield "resource", new[-1]
        if not new:
            return
        cursor = self._col["datum"].find(
            {"resource": {"$in": [d["uid"] for d in new]}}, batch_size=self.page_size
        )
        for page in datum_pages(map(document, cursor), self.page_size):
            datums.update(page["datum_id"])
            yield "datum_page", page

    def _datums_of(
        self, uid: str, page: dict, external: list[str], resources: set[str], datums: set[str]
    ) -> Iterator[tuple[str, dict]]:
        """Datums (and their resources) that the page's events name and that were not given
        yet: how runs of databases whose resources name no run_start get their assets."""
        wanted = {
            v for k in external for v in page["data"].get(k, ()) if isinstance(v, str)
        } - datums
        if not wanted:
            return
        docs = [document(d) for d in self._col["datum"].find({"datum_id": {"$in": sorted(wanted)}})]
        owners = {d.get("resource") for d in docs} - resources
        if owners:
            found = list(self._col["resource"].find({"uid": {"$in": sorted(owners)}}))
            for doc in found:  # resources first, then exactly the datums looked up
                if doc.get("uid") not in resources:
                    resources.add(doc.get("uid"))
                    yield "resource", self._resource(doc, uid)
        for datum_page in datum_pages(docs, self.page_size):
            datums.update(datum_page["datum_id"])
            yield "datum_page", datum_page
