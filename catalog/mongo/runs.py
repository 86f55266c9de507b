"""The catalog of runs of a Mongo source, and its runs: the SQL catalog's node classes with
MongoDB underneath, so that the server treats both alike.

Searches become one ``run_start`` filter (query.py), sorting a MongoDB sort (start metadata,
oldest first by default), paging ``skip``/``limit``; a page of runs costs three queries
(starts, their stops, their descriptors' names) whatever its length. The access policy's
grants are compiled the same way, so runs a caller may not read are never loaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bluebroker import queries as q
from bluebroker.query_values import utc_iso

from .. import access
from ..errors import AmbiguousKey, NotFound
from ..node import Container
from ..run import Run
from ..runs import DEFAULT_SORT, RunCatalog
from ..writes import search_text
from . import query as mq
from .documents import document

if TYPE_CHECKING:
    from .source import MongoCatalogSource
    from .streams import MongoStream


TEXT_BATCH = 1000  # start documents read per batch by a full-text search without a text index


def _batches(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class MongoRunCatalog(RunCatalog):
    """Runs of a Mongo source (keys: start uids in sort order), optionally narrowed."""

    live = False

    def __init__(
        self,
        source: MongoCatalogSource,
        queries: tuple[q.Query, ...] = (),
        sort: tuple[tuple[str, int], ...] = DEFAULT_SORT,
    ) -> None:
        Container.__init__(self, source.path)
        self.source = source
        self.root = source
        self.catalog_id = None
        self.queries = queries
        self.sort_keys = sort

    @property
    def metadata(self) -> dict[str, Any]:
        return {"source": "mongo_normalized", "live": False}

    def search(self, query: q.Query) -> MongoRunCatalog:
        mq.check(query)
        return MongoRunCatalog(self.source, (*self.queries, query), self.sort_keys)

    def sort(self, *keys: tuple[str, int]) -> MongoRunCatalog:
        """Sorted by start metadata; a key that no run holds is refused, as in SQL."""
        spec = mq.sort_spec(tuple(keys))
        runs = self.source.col("run_start")
        for field, _ in spec[:-1]:
            with self.source.guard():
                if field not in ("time", "uid", "scan_id") and runs.find_one(
                    {field: {"$exists": True}}, {"_id": 1}
                ) is None and runs.find_one({}, {"_id": 1}) is not None:
                    raise q.QueryError(
                        f"no run here has 'start.{field:.80}' to sort by; sort by start "
                        "metadata the runs hold (e.g. time, scan_id, plan_name)"
                    )
        return MongoRunCatalog(self.source, self.queries, tuple(keys))

    # -- filters -------------------------------------------------------------------------

    def _compiler(self) -> mq.Compiler:
        return mq.Compiler(
            self._stop_uids, self._latest, self.source.has_text_index, self._text_uids
        )

    def _text_uids(self, words: list[str]) -> list[str]:
        """Uids of the runs whose start and stop documents hold every word, read from MongoDB
        (a database without a text index): starts in batches, each batch's stops in one
        query, so memory stays bounded however many runs there are."""
        wanted = {w.lower() for w in words}
        found: list[str] = []
        with self.source.guard():
            starts = self.source.col("run_start").find({}, batch_size=TEXT_BATCH)
            for batch in _batches(starts, TEXT_BATCH):
                uids = [s.get("uid") for s in batch]
                stops = {
                    d.get("run_start"): document(d)
                    for d in self.source.col("run_stop").find({"run_start": {"$in": uids}})
                }
                for start in batch:
                    uid = start.get("uid")
                    text = search_text(document(start), stops.get(uid))
                    if isinstance(uid, str) and mq.holds_words(wanted, text):
                        found.append(uid)
        return found

    def _stop_uids(self, flt: dict) -> list[str]:
        with self.source.guard():
            return list(self.source.col("run_stop").distinct("run_start", flt))

    def _latest(self, scan_ids: list[int]) -> list[str]:
        newest: dict[Any, str] = {}
        with self.source.guard():
            cursor = self.source.col("run_start").find(
                {"scan_id": {"$in": scan_ids}}, {"scan_id": 1, "uid": 1}, sort=[("time", 1)]
            )
            for doc in cursor:
                newest[doc.get("scan_id")] = doc["uid"]
        return list(newest.values())

    @functools.cached_property
    def filter(self) -> dict[str, Any]:
        """The run_start filter of the queries and of the caller's access."""
        compiler = self._compiler()
        parts = [compiler.all(self.queries)]
        caller = access.current()
        if caller is not None:
            path = "/".join(self.path)
            grants = [g for g in caller.grants if g.covers_catalog(path)]
            if not any(not g.queries for g in grants):
                allowed = [compiler.all(g.queries) for g in grants]
                parts.append({"$or": allowed} if allowed else mq.NOTHING)
        parts = [p for p in parts if p]
        return {} if not parts else parts[0] if len(parts) == 1 else {"$and": parts}

    def _find(self, *extra: dict, sort: list | None = None, skip: int = 0, limit: int = 0):
        flt = {"$and": [self.filter, *extra]} if extra else self.filter
        with self.source.guard():
            return list(
                self.source.col("run_start").find(flt, sort=sort, skip=skip, limit=limit)
            )

    def _runs(self, starts: list[dict]) -> list[MongoRun]:
        """Runs for start documents, with their stops and stream names in two queries."""
        uids = [s["uid"] for s in starts]
        with self.source.guard():
            stops = {
                d["run_start"]: document(d)
                for d in self.source.col("run_stop").find({"run_start": {"$in": uids}})
            }
            names: dict[str, dict[str, None]] = {u: {} for u in uids}
            for d in self.source.col("event_descriptor").find(
                {"run_start": {"$in": uids}}, {"run_start": 1, "name": 1}, sort=[("time", 1)]
            ):
                names[d["run_start"]][d.get("name") or "primary"] = None
        return [
            MongoRun(self, document(s), stops.get(s["uid"]), list(names[s["uid"]]))
            for s in starts
        ]

    # -- mapping -------------------------------------------------------------------------

    def __len__(self) -> int:
        with self.source.guard():
            if not self.filter:
                return self.source.col("run_start").estimated_document_count()
            return self.source.col("run_start").count_documents(self.filter)

    def _sorted(self, reverse: bool = False) -> list[tuple[str, int]]:
        spec = mq.sort_spec(self.sort_keys)
        return [(k, -d) for k, d in spec] if reverse else spec

    def keys_range(self, offset: int = 0, limit: int | None = None) -> list[str]:
        flt = self.filter
        with self.source.guard():
            cursor = self.source.col("run_start").find(
                flt, {"uid": 1}, sort=self._sorted(), skip=offset, limit=limit or 0
            )
            return [d["uid"] for d in cursor]

    def items_range(
        self, offset: int = 0, limit: int | None = None
    ) -> list[tuple[str, MongoRun]]:
        if limit == 0:
            return []
        starts = self._find(sort=self._sorted(), skip=offset, limit=limit or 0)
        return [(run.uid, run) for run in self._runs(starts)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._find({"uid": key}, limit=1))

    def _one(self, *extra: dict, sort: list | None = None, skip: int = 0) -> MongoRun | None:
        """One run, its stop and stream names read only if asked for (a deep path such as
        ``/csx/<uid>/primary/data/f0`` needs neither)."""
        found = self._find(*extra, sort=sort, skip=skip, limit=1)
        return MongoRun(self, document(found[0])) if found else None

    def __getitem__(self, key: str | int) -> MongoRun:
        if isinstance(key, bool):
            raise TypeError("runs are looked up by uid, uid prefix, scan_id or negative index")
        if isinstance(key, int):
            return self.by_index(key) if key < 0 else self.by_scan_id(key)
        if not isinstance(key, str):
            raise TypeError(f"runs are looked up by uid (str) or int, not {type(key).__name__}")
        run = self._one({"uid": key})
        return run if run is not None else self.by_partial_uid(key)

    def by_index(self, index: int) -> MongoRun:
        reverse = index < 0
        run = self._one(sort=self._sorted(reverse), skip=-index - 1 if reverse else index)
        if run is None:
            raise NotFound(
                f"index {index} is out of range: /{'/'.join(self.path)} has {len(self)} runs"
            )
        return run

    def by_scan_id(self, scan_id: int) -> MongoRun:
        run = self._one({"scan_id": scan_id}, sort=[("time", -1), ("_id", 1)])
        if run is None:
            raise NotFound(f"no run with scan_id {scan_id} in /{'/'.join(self.path)}")
        return run

    def by_partial_uid(self, prefix: str) -> MongoRun:
        q.PartialUID(prefix)  # a QueryError for what cannot be a prefix
        found = self._find(mq.partial_uid((prefix,)), limit=2)
        if not found:
            raise NotFound(
                f"no run with uid or uid prefix {prefix!r:.80} in /{'/'.join(self.path)}"
            )
        if len(found) > 1:
            raise AmbiguousKey(
                f"uid prefix {prefix!r} matches more than one run "
                f"({found[0]['uid']}, {found[1]['uid']}, ...); give more characters"
            )
        return self._runs(found)[0]


