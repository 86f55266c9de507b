"""SQL writes for one transaction: the ingest writer decides *what* to write, this knows *how*.

All methods run on the caller's connection inside the caller's transaction, so a batch of
documents commits or rolls back as one. ``WriteSession`` is split by what it writes: runs,
descriptors and the change log here; event rows in ``writes_appends.py``; external-data
documents in ``writes_assets.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bluebroker.queries import utc_iso

from . import changes as chg
from . import columns as col
from .engine import jsonable
from .pipeline import Pipeline
from .schema import catalogs, descriptors, documents, runs, streams
from .writes_appends import _TAIL_TIERS, IN_BATCH, AppendWrites
from .writes_assets import AssetWrites

__all__ = ["IN_BATCH", "WORD", "WriteSession", "search_text"]

TEXT_LIMIT = 100_000  # characters of metadata indexed for full-text search, per run
WORD = re.compile(r"\w+")


def search_text(*docs: dict | None) -> str:
    """The words of the documents' string values (and scalar numbers), for full-text search.

    Splitting into words here, the same way for every backend, makes ``bnl.gov`` or
    ``/nsls2/data`` findable by their parts on SQLite and PostgreSQL alike. Numbers inside
    lists (positions of a list_scan) are left out: nobody searches them as text, and they
    would overflow PostgreSQL's tsvector.
    """
    words: list[str] = []

    def walk(obj: Any, in_list: bool = False) -> None:
        if isinstance(obj, str):
            words.extend(WORD.findall(obj))
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v, True)
        elif isinstance(obj, int | float) and not isinstance(obj, bool) and not in_list:
            words.append(str(obj))

    for doc in docs:
        if doc:
            walk(doc)
    return " ".join(words)[:TEXT_LIMIT]


def _scan_id(start: dict) -> int | None:
    value = start.get("scan_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    return None


class WriteSession(AppendWrites, AssetWrites):
    """Write primitives bound to one connection (and so to one transaction)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self._mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # Writes that need no answer, sent with the next statement that does (pipeline.py).
        self._pipeline = Pipeline(conn)
        # What this transaction changed, for live subscribers (published after the commit).
        self.changes: list[chg.Change] = []
        # Each appended stream's (row count, last change) as this transaction leaves it; None
        # once something else moved its change counter. The writer keeps them across
        # transactions to append without asking first (see ``append``'s ``expect``).
        self.streams: dict[int, tuple[int, int] | None] = {}
        self.guessed = False  # an append relied on ``expect``: a failure may mean a bad guess
        self.tails: list[int] = []  # streams appended to with ``expect``: tails read at COMMIT
        self.merge_after: list[int] = []  # and, after it, those whose tail wants merging

    @property
    def conn(self) -> sa.Connection:
        """The connection, with every queued write sent first (and the transaction begun):
        whatever runs on it next sees them."""
        if len(self._pipeline) or not self._pipeline.begun:
            self._pipeline.sync()
        return self._conn

    def commit(self) -> None:
        """Send the queued writes and commit (on PostgreSQL in the same round trip).

        Streams appended to with ``expect`` have their tails read in that same trip; those
        whose last FANOUT appends now share a tier are listed in ``merge_after``.
        """
        reads = [(_TAIL_TIERS.format(m=self._mark), (s, col.FANOUT)) for s in self.tails]
        tails = self._pipeline.commit(reads)
        self.merge_after = [
            s
            for s, tiers in zip(self.tails, tails, strict=True)
            if len(tiers) == col.FANOUT and len(set(tiers)) == 1
        ]

    def record(self, scope: str, node_id: int, kind: str, body: dict) -> None:
        if scope == "stream":
            self.streams[node_id] = None
        seq = chg.next_seq(self.conn, scope, node_id)
        self._add_change(chg.Change(scope, node_id, seq, kind, time.time(), jsonable(body)))

    def _add_change(self, change: chg.Change) -> None:
        for sql, params in chg.statements(self._conn, change):
            self._pipeline.defer(sql, params)
        self.changes.append(change)

    def _insert_rows(self, table: sa.Table, names: Sequence[str], rows: list[tuple]) -> None:
        """A plain DB-API ``executemany`` for the per-event hot paths (SQLAlchemy's per-row
        parameter processing cost more than the insert itself at 10,000 events/s), queued
        with the transaction's other writes."""
        quoted = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join([self._mark] * len(names))
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})'
        self._pipeline.defer(sql, rows, many=True)

    # -- catalogs and runs ---------------------------------------------------------------

    def catalog_id(self, path: str) -> int:
        """Id of the catalog at ``path``, created on first use."""
        found = self.conn.execute(sa.select(catalogs.c.id).where(catalogs.c.path == path)).scalar()
        if found is not None:
            return found
        # Two workers may create the same catalog at once: let the database pick one.
        insert = sqlite_insert if self.sqlite else pg_insert
        self.conn.execute(
            insert(catalogs)
            .values(path=path, metadata={}, created=time.time(), num_runs=0)
            .on_conflict_do_nothing(index_elements=["path"])
        )
        return self.conn.execute(
            sa.select(catalogs.c.id).where(catalogs.c.path == path)
        ).scalar_one()

    def find_run(self, uid: str) -> sa.Row | None:
        return self.conn.execute(
            sa.select(runs.c.id, runs.c.catalog_id, runs.c.start_digest, runs.c.stop_digest).where(
                runs.c.uid == uid
            )
        ).first()

    def insert_run(self, catalog_id: int, start: dict, digest: bytes) -> int:
        start_json = jsonable(start)
        summary = {
            "uid": start["uid"],
            "scan_id": _scan_id(start),
            "plan_name": start.get("plan_name"),
            "timestamp": start["time"],
            "datetime": utc_iso(start["time"]),
            "stream_names": [],
            "duration": None,
            "num_events": {},
        }
        text = search_text(start)
        run_id = self.conn.execute(
            sa.insert(runs)
            .values(
                catalog_id=catalog_id,
                uid=start["uid"],
                time=float(start["time"]),
                scan_id=_scan_id(start),
                start=start_json,
                summary=summary,
                text=text,
                start_digest=digest,
            )
            .returning(runs.c.id)
        ).scalar_one()
        self._index_text(run_id, text, new=True)
        self.conn.execute(
            sa.update(catalogs)
            .where(catalogs.c.id == catalog_id)
            .values(num_runs=catalogs.c.num_runs + 1)
        )
        self.record(
            "catalog",
            catalog_id,
            "run-created",
            {
                "uid": start["uid"],
                "scan_id": summary["scan_id"],
                "plan_name": summary["plan_name"],
                "time": start["time"],
            },
        )
        return run_id

    def set_stop(self, run_id: int, stop: dict, digest: bytes) -> bytes | None:
        """Store the stop document unless one is already stored; returns the digest of the
        one already there (None when this one was stored)."""
        start, summary, catalog_id = self.conn.execute(
            sa.select(runs.c.start, runs.c.summary, runs.c.catalog_id).where(runs.c.id == run_id)
        ).one()
        found = self.conn.execute(
            sa.select(streams.c.id, streams.c.name, streams.c.num_rows, streams.c.stream_rows)
            .where(streams.c.run_id == run_id)
            .order_by(streams.c.id)
        ).all()
        counts = {s.name: max(s.num_rows, s.stream_rows) for s in found}
        summary = dict(summary)
        summary["duration"] = float(stop["time"]) - float(summary["timestamp"])
        summary["num_events"] = {name: int(n) for name, n in counts.items()}
        summary["exit_status"] = stop.get("exit_status")
        text = search_text(start, stop)
        done = self.conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.stop_digest.is_(None))
            .values(stop=jsonable(stop), stop_digest=digest, summary=summary, text=text)
        )
        if done.rowcount == 0:  # another writer stored a stop first
            return self.conn.execute(
                sa.select(runs.c.stop_digest).where(runs.c.id == run_id)
            ).scalar_one()
        self._index_text(run_id, text, new=False)
        body = {"uid": start["uid"], "exit_status": stop.get("exit_status"), "num_events": counts}
        self.record("catalog", catalog_id, "run-stopped", body)
        self.record("run", run_id, "run-stopped", body)
        for stream in found:
            if stream.stream_rows > stream.num_rows:  # stream_datum rows not yet announced
                self.announce_rows(stream.id, stream.num_rows, stream.stream_rows)
            self.record("stream", stream.id, "run-stopped", body)
        return None

    def _index_text(self, run_id: int, text: str, new: bool) -> None:
        if not self.sqlite:
            return  # PostgreSQL indexes the runs.text column itself (GIN on to_tsvector)
        if not new:
            self.conn.exec_driver_sql("DELETE FROM runs_fts WHERE rowid = ?", (run_id,))
        self.conn.exec_driver_sql(
            "INSERT INTO runs_fts (rowid, text) VALUES (?, ?)", (run_id, text)
        )

    # -- descriptors and streams ---------------------------------------------------------

    def find_descriptor(self, uid: str) -> sa.Row | None:
        return self.conn.execute(
            sa.select(
                descriptors.c.id,
                descriptors.c.run_id,
                descriptors.c.stream_id,
                descriptors.c.digest,
                descriptors.c.doc,
            ).where(descriptors.c.uid == uid)
        ).first()

    def stream_id(self, run_id: int, name: str) -> int:
        """Id of the run's stream ``name``, created (and listed in the summary) on first use."""
        found = self.conn.execute(
            sa.select(streams.c.id).where(streams.c.run_id == run_id, streams.c.name == name)
        ).scalar()
        if found is not None:
            return found
        stream_id = self.conn.execute(
            sa.insert(streams)
            .values(run_id=run_id, name=name, num_rows=0, stream_rows=0)
            .returning(streams.c.id)
        ).scalar_one()
        summary = dict(
            self.conn.execute(sa.select(runs.c.summary).where(runs.c.id == run_id)).scalar_one()
        )
        summary["stream_names"] = [*summary.get("stream_names", []), name]
        self.conn.execute(sa.update(runs).where(runs.c.id == run_id).values(summary=summary))
        self.record("run", run_id, "stream-created", {"name": name})
        return stream_id

    def insert_descriptor(self, run_id: int, doc: dict, digest: bytes) -> tuple[int, int]:
        known = len(self.changes)
        stream_id = self.stream_id(run_id, doc.get("name", "primary"))
        if len(self.changes) == known:  # a further descriptor of an existing stream
            self.record("stream", stream_id, "descriptor-added", {"uid": doc["uid"]})
        desc_id = self.conn.execute(
            sa.insert(descriptors)
            .values(
                uid=doc["uid"],
                run_id=run_id,
                stream_id=stream_id,
                time=float(doc["time"]),
                doc=jsonable(doc),
                digest=digest,
            )
            .returning(descriptors.c.id)
        ).scalar_one()
        return desc_id, stream_id

    # -- raw documents -------------------------------------------------------------------

    def insert_documents(self, rows: list[dict]) -> None:
        """Append raw documents (``run_id``, ``name``, ``payload``) to the replay log, in
        the order given."""
        if rows:
            self._insert_rows(
                documents,
                ("run_id", "name", "payload"),
                [(r["run_id"], r["name"], r["payload"]) for r in rows],
            )
