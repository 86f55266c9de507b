"""The one document writer: every source (RunEngine, Kafka, HTTP, files) ends here.

``CatalogWriter(catalog, path)`` is a callable ``(name, doc)`` for ``RE.subscribe`` and has
``write_many`` for batches. A batch is one transaction. Writes are idempotent: a document seen
before (same uid, same content) is skipped, a different document reusing a uid is refused.
A refused document never disturbs what is already stored, and the writer keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from bluebroker.catalog import Catalog, open_catalog
from bluebroker.catalog.tree import check_catalog_path
from bluebroker.catalog.writes import WriteSession

from .assets import AssetWriting
from .batch import Batch, Rejected, RunInfo, WriteResult, same
from .errors import DocumentError, InvalidDocument, UidConflict, UnknownParent
from .events import EventWriting, group_events
from .segments import DescriptorInfo, digest
from .validation import validate

__all__ = ["CatalogWriter", "Rejected", "WriteResult"]

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


class _GuessFailed(Exception):
    """A transaction that appended on expectations failed; its cause says why."""


class CatalogWriter(EventWriting, AssetWriting):
    """Write Bluesky documents into the catalog of runs at ``path`` (created if missing)."""

    def __init__(self, catalog: Catalog | str, path: str = "raw") -> None:
        self.catalog = open_catalog(catalog) if isinstance(catalog, str) else catalog
        self.path = check_catalog_path(path)
        # Created now, so the (still empty) catalog is visible before the first run arrives.
        self._catalog_id = self.catalog.create_catalog(self.path).catalog_id
        self._runs: dict[str, RunInfo] = {}
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
                log.debug("%s could not be stored", name, exc_info=err)
                failure = InvalidDocument(name, doc, f"{where}could not be stored: {_why(err)}")
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
            batch = Batch(session, strict, guess)
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

    def _handle_all(self, batch: Batch, docs: list, encoded: Sequence[bytes | None] | None) -> None:
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
            session.insert_documents(group_events(kept))
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

    def _commit_caches(self, batch: Batch) -> None:
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

    def _run(self, batch: Batch, uid: str) -> RunInfo | None:
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
        info = RunInfo(row.id, row.start_digest, row.stop_digest)
        self._runs[uid] = info
        return info

    def _parent_run(self, batch: Batch, name: str, doc: dict, key: str = "run_start") -> RunInfo:
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

    def _descriptor(self, batch: Batch, name: str, doc: dict, uid: str) -> DescriptorInfo:
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

    def _start(self, batch: Batch, index: int, doc: dict) -> None:
        d = digest(doc)
        existing = self._run(batch, doc["uid"])
        if existing is not None:
            same(batch, "start", doc, existing.start_digest, d)
            return
        run_id = batch.session.insert_run(self._catalog_id, doc, d)
        batch.runs[doc["uid"]] = RunInfo(run_id, d, None)
        batch.log_doc(run_id, "start")

    def _stop(self, batch: Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "stop", doc)
        d = digest(doc)
        if run.stop_digest is not None:
            same(batch, "stop", doc, run.stop_digest, d)
            return
        self._flush(batch, batch.strict)  # the summary counts this run's events
        stored = batch.session.set_stop(run.id, doc, d)
        batch.runs[doc["run_start"]] = RunInfo(run.id, run.start_digest, stored or d)
        if stored is not None:  # another writer got there first
            same(batch, "stop", doc, stored, d)
            return
        batch.log_doc(run.id, "stop")

    def _descriptor_doc(self, batch: Batch, index: int, doc: dict) -> None:
        run = self._parent_run(batch, "descriptor", doc)
        d = digest(doc)
        if doc["uid"] in batch.descriptors or doc["uid"] in self._descriptors:
            same(
                batch,
                "descriptor",
                doc,
                self._descriptor(batch, "descriptor", doc, doc["uid"]).digest,
                d,
            )
            return
        row = batch.session.find_descriptor(doc["uid"])
        if row is not None:
            same(batch, "descriptor", doc, row.digest, d)
            return
        desc_id, stream_id = batch.session.insert_descriptor(run.id, doc, d)
        batch.descriptors[doc["uid"]] = DescriptorInfo(
            desc_id, run.id, stream_id, doc["data_keys"], d
        )
        batch.log_doc(run.id, "descriptor")


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


def _is_pair(pair: Any) -> bool:
    return isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)


def _split(pair: Any) -> tuple[str, Any]:
    if _is_pair(pair):
        return pair[0], pair[1]
    raise InvalidDocument(
        "document", None, f"expected a (name, doc) pair, got {type(pair).__name__}"
    )


def _why(err: Exception) -> str:
    """The database's own first line for a failed statement, without the SQL text and its
    parameters (the reason goes back to the publisher: an HTTP body, a dead letter)."""
    if isinstance(err, sa.exc.StatementError) and err.orig is not None:
        err = err.orig
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
