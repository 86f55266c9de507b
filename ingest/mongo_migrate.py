"""Migrate runs from a mongo_normalized MongoDB database into a catalog, resumably.

Each run's documents (``MongoSource.documents``) go through the one writer in batches, so a
migrated run is stored exactly as if its RunEngine had written it here. Re-running the same
migration is cheap and safe: a run whose stop is already in the catalog is skipped without
reading its events, and any other run is written again, where the writer's idempotency skips
what is already stored (an interrupted migration thus continues where it stopped). A run that
cannot be migrated is listed with its reason and the migration goes on; only losing the
MongoDB server or the catalog stops it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from event_model import unpack_event_page
from tqdm import tqdm

from .mongo import MongoSource, _pymongo
from .writer import CatalogWriter, WriteResult

BATCH_EVENTS = 10_000  # events per catalog transaction
BATCH_DOCS = 500  # documents (pages count as one) per catalog transaction
REASONS_PER_RUN = 3


@dataclass
class RunFailure:
    """A run that was not (wholly) migrated, and why."""

    uid: str
    scan_id: Any
    reasons: list[str]
    refused: int = 0  # documents the writer refused


@dataclass
class MigrationReport:
    """What a migration did; ``write`` keeps it as JSON beside the operator's shell history."""

    source: str = ""
    catalog: str = ""
    path: str = ""
    runs_selected: int = 0
    runs_migrated: int = 0
    runs_skipped: int = 0  # complete in the catalog already
    runs_without_stop: int = 0
    events: int = 0
    documents_written: int = 0
    documents_present: int = 0
    seconds: float = 0.0
    failures: list[RunFailure] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.runs_migrated} runs migrated ({self.runs_without_stop} without a stop "
            f"document), {self.runs_skipped} already complete, {len(self.failures)} failed; "
            f"{self.events} events in {self.seconds:.1f} s ({self.events_per_second:,.0f}/s); "
            f"{self.documents_written} documents written, {self.documents_present} already "
            f"present; into /{self.path} of {self.catalog}"
        )

    def write(self, path: Path) -> None:
        body = asdict(self)
        body["events_per_second"] = round(self.events_per_second, 1)
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")


def _stored_runs(writer: CatalogWriter) -> dict[str, bool]:
    """Every run of the writer's catalog path: uid -> whether its stop is stored. One query,
    so that a re-run over a database of 100,000 runs skips the migrated ones at once."""
    import sqlalchemy as sa

    from bluebroker.catalog.schema import runs

    node = writer.catalog[writer.path]
    stmt = sa.select(runs.c.uid, runs.c.stop_digest.is_not(None)).where(
        runs.c.catalog_id == node.catalog_id
    )
    with writer.catalog.connect() as conn:
        return {uid: bool(complete) for uid, complete in conn.execute(stmt)}


class _RunWriter:
    """Batches one run's documents into the writer and keeps what it refused."""

    def __init__(self, writer: CatalogWriter, report: MigrationReport, resumed: bool) -> None:
        self.writer = writer
        # Events of a run partly stored go one by one: the writer takes a page only if all or
        # none of it is stored, and an interrupted writer (or another source) may have
        # stored any part of the run. Consecutive events still become columns in one pass.
        self.resumed = resumed
        self.report = report
        self.batch: list[tuple[str, dict]] = []
        self.events = 0
        self.reasons: list[str] = []
        self.refused = 0
        self.start_refused = False

    def add(self, name: str, doc: dict) -> None:
        if name == "stop":
            self.flush()
            if self.reasons:  # held back: the run stays incomplete, so running again retries it
                self.reasons.append("its stop was not written, so that the next run retries it")
                return
        if name == "event_page" and self.resumed:
            self.batch.extend(("event", event) for event in unpack_event_page(doc))
        else:
            self.batch.append((name, doc))
        if name == "event_page":
            self.events += len(doc["uid"])
        if self.events >= BATCH_EVENTS or len(self.batch) >= BATCH_DOCS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        result: WriteResult = self.writer.write_many(self.batch, strict=False)
        self.report.documents_written += result.written
        self.report.documents_present += result.duplicates
        for rejected in result.rejected:
            self.refused += 1
            if rejected.name == "start":
                self.start_refused = True
            if len(self.reasons) < REASONS_PER_RUN:
                self.reasons.append(f"{rejected.name}: {rejected.error}")
        self.batch, self.events = [], 0


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


