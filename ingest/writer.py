"""The one document writer: every source (RunEngine, Kafka, HTTP, files) ends here.

``CatalogWriter(catalog, path)`` is a callable ``(name, doc)`` for ``RE.subscribe`` and has
``write_many`` for batches. A batch is one transaction. Writes are idempotent: a document seen
before (same uid, same content) is skipped, a different document reusing a uid is refused.
A refused document never disturbs what is already stored, and the writer keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from bluebroker.catalog import Catalog, open_catalog
from bluebroker.catalog.run import EVENT_GROUP, pack
from bluebroker.catalog.tree import check_catalog_path
from bluebroker.catalog.writes import WriteSession

from .errors import DocumentError, InvalidDocument, UidConflict, UnknownParent
from .segments import DescriptorInfo, Item, Segment, digest, event_digest, page_digests
from .validation import validate

log = logging.getLogger(__name__)
# Failures that mean "this data cannot be stored", as opposed to "the database is away" (those
# propagate, so that a consumer pauses and retries instead of refusing good documents).
UNFORESEEN = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    sa.exc.DataError,
    sa.exc.IntegrityError,
)


@dataclass
class Rejected:
    """A document of a batch that was not written, and why."""

    index: int
    name: str
    error: DocumentError


@dataclass
class WriteResult:
    """What a batch did: documents written, duplicates skipped, documents refused."""

    written: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)


class _GuessFailed(Exception):
    """A transaction that appended on expectations failed; its cause says why."""


@dataclass
class _RunInfo:
    id: int
    start_digest: bytes
    stop_digest: bytes | None


class _Batch:
    """State of one transaction; merged into the writer's caches only after commit."""

    def __init__(self, session: WriteSession, strict: bool, guess: bool = False) -> None:
        self.session = session
        self.strict = strict
        self.guess = guess  # append to known streams without asking (PostgreSQL)
        self.runs: dict[str, _RunInfo] = {}
        self.descriptors: dict[str, DescriptorInfo] = {}
        self.resources: dict[str, int] = {}
        self.stream_resources: dict[str, tuple[int, str]] = {}
        self.segments: list[Segment] = []
        self.datums: list[tuple[int, dict, dict]] = []  # (batch index, row, log entry)
        self.log: list[dict] = []
        self.raw: dict = {}  # the document being handled, as received (legacy forms included)
        self.raw_bytes: bytes | None = None  # and its msgpack encoding, when the caller has it
        self.result = WriteResult()

    def log_doc(self, run_id: int, name: str) -> dict:
        """Queue the current document, exactly as received, for the replay log."""
        payload = self.raw_bytes if self.raw_bytes is not None else pack(self.raw)
        entry = {"run_id": run_id, "name": name, "payload": payload}
        self.log.append(entry)
        return entry


