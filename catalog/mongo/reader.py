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

- Mongo's own types are made plain (documents.py);
- a descriptor with no ``name`` is the ``primary`` stream (Databroker read it so);
- resources that name no ``run_start`` (older databases) are found through the datum ids
  that the run's events hold, and datums are looked up by id wherever they are;
- ``root_map`` rewrites a resource's ``root`` (files that moved since);
- a resource without ``run_start`` (older databases) is given the run it was found through,
  which every later reader needs to place it;
- a run with no stop document is read all the same (it stays open in the catalog).

Both the migration (``bluebroker ingest mongo``) and the live Mongo catalog read through it.
"""

from __future__ import annotations

from collections.abc import Iterator

from .documents import (
    PAGE,
    MongoSourceError,
    _event,
    _pymongo,
    datum_pages,
    document,
    event_pages,
    open_database,
)

METADATASTORE = ("run_start", "run_stop", "event_descriptor", "event")
ASSETS = ("resource", "datum")


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
        timeout_ms: int = 10_000,
    ) -> None:
        """``names``: how errors call the two URIs (the command's options by default);
        ``timeout_ms``: how long to wait for an unreachable server."""
        self.mds = open_database(uri, names[0], timeout_ms)
        self.assets = (
            self.mds if not assets_uri else open_database(assets_uri, names[1], timeout_ms)
        )
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