@contextmanager
def prefetched(items: Iterable, depth: int = 4) -> Iterator[Iterator]:
    """``items`` produced by a thread of their own, ``depth`` ahead of the consumer: MongoDB
    reads (waiting on a socket, decoding BSON in C) overlap the catalog's writes instead of
    taking turns with them. Errors are raised in the consumer; leaving early stops the
    thread."""
    box: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as err:  # handed to the consumer, who raises it
            put(_Failed(err))

    def consume() -> Iterator:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    thread = threading.Thread(target=pump, name="mongo-reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def _connection_errors() -> tuple[type[BaseException], ...]:
    errors = _pymongo().errors
    return (errors.ConnectionFailure, errors.ServerSelectionTimeoutError)


def migrate(
    source: MongoSource,
    writer: CatalogWriter,
    *,
    show_progress: bool = True,
    report: MigrationReport | None = None,
) -> MigrationReport:
    """Write every selected run of ``source`` through ``writer``; see the module docstring."""
    report = report or MigrationReport()
    report.path = writer.path
    stored_runs = _stored_runs(writer)
    lost = _connection_errors()
    refused = _pymongo().errors.OperationFailure
    began = time.perf_counter()
    report.runs_selected = source.count_runs()
    try:
        with (
            tqdm(
                total=report.runs_selected,
                unit="run",
                desc="runs",
                disable=not show_progress,
                position=0,
            ) as run_bar,
            tqdm(
                total=source.estimated_events(),
                unit="ev",
                unit_scale=True,
                desc="events",
                disable=not show_progress,
                position=1,
            ) as event_bar,
        ):
            for start in source.run_starts():
                uid = start.get("uid")
                if not isinstance(uid, str):
                    report.failures.append(
                        RunFailure(str(uid), start.get("scan_id"), ["its start has no string uid"])
                    )
                    run_bar.update()
                    continue
                stored = stored_runs.get(uid)  # None: not there; False: there, without its stop
                if stored:
                    report.runs_skipped += 1
                    run_bar.update()
                    continue
                counts: dict[str, int] = {}
                out = _RunWriter(writer, report, resumed=stored is False)
                stopped = False
                try:
                    with prefetched(source.documents(start, counts)) as documents:
                        for name, doc in documents:
                            out.add(name, doc)
                            stopped = stopped or name == "stop"
                            if name == "event_page":
                                event_bar.update(len(doc["uid"]))
                            if out.start_refused:
                                break
                    out.flush()
                except lost:
                    raise
                except refused as err:  # e.g. a sort past MongoDB's memory limit
                    why = (err.details or {}).get("errmsg") or str(err)
                    out.reasons.append(f"MongoDB refused reading it: {why}"[:500])
                except (KeyError, TypeError, ValueError, AttributeError) as err:
                    what = (
                        f"a Mongo document lacks {err}" if isinstance(err, KeyError) else str(err)
                    )
                    out.reasons.append(f"could not be read: {what}"[:500])
                report.events += counts.get("events", 0)
                if out.reasons:
                    report.failures.append(
                        RunFailure(uid, start.get("scan_id"), out.reasons, out.refused)
                    )
                else:
                    report.runs_migrated += 1
                    report.runs_without_stop += not stopped
                run_bar.update()
                run_bar.set_postfix(failed=len(report.failures), refresh=False)
    finally:
        report.seconds = time.perf_counter() - began
    return report