class CatalogWriter:
    """Write Bluesky documents into the catalog of runs at ``path`` (created if missing)."""

    def __init__(self, catalog: Catalog | str, path: str = "raw") -> None:
        self.catalog = open_catalog(catalog) if isinstance(catalog, str) else catalog
        self.path = check_catalog_path(path)
        # Created now, so the (still empty) catalog is visible before the first run arrives.
        self._catalog_id = self.catalog.create_catalog(self.path).catalog_id
        self._runs: dict[str, _RunInfo] = {}
        self._open_runs: dict[str, None] = {}
        self._descriptors: dict[str, DescriptorInfo] = {}
        self._resources: dict[str, int] = {}
        self._stream_resources: dict[str, tuple[int, str]] = {}
        # (row count, last change) of streams as this writer's last commit left them: the
        # next append to them is sent without asking (WriteSession.append's ``expect``).
        self._streams: dict[int, tuple[int, int]] = {}

    def __call__(self, name: str, doc: dict) -> None:
        """Write one document (the ``RE.subscribe`` interface); raises DocumentError if bad."""
        self.write_many([(name, doc)])

    def __repr__(self) -> str:
        return f"<CatalogWriter {self.catalog.uri} /{self.path}>"

    def write_many(
        self,
        docs: Iterable[tuple[str, dict]],
        *,
        strict: bool = True,
        encoded: Sequence[bytes | None] | None = None,
    ) -> WriteResult:
        """Write a batch in one transaction.

        ``encoded`` may give each document's msgpack bytes as received (the Kafka worker has
        them): the replay log keeps those instead of encoding the document again.

        With ``strict=True`` the first bad document raises and nothing of the batch is written.
        With ``strict=False`` bad documents are listed in ``result.rejected`` and the rest is
        written (the Kafka consumer dead-letters the rejected ones). A batch that fails in a
        way no check foresaw is written again document by document, so that the one document
        at fault is refused and the others are kept.
        """
        docs = list(docs)
        try:
            try:
                return self._write_guessing(docs, strict, encoded)
            except sa.exc.DBAPIError as err:
                if not err.connection_invalidated:
                    raise
                # A pooled connection that died meanwhile (a database restart): the pool has
                # let go of it, and writing the batch again is harmless.
                log.info("catalog connection was lost (%s); writing the batch again", err.orig)
                return self._write_batch(docs, strict, encoded)
        except DocumentError:
            raise
        except UNFORESEEN as err:
            if strict or len(docs) == 1:
                name, doc = docs[0] if len(docs) == 1 and _is_pair(docs[0]) else ("document", None)
                where = "" if len(docs) == 1 else "a document of this batch "
                failure = InvalidDocument(name, doc, f"{where}could not be stored: {err}")
                if strict:
                    raise failure from err
                return WriteResult(rejected=[Rejected(0, name, failure)])
            log.warning("batch of %d failed (%s); writing its documents one by one", len(docs), err)
        result = WriteResult()
        for index, pair in enumerate(docs):
            one = self.write_many(
                [pair], strict=False, encoded=None if encoded is None else [encoded[index]]
            )
            result.written += one.written
            result.duplicates += one.duplicates
            result.rejected += [Rejected(index, r.name, r.error) for r in one.rejected]
        return result

    def _write_guessing(
        self, docs: list, strict: bool, encoded: Sequence[bytes | None] | None
    ) -> WriteResult:
        """Write with appends numbered from what this writer last saw of their streams; if
        that was out of date (another writer appended meanwhile) or an event was not new
        (a replay), the transaction failed whole and the batch is written again, asking."""
        try:
            return self._write_batch(docs, strict, encoded, guess=True)
        except _GuessFailed as failed:
            self._streams.clear()
            log.debug("writing the batch again without guessing (%s)", failed.__cause__)
            return self._write_batch(docs, strict, encoded)

    def _write_batch(
        self,
        docs: list,
        strict: bool,
        encoded: Sequence[bytes | None] | None = None,
        guess: bool = False,
    ) -> WriteResult:
        with self.catalog.write_engine.begin() as conn:
            session = WriteSession(conn)
            batch = _Batch(session, strict, guess)
            try:
                self._handle_all(batch, docs, encoded)
            except sa.exc.DBAPIError as err:
                if session.guessed and not err.connection_invalidated:
                    raise _GuessFailed() from err
                raise
        self._commit_caches(batch)
        self.catalog.changes.publish(session.changes)  # committed: tell live subscribers
        for stream_id in session.merge_after:
            self._merge(stream_id)
        return batch.result

    def _handle_all(
        self, batch: _Batch, docs: list, encoded: Sequence[bytes | None] | None
    ) -> None:
        session, strict = batch.session, batch.strict
        for index, pair in enumerate(docs):
            try:
                name, doc = _split(pair)
                batch.raw = doc
                batch.raw_bytes = None if encoded is None else encoded[index]
                doc = validate(name, doc)
                self._handlers[name](self, batch, index, doc)
            except DocumentError as err:
                if strict:
                    raise
                batch.result.rejected.append(Rejected(index, err.name, err))
                log.warning("refused %s", err)
        self._flush(batch, strict)
        kept = [e for e in batch.log if not e.pop("dropped", False)]
        if kept:
            session.insert_documents(_group_events(kept))
        session.commit()  # the queued writes and the COMMIT, together
        batch.result.written = len(kept)

    def _merge(self, stream_id: int) -> None:
        """Merge a stream's last appends (see catalog/columns.py) after the commit that
        completed them. Merging only compacts storage: if it fails, reads are unchanged."""
        try:
            with self.catalog.write_engine.begin() as conn:
                session = WriteSession(conn)
                session.merge_tail(stream_id)
                session.commit()
        except sa.exc.SQLAlchemyError as err:
            log.warning("left the last appends of stream %s unmerged (%s)", stream_id, err)

    # -- caches ---------------------------------------------------------------------------

    def _commit_caches(self, batch: _Batch) -> None:
        for stream_id, state in batch.session.streams.items():
            if state is None:
                self._streams.pop(stream_id, None)
            else:
                self._streams[stream_id] = state
        self._runs.update(batch.runs)
        for uid, info in batch.runs.items():
            if info.stop_digest is None:
                self._open_runs[uid] = None
            else:
                self._open_runs.pop(uid, None)
        self._descriptors.update(batch.descriptors)
        self._resources.update(batch.resources)
        self._stream_resources.update(batch.stream_resources)

    def _run(self, batch: _Batch, uid: str) -> _RunInfo | None:
        if uid in batch.runs:
            return batch.runs[uid]
        if uid in self._runs:
            return self._runs[uid]
        row = batch.session.find_run(uid)
        if row is None:
            return None
        if row.catalog_id != self._catalog_id:
            # The uid is taken by a run in another catalog path: writing here would fork it.
            raise UidConflict(
                "start",
                {"uid": uid},
                "this run uid already exists in another catalog of this database",
            )
        info = _RunInfo(row.id, row.start_digest, row.stop_digest)
        self._runs[uid] = info
        return info

    def _parent_run(self, batch: _Batch, name: str, doc: dict, key: str = "run_start") -> _RunInfo:
        uid = doc.get(key)
        if not uid:
            open_runs = list(self._open_runs) + [
                u for u, r in batch.runs.items() if r.stop_digest is None
            ]
            if len(set(open_runs)) == 1:
                uid = open_runs[0]
            else:
                raise InvalidDocument(name, doc, f"has no {key!r}; say which run it belongs to")
        run = self._run(batch, uid)
        if run is None:
            raise UnknownParent(
                name,
                doc,
                f"refers to run {uid!r}, whose start document was "
                "never received; send the start document first",
            )
        return run

    def _descriptor(self, batch: _Batch, name: str, doc: dict, uid: str) -> DescriptorInfo:
        found = batch.descriptors.get(uid) or self._descriptors.get(uid)
        if found is not None:
            return found
        row = batch.session.find_descriptor(uid)
        if row is None:
            raise UnknownParent(
                name,
                doc,
                f"refers to descriptor {uid!r}, which was never "
                "received; send the descriptor document first",
            )
        info = DescriptorInfo(row.id, row.run_id, row.stream_id, row.doc["data_keys"], row.digest)
        self._descriptors[uid] = info
        return info

    # -- documents --------------------------------------------------------------------------

    def _start(self, batch: _Batch, index: int, doc: dict) -> None:
        d = digest(doc)
        existing = self._run(batch, doc["uid"])
        if existing is not None:
            _same(batch, "start", doc, existing.start_digest, d)
            return
        run_id = batch.session.insert_run(self._catalog_id, doc, d)
        batch.runs[doc["uid"]] = _RunInfo(run_id, d, None)
        batch.log_doc(run_id, "start")

    def _stop(self, batch: _Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "stop", doc)
        d = digest(doc)
        if run.stop_digest is not None:
            _same(batch, "stop", doc, run.stop_digest, d)
            return
        self._flush(batch, batch.strict)  # the summary counts this run's events
        stored = batch.session.set_stop(run.id, doc, d)
        batch.runs[doc["run_start"]] = _RunInfo(run.id, run.start_digest, stored or d)
        if stored is not None:  # another writer got there first
            _same(batch, "stop", doc, stored, d)
            return
        batch.log_doc(run.id, "stop")

    def _descriptor_doc(self, batch: _Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "descriptor", doc)
        d = digest(doc)
        if doc["uid"] in batch.descriptors or doc["uid"] in self._descriptors:
            _same(
                batch,
                "descriptor",
                doc,
                self._descriptor(batch, "descriptor", doc, doc["uid"]).digest,
                d,
            )
            return
        row = batch.session.find_descriptor(doc["uid"])
        if row is not None:
            _same(batch, "descriptor", doc, row.digest, d)
            return
        desc_id, stream_id = batch.session.insert_descriptor(run.id, doc, d)
        batch.descriptors[doc["uid"]] = DescriptorInfo(
            desc_id, run.id, stream_id, doc["data_keys"], d
        )
        batch.log_doc(run.id, "descriptor")

    def _event(self, batch: _Batch, index: int, doc: dict) -> None:
        desc = self._descriptor(batch, "event", doc, doc["descriptor"])
        _check_keys("event", doc, desc, doc["data"])
        key = event_digest(
            doc["descriptor"],
            doc["uid"],
            doc["seq_num"],
            doc["time"],
            doc["data"],
            doc["timestamps"],
        )
        item = Item(index, "event", doc, [doc["uid"]], [key], batch.log_doc(desc.run_id, "event"))
        self._segment(batch, desc).add_event(item)

    def _event_page(self, batch: _Batch, index: int, doc: dict) -> None:
        desc = self._descriptor(batch, "event_page", doc, doc["descriptor"])
        _check_keys("event_page", doc, desc, doc["data"])
        rows = len(doc["uid"])
        for key in ("seq_num", "time"):
            if len(doc[key]) != rows:
                raise InvalidDocument(
                    "event_page",
                    doc,
                    f"has {rows} uids but {len(doc[key])} "
                    f"{key} values; every column needs one value per event",
                )
        for part in ("data", "timestamps", "filled"):
            for key, values in doc.get(part, {}).items():
                if len(values) != rows:
                    raise InvalidDocument(
                        "event_page",
                        doc,
                        f"{part}[{key!r}] has {len(values)} values for {rows} events",
                    )
        if len(set(doc["uid"])) != rows:
            raise InvalidDocument("event_page", doc, "lists the same event uid more than once")
        digests = page_digests(doc)
        item = Item(
            index,
            "event_page",
            doc,
            list(doc["uid"]),
            digests,
            batch.log_doc(desc.run_id, "event_page"),
        )
        self._segment(batch, desc).add_page(item)

    def _segment(self, batch: _Batch, desc: DescriptorInfo) -> Segment:
        if not batch.segments or batch.segments[-1].desc.id != desc.id:
            batch.segments.append(Segment(desc))
        return batch.segments[-1]

    def _resource(self, batch: _Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "resource", doc)
        d = digest(doc)
        if doc["uid"] in batch.resources or doc["uid"] in self._resources:
            row = batch.session.find_resource(doc["uid"])
            if row is not None:
                _same(batch, "resource", doc, row.digest, d)
            else:  # inserted earlier in this same batch
                batch.result.duplicates += 1
            return
        row = batch.session.find_resource(doc["uid"])
        if row is not None:
            self._resources[doc["uid"]] = row.run_id
            _same(batch, "resource", doc, row.digest, d)
            return
        batch.session.insert_resource(run.id, doc, d)
        batch.resources[doc["uid"]] = run.id
        batch.log_doc(run.id, "resource")

    def _resource_run(self, batch: _Batch, name: str, doc: dict, uid: str) -> int:
        run_id = batch.resources.get(uid) or self._resources.get(uid)
        if run_id is None:
            row = batch.session.find_resource(uid)
            if row is None:
                raise UnknownParent(
                    name,
                    doc,
                    f"refers to resource {uid!r}, which was never "
                    "received; send the resource document first",
                )
            run_id = self._resources[uid] = row.run_id
        return run_id

    def _datum(self, batch: _Batch, index: int, doc: dict) -> None:
        run_id = self._resource_run(batch, "datum", doc, doc["resource"])
        row = {
            "datum_id": doc["datum_id"],
            "resource": doc["resource"],
            "kwargs": doc["datum_kwargs"],
        }
        batch.datums.append((index, row, batch.log_doc(run_id, "datum")))

    def _datum_page(self, batch: _Batch, index: int, doc: dict) -> None:
        run_id = self._resource_run(batch, "datum_page", doc, doc["resource"])
        ids = doc["datum_id"]
        kwargs = doc["datum_kwargs"]
        if len(set(ids)) != len(ids):
            raise InvalidDocument("datum_page", doc, "lists the same datum_id more than once")
        for key, values in kwargs.items():
            if len(values) != len(ids):
                raise InvalidDocument(
                    "datum_page",
                    doc,
                    f"datum_kwargs[{key!r}] has {len(values)} values for {len(ids)} datum ids",
                )
        entry = batch.log_doc(run_id, "datum_page")
        for i, datum_id in enumerate(ids):
            row = {
                "datum_id": datum_id,
                "resource": doc["resource"],
                "kwargs": {k: _plain(v[i]) for k, v in kwargs.items()},
            }
            batch.datums.append((index, row, entry))

    def _stream_resource(self, batch: _Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "stream_resource", doc)
        d = digest(doc)
        row = batch.session.find_stream_resource(doc["uid"])
        if row is not None:
            _same(batch, "stream_resource", doc, row.digest, d)
            return
        if doc["uid"] in batch.stream_resources:
            batch.result.duplicates += 1
            return
        batch.session.insert_stream_resource(run.id, doc, d)
        batch.stream_resources[doc["uid"]] = (run.id, doc["data_key"])
        batch.log_doc(run.id, "stream_resource")

    def _stream_datum(self, batch: _Batch, index: int, doc: dict) -> None:
        sres = batch.stream_resources.get(doc["stream_resource"]) or self._stream_resources.get(
            doc["stream_resource"]
        )
        if sres is None:
            row = batch.session.find_stream_resource(doc["stream_resource"])
            if row is None:
                raise UnknownParent(
                    "stream_datum",
                    doc,
                    f"refers to stream_resource "
                    f"{doc['stream_resource']!r}, which was never received",
                )
            sres = self._stream_resources[doc["stream_resource"]] = (row.run_id, row.data_key)
        desc = self._descriptor(batch, "stream_datum", doc, doc["descriptor"])
        run_id, data_key = sres
        if data_key not in desc.data_keys:
            raise InvalidDocument(
                "stream_datum",
                doc,
                f"its stream_resource is for "
                f"{data_key!r}, which descriptor {doc['descriptor']!r} lacks",
            )
        d = digest(doc)
        existing = batch.session.find_stream_datum(doc["uid"])
        if existing is not None:
            _same(batch, "stream_datum", doc, existing, d)
            return
        for key in ("seq_nums", "indices"):
            if doc[key]["stop"] < doc[key]["start"]:
                raise InvalidDocument("stream_datum", doc, f"{key} stop is before start")
        if any(s.desc.stream_id == desc.stream_id for s in batch.segments):
            self._flush(batch, batch.strict)  # earlier events first (see insert_stream_datum)
        batch.session.insert_stream_datum(desc.stream_id, data_key, doc, d)
        batch.log_doc(run_id, "stream_datum")

    # -- flushing buffered events and datums -------------------------------------------------

    def _flush(self, batch: _Batch, strict: bool) -> None:
        self._flush_datums(batch, strict)
        segments, batch.segments = batch.segments, []
        if not segments:
            return
        session = batch.session
        ids = [s.desc.stream_id for s in segments]
        # Guess only one append per stream and transaction: its tail, read with the COMMIT,
        # then decides a merge of exactly the group that append completed.
        guess = batch.guess and not session.sqlite and len(set(ids)) == len(ids)
        guess = guess and all(self._expected(batch, i) and i not in session.tails for i in ids)
        uids = [u for s in segments for it in s.items for u in it.uids]
        # Guessing, every event is taken to be new: one that is not breaks the events
        # table's primary key, and the batch is written again with this lookup.
        stored = {} if guess else session.event_digests(uids)
        seen: dict[str, bytes] = {}
        for segment in segments:
            keep = np.ones(segment.row_count, dtype=bool)
            keys: list[tuple[str, bytes]] = []
            row = 0
            for item in segment.items:
                n = len(item.uids)
                status = _event_status(item, stored, seen)
                if status == "new":
                    keys.extend(zip(item.uids, item.digests, strict=True))
                    seen.update(zip(item.uids, item.digests, strict=True))
                else:
                    keep[row : row + n] = False
                    item.log["dropped"] = True
                    if status == "duplicate":
                        batch.result.duplicates += 1
                    else:
                        err = UidConflict(item.name, item.doc, status)
                        if strict:
                            raise err
                        batch.result.rejected.append(Rejected(item.index, item.name, err))
                row += n
            if keys:
                columns = segment.columns(None if keep.all() else keep)
                stream_id = segment.desc.stream_id
                expect = self._expected(batch, stream_id) if guess else None
                session.append(stream_id, columns, len(keys), keys, expect)

    def _expected(self, batch: _Batch, stream_id: int) -> tuple[int, int] | None:
        """A stream's (row count, last change) as this transaction or the last commit left
        it, or None when unknown."""
        if stream_id in batch.session.streams:
            return batch.session.streams[stream_id]
        return self._streams.get(stream_id)

    def _flush_datums(self, batch: _Batch, strict: bool) -> None:
        """Insert buffered datums; a datum or datum_page is new, a duplicate, or a conflict as
        a whole, like events and event pages."""
        pending, batch.datums = batch.datums, []
        if not pending:
            return
        stored = batch.session.datum_kwargs([row["datum_id"] for _, row, _ in pending])
        known = {k: (resource, digest(kwargs)) for k, (resource, kwargs) in stored.items()}
        groups: dict[int, tuple[int, dict, list[dict]]] = {}
        for index, row, entry in pending:
            groups.setdefault(id(entry), (index, entry, []))[2].append(row)
        new_rows: list[dict] = []
        for index, entry, rows in groups.values():
            keys = [(r["resource"], digest(r["kwargs"])) for r in rows]
            previous = [known.get(r["datum_id"]) for r in rows]
            if all(p is None for p in previous):
                new_rows.extend(rows)
                known.update((r["datum_id"], k) for r, k in zip(rows, keys, strict=True))
                continue
            entry["dropped"] = True
            if previous == keys:
                batch.result.duplicates += 1
                continue
            err = UidConflict(
                entry["name"],
                {"datum_id": rows[0]["datum_id"]},
                "a different datum already uses this datum_id"
                if all(p is not None for p in previous)
                else "some of these datums are already stored and some are not",
            )
            if strict:
                raise err
            batch.result.rejected.append(Rejected(index, entry["name"], err))
        batch.session.insert_datums(new_rows)


