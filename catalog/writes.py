"""SQL writes for one transaction: the ingest writer decides *what* to write, this knows *how*.

All methods run on the caller's connection inside the caller's transaction, so a batch of
documents commits or rolls back as one.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bluebroker.queries import utc_iso

from . import changes as chg
from . import columns as col
from .engine import dumps, jsonable
from .pipeline import Pipeline
from .schema import (
    catalogs,
    chunks,
    datums,
    descriptors,
    documents,
    events,
    resources,
    runs,
    stream_datums,
    stream_resources,
    streams,
)

log = logging.getLogger(__name__)
IN_BATCH = 500  # bound on IN (...) lists, well under every backend's parameter limit


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


_TAIL = (
    sa.select(chunks.c.start_row, chunks.c.stop_row, chunks.c.tier)
    .where(chunks.c.stream_id == sa.bindparam("stream_id"), chunks.c.column == "seq_num")
    .order_by(chunks.c.start_row.desc())
    .limit(sa.bindparam("n"))
)
_IN_RANGE = (
    chunks.c.stream_id == sa.bindparam("stream_id"),
    chunks.c.start_row >= sa.bindparam("lo"),
    chunks.c.stop_row <= sa.bindparam("hi"),
)
_SIZES = sa.select(chunks.c.column, sa.func.length(chunks.c.payload)).where(*_IN_RANGE)
_PARTS = (
    sa.select(
        chunks.c.column,
        chunks.c.start_row,
        chunks.c.stop_row,
        chunks.c.dtype,
        chunks.c.shape,
        chunks.c.payload,
    )
    .where(*_IN_RANGE, chunks.c.column.in_(sa.bindparam("columns", expanding=True)))
    .order_by(chunks.c.column, chunks.c.start_row)
)
_DELETE_RANGE = sa.delete(chunks).where(
    *_IN_RANGE, chunks.c.column.in_(sa.bindparam("columns", expanding=True))
)
_EVENT_DIGESTS = sa.select(events.c.uid, events.c.digest).where(
    events.c.uid.in_(sa.bindparam("uids", expanding=True))
)
# The tiers of a stream's last appends, newest first (each append writes a seq_num chunk).
_TAIL_TIERS = (
    "SELECT tier FROM chunks WHERE stream_id = {m} AND \"column\" = 'seq_num'"
    " ORDER BY start_row DESC LIMIT {m}"
)
# Grow a stream whose row count and change counter are known in advance, or fail: with no
# row updated, count(*) is 0 and the division raises, which aborts the transaction (the only
# way a statement sent ahead of its answer can stop the COMMIT sent right behind it).
_GROW_AS_EXPECTED = (
    "WITH grown AS (UPDATE streams SET num_rows = num_rows + %s, last_change = last_change + 1"
    " WHERE id = %s AND num_rows = %s AND last_change = %s RETURNING id)"
    " SELECT 1 / count(*) FROM grown"
)


class WriteSession:
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
        counts = dict(
            self.conn.execute(
                sa.select(
                    streams.c.name,
                    sa.func.max(streams.c.num_rows, streams.c.stream_rows)
                    if self.sqlite
                    else sa.func.greatest(streams.c.num_rows, streams.c.stream_rows),
                ).where(streams.c.run_id == run_id)
            ).all()
        )
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
        for stream_id in self.conn.execute(
            sa.select(streams.c.id).where(streams.c.run_id == run_id).order_by(streams.c.id)
        ).scalars():
            self.record("stream", stream_id, "run-stopped", body)
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

    # -- events ----------------------------------------------------------------------------

    def event_digests(self, uids: Sequence[str]) -> dict[str, bytes]:
        """Digests of the events among ``uids`` that are already stored.

        Usually a transaction's first statement: on PostgreSQL it goes through the pipeline,
        so that the BEGIN travels with it instead of taking a round trip of its own.
        """
        found: dict[str, bytes] = {}
        for i in range(0, len(uids), IN_BATCH):
            part = list(uids[i : i + IN_BATCH])
            if self.sqlite:
                found.update(self.conn.execute(_EVENT_DIGESTS, {"uids": part}).all())
            else:
                sql = "SELECT uid, digest FROM events WHERE uid = ANY(%s)"
                (rows,) = self._pipeline.sync([(sql, (part,))])
                found.update((uid, bytes(digest)) for uid, digest in rows)
        return found

    def append(
        self,
        stream_id: int,
        columns: dict[str, np.ndarray],
        nrows: int,
        event_keys: Iterable[tuple[str, bytes]],
        expect: tuple[int, int] | None = None,
    ) -> int:
        """Append ``nrows`` rows to a stream, one chunk per column; returns the first row.

        One round trip takes the rows and the change's sequence number and reads the tiers
        at the end of the stream; the inserts then wait in the pipeline for the commit. Only
        when the new chunk completes a group of FANOUT (one append in FANOUT) is the tail
        merged, which reads and writes there and then.

        ``expect`` (PostgreSQL) is the stream's (row count, last change) as the caller last
        left it. Then nothing is asked: the rows and the change are numbered from it, and a
        guarded UPDATE waits in the pipeline with the inserts, so a live event is one round
        trip, COMMIT included. If another writer moved the stream meanwhile, the guard fails
        the transaction and the caller writes the batch again without ``expect``. The tail
        is read with the COMMIT and merged after it (``merge_after``).
        """
        m = self._mark
        tier = col.tier_of(nrows)
        tail = None
        if expect is not None and not self.sqlite:
            start_row, last_change = expect
            self._pipeline.defer(_GROW_AS_EXPECTED, (nrows, stream_id, start_row, last_change))
            stop_row, change_seq = start_row + nrows, last_change + 1
            self.guessed = True
            if stream_id not in self.tails:
                self.tails.append(stream_id)
        else:
            (grown, tail) = self._pipeline.sync(
                [
                    (
                        f"UPDATE streams SET num_rows = num_rows + {m}, last_change = "
                        f"last_change + 1 WHERE id = {m} RETURNING num_rows, last_change",
                        (nrows, stream_id),
                    ),
                    (_TAIL_TIERS.format(m=m), (stream_id, col.FANOUT - 1)),
                ]
            )
            stop_row, change_seq = (int(v) for v in grown[0])
            start_row = stop_row - nrows
        self.streams[stream_id] = (stop_row, change_seq)
        rows, encoded = [], {}
        for name, arr in columns.items():
            dtype, shape, payload = col.encode(arr)
            encoded[name] = (dtype, shape, payload)
            rows.append((stream_id, name, start_row, stop_row, tier, dtype, dumps(shape), payload))
        jsonb = m if self.sqlite else f"CAST({m} AS JSONB)"
        self._pipeline.defer(
            'INSERT INTO chunks (stream_id, "column", start_row, stop_row, tier, dtype, shape, '
            f"payload) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {jsonb}, {m})",
            rows,
            many=True,
        )
        keyed = [
            (uid, stream_id, start_row + i, digest) for i, (uid, digest) in enumerate(event_keys)
        ]
        if keyed:
            self._insert_rows(events, ("uid", "stream_id", "row", "digest"), keyed)
        seq = columns.get("seq_num")
        if tail is not None:
            completes_group = len(tail) == col.FANOUT - 1 and all(t == tier for (t,) in tail)
            if seq is None or completes_group:
                while self._merge_tail(stream_id):
                    pass
        body = {
            "start_row": start_row,
            "stop_row": stop_row,
            "seq_nums": [int(seq[0]), int(seq[-1])] if seq is not None and len(seq) else None,
        }
        self._add_change(
            chg.Change("stream", stream_id, change_seq, "rows-appended", time.time(), body, encoded)
        )
        return start_row

    def merge_tail(self, stream_id: int) -> None:
        """Merge the end of a stream as far as it goes, in a transaction of its own (after an
        append with ``expect``). The stream's row is locked first, as an append locks it, so
        that two writers never merge the same appends."""
        if not self.sqlite:
            self.conn.execute(
                sa.select(streams.c.id).where(streams.c.id == stream_id).with_for_update()
            )
        while self._merge_tail(stream_id):
            pass

    def _merge_tail(self, stream_id: int) -> bool:
        """Merge the last FANOUT appends of a stream when they share a tier (see columns.py).

        Every append writes a ``seq_num`` chunk, so its chunks mark the appends; each column's
        chunks inside that row range become one chunk. A column whose merged chunk would
        exceed MAX_MERGED_BYTES (big inline images) is left as it is.
        """
        tail = self.conn.execute(_TAIL, {"stream_id": stream_id, "n": col.FANOUT}).all()
        if len(tail) < col.FANOUT or len({t.tier for t in tail}) != 1:
            return False
        try:
            with self.conn.begin_nested():  # a merge that fails must not fail the append
                return self._merge_range(
                    stream_id, tail[-1].start_row, tail[0].stop_row, tail[0].tier + 1
                )
        except (ValueError, TypeError, OverflowError) as err:
            log.warning("left chunks of stream %s unmerged: %s", stream_id, err)
            return False

    def _merge_range(self, stream_id: int, lo: int, hi: int, tier: int) -> bool:
        """Merge each column whose chunks tile rows [lo, hi) exactly; a column with a gap
        (absent from some appends) is left alone, so merging never invents values."""
        bounds = {"stream_id": stream_id, "lo": lo, "hi": hi}
        sizes: dict[str, int] = {}
        for column, nbytes in self.conn.execute(_SIZES, bounds):
            sizes[column] = sizes.get(column, 0) + nbytes
        mergeable = [c for c, n in sizes.items() if n <= col.MAX_MERGED_BYTES or c == "seq_num"]
        parts: dict[str, list] = {}
        for row in self.conn.execute(_PARTS, {**bounds, "columns": mergeable}):
            parts.setdefault(row.column, []).append(row)
        merged_rows = []
        for column, rows in list(parts.items()):
            tiles = (
                rows[0].start_row == lo
                and rows[-1].stop_row == hi
                and all(a.stop_row == b.start_row for a, b in itertools.pairwise(rows))
            )
            if not tiles:
                del parts[column]
                continue
            arrays = [
                col.Chunk(
                    r.start_row, col.decode(r.dtype, r.shape, r.payload, r.stop_row - r.start_row)
                )
                for r in rows
            ]
            merged = col.assemble(arrays, rows[0].start_row, rows[-1].stop_row)
            dtype, shape, payload = col.encode(merged)
            merged_rows.append(
                {
                    "stream_id": stream_id,
                    "column": column,
                    "start_row": rows[0].start_row,
                    "stop_row": rows[-1].stop_row,
                    "tier": tier,
                    "dtype": dtype,
                    "shape": shape,
                    "payload": payload,
                }
            )
        if merged_rows:
            self.conn.execute(_DELETE_RANGE, {**bounds, "columns": list(parts)})
            self.conn.execute(sa.insert(chunks), merged_rows)
        return "seq_num" in parts  # the append markers merged: the tail has changed

    # -- external data -------------------------------------------------------------------

    def find_resource(self, uid: str) -> sa.Row | None:
        return self.conn.execute(
            sa.select(resources.c.run_id, resources.c.digest).where(resources.c.uid == uid)
        ).first()

    def insert_resource(self, run_id: int, doc: dict, digest: bytes) -> None:
        self.conn.execute(
            sa.insert(resources).values(
                uid=doc["uid"], run_id=run_id, doc=jsonable(doc), digest=digest
            )
        )

    def datum_kwargs(self, datum_ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        """(resource uid, kwargs) for the datum ids among ``datum_ids`` that are stored."""
        found: dict[str, tuple[str, dict]] = {}
        for i in range(0, len(datum_ids), IN_BATCH):
            part = datum_ids[i : i + IN_BATCH]
            for datum_id, resource, kwargs in self.conn.execute(
                sa.select(datums.c.datum_id, datums.c.resource, datums.c.kwargs).where(
                    datums.c.datum_id.in_(part)
                )
            ):
                found[datum_id] = (resource, kwargs)
        return found

    def insert_datums(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(
                sa.insert(datums), [{**r, "kwargs": jsonable(r["kwargs"])} for r in rows]
            )

    def find_stream_resource(self, uid: str) -> sa.Row | None:
        return self.conn.execute(
            sa.select(
                stream_resources.c.run_id, stream_resources.c.data_key, stream_resources.c.digest
            ).where(stream_resources.c.uid == uid)
        ).first()

    def insert_stream_resource(self, run_id: int, doc: dict, digest: bytes) -> None:
        self.conn.execute(
            sa.insert(stream_resources).values(
                uid=doc["uid"],
                run_id=run_id,
                data_key=doc["data_key"],
                doc=jsonable(doc),
                digest=digest,
            )
        )

    def find_stream_datum(self, uid: str) -> bytes | None:
        return self.conn.execute(
            sa.select(stream_datums.c.digest).where(stream_datums.c.uid == uid)
        ).scalar()

    def insert_stream_datum(self, stream_id: int, data_key: str, doc: dict, digest: bytes) -> None:
        seq, idx = doc["seq_nums"], doc["indices"]
        self.conn.execute(
            sa.insert(stream_datums).values(
                uid=doc["uid"],
                stream_resource=doc["stream_resource"],
                stream_id=stream_id,
                data_key=data_key,
                seq_start=int(seq["start"]),
                seq_stop=int(seq["stop"]),
                index_start=int(idx["start"]),
                index_stop=int(idx["stop"]),
                digest=digest,
            )
        )
        covered = int(seq["stop"]) - 1  # seq_nums are 1-based, stop exclusive
        grown = self.conn.execute(
            sa.update(streams)
            .where(streams.c.id == stream_id, streams.c.stream_rows < covered)
            .values(stream_rows=covered)
        )
        if grown.rowcount:
            self.record(
                "stream",
                stream_id,
                "rows-appended",
                {
                    "start_row": int(seq["start"]) - 1,
                    "stop_row": covered,
                    "seq_nums": [int(seq["start"]), covered],
                    "data_key": data_key,
                },
            )

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