def summary(start: dict, stop: dict | None, stream_names: list[str]) -> dict[str, Any]:
    """What the SQL catalog's writer keeps as a run's summary, from the documents."""
    scan_id = start.get("scan_id")
    out: dict[str, Any] = {
        "uid": start["uid"],
        "scan_id": scan_id if isinstance(scan_id, int) and not isinstance(scan_id, bool) else None,
        "plan_name": start.get("plan_name"),
        "timestamp": start["time"],
        "datetime": utc_iso(start["time"]),
        "stream_names": stream_names,
        "duration": None,
        "num_events": {},
    }
    if stop is not None:
        out["duration"] = float(stop["time"]) - float(start["time"])
        counts = stop.get("num_events") or {}
        out["num_events"] = {n: int(counts.get(n, 0)) for n in stream_names}
        out["exit_status"] = stop.get("exit_status")
    return out


class MongoRun(Run):
    """One run of a Mongo source; metadata ``{start, stop, summary}``, children its streams."""

    live = False

    def __init__(
        self,
        runs: MongoRunCatalog,
        start: dict,
        stop: dict | None = None,
        stream_names: list[str] | None = None,
    ) -> None:
        """``stop`` and ``stream_names`` when already read (a page of runs reads them for all
        its runs at once); else they are read when first needed."""
        Container.__init__(self, (*runs.path, start["uid"]))
        self.source = runs.source
        self.root = runs.source
        self.id = None
        self.uid = start["uid"]
        self.start = start
        if stream_names is not None:
            self.__dict__["stop"] = stop
            self.__dict__["summary"] = summary(start, stop, stream_names)

    @functools.cached_property
    def stop(self) -> dict | None:  # type: ignore[override]
        with self.source.guard():
            return self.source.reader.stop(self.uid)

    @functools.cached_property
    def summary(self) -> dict[str, Any]:  # type: ignore[override]
        return summary(self.start, self.stop, list(self))

    @functools.cached_property
    def descriptors(self) -> list[dict]:
        with self.source.guard():
            return self.source.reader.descriptors(self.uid)

    def _streams(self) -> list[tuple[str, int, Any]]:
        names = dict.fromkeys(d["name"] for d in self.descriptors)
        return [(name, self[name].num_rows(), None) for name in names]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(d["name"] for d in self.descriptors))

    def __len__(self) -> int:
        return len(dict.fromkeys(d["name"] for d in self.descriptors))

    def __getitem__(self, key: str) -> MongoStream:
        from .streams import MongoStream

        found = [d for d in self.descriptors if d["name"] == key]
        if not found:
            raise NotFound(
                f"run {self.uid[:8]} has no stream {key!r}; streams: {sorted(self) or 'none yet'}"
            )
        return MongoStream(self, key, found)

    def documents(self) -> Iterator[tuple[str, dict]]:
        """The run's documents read from MongoDB, events and datums in pages."""
        source = self.source
        with source.guard():
            start = source.col("run_start").find_one({"uid": self.uid})
        if start is None:
            raise NotFound(f"run {self.uid[:8]} is gone from the MongoDB database")
        with source.guard():
            yield from source.reader.documents(document(start))