CatalogWriter._handlers = {
    "start": CatalogWriter._start,
    "descriptor": CatalogWriter._descriptor_doc,
    "event": CatalogWriter._event,
    "event_page": CatalogWriter._event_page,
    "resource": CatalogWriter._resource,
    "datum": CatalogWriter._datum,
    "datum_page": CatalogWriter._datum_page,
    "stream_resource": CatalogWriter._stream_resource,
    "stream_datum": CatalogWriter._stream_datum,
    "stop": CatalogWriter._stop,
}


def _group_events(entries: list[dict]) -> list[dict]:
    """Consecutive single events of one run share one replay-log row (their msgpack
    encodings back to back): a row per event cost more than the event's columns."""
    out: list[dict] = []
    group: list[dict] = []

    def close() -> None:
        if len(group) == 1:
            out.append(group[0])
        elif group:
            payload = b"".join(e["payload"] for e in group)
            out.append({"run_id": group[0]["run_id"], "name": EVENT_GROUP, "payload": payload})
        group.clear()

    for entry in entries:
        if entry["name"] != "event" or (group and group[0]["run_id"] != entry["run_id"]):
            close()
        if entry["name"] == "event":
            group.append(entry)
        else:
            out.append(entry)
    close()
    return out


def _event_status(item: Item, stored: dict[str, bytes], seen: dict[str, bytes]) -> str:
    """'new', 'duplicate', or the reason it conflicts with what is stored."""
    if len(item.uids) == 1:  # a single event: the common case, without the list machinery
        uid = item.uids[0]
        if uid not in stored and uid not in seen:
            return "new"
    known = [stored.get(u) or seen.get(u) for u in item.uids]
    if all(k is None for k in known):
        return "new"
    if all(k == d for k, d in zip(known, item.digests, strict=True)):
        return "duplicate"
    if any(k is None for k in known):
        return "some of these events are already stored and some are not; resend them as stored"
    return "a different event already uses this uid"


def _same(batch: _Batch, name: str, doc: dict, stored: bytes, new: bytes) -> None:
    if stored != new:
        raise UidConflict(name, doc, f"a different {name} document already uses this uid")
    batch.result.duplicates += 1


def _check_keys(name: str, doc: dict, desc: DescriptorInfo, data: dict) -> None:
    keys = data.keys()
    if keys <= desc.data_keys.keys() and keys <= doc["timestamps"].keys():
        return  # the usual case, checked with two set operations
    unknown = [k for k in data if k not in desc.data_keys]
    if unknown:
        raise InvalidDocument(
            name,
            doc,
            f"data keys {unknown} are not in its descriptor (which has {list(desc.data_keys)})",
        )
    missing_ts = [k for k in data if k not in doc["timestamps"]]
    if missing_ts:
        raise InvalidDocument(name, doc, f"data keys {missing_ts} have no timestamps")


def _is_pair(pair: Any) -> bool:
    return isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)


def _split(pair: Any) -> tuple[str, Any]:
    if _is_pair(pair):
        return pair[0], pair[1]
    raise InvalidDocument(
        "document", None, f"expected a (name, doc) pair, got {type(pair).__name__}"
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
