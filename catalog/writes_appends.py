"""Appending event rows to a stream, and merging a stream's tail of small appends.

Part of :class:`bluebroker.catalog.writes.WriteSession` (a mixin on its connection, pipeline
and change records): the live hot path. A live event is one append; on PostgreSQL, when the
writer knows where the stream stands, it is one round trip with the COMMIT (see ``append``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from . import changes as chg
from . import columns as col
from .engine import dumps
from .schema import chunks, events, streams

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger(__name__)
IN_BATCH = 500  # bound on IN (...) lists, well under every backend's parameter limit
# PostgreSQL takes the uids as one array parameter, which has no such limit: a migration's
# batch of 10,000 events is asked about in one round trip instead of twenty.
ANY_BATCH = 10_000
# From this many events in one append, PostgreSQL gets their keys by COPY (``_copy_keys``);
# fewer (a live event) ride in the pipeline with the COMMIT, one round trip in all.
COPY_MIN_ROWS = 64
# The events table's key columns as COPY's binary format writes them (schema.events).
_KEY_TYPES = ("text", "int4", "int8", "bytea")

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


class AppendWrites:
    """Event rows in, as column chunks; the tail merged as it grows (see columns.py).
    The names declared here are WriteSession's."""

    _pipeline: Pipeline
    _mark: str
    sqlite: bool
    streams: dict[int, tuple[int, int] | None]
    guessed: bool
    tails: list[int]
    conn: sa.Connection  # with the queued writes sent first
    _conn: sa.Connection  # as it is, queued writes still waiting
    _add_change: Callable[[chg.Change], None]
    _insert_rows: Callable[[sa.Table, Sequence[str], list[tuple]], None]

    def event_digests(self, uids: Sequence[str]) -> dict[str, bytes]:
        """Digests of the events among ``uids`` that are already stored.

        Usually a transaction's first statement: on PostgreSQL it goes through the pipeline,
        so that the BEGIN travels with it instead of taking a round trip of its own.
        """
        found: dict[str, bytes] = {}
        step = IN_BATCH if self.sqlite else ANY_BATCH
        for i in range(0, len(uids), step):
            part = list(uids[i : i + step])
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
        if len(keyed) >= COPY_MIN_ROWS and not self.sqlite:
            self._copy_keys(keyed)
        elif keyed:
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

    def _copy_keys(self, keyed: list[tuple[str, int, int, bytes]]) -> None:
        """Store a page's event keys with one COPY (PostgreSQL): thousands of single-row
        INSERTs, even pipelined, cost the server a parse-bind-execute each and were the
        migration's limit. COPY cannot ride in a pipeline, so the queued writes go first
        (one round trip) and the COPY follows in the same transaction: the page stays
        all-or-nothing, and a refused key raises as an INSERT's would (IntegrityError)."""
        import psycopg

        self._pipeline.sync()
        sql = 'COPY events (uid, stream_id, "row", digest) FROM STDIN (FORMAT BINARY)'
        driver = self._conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                copy.set_types(_KEY_TYPES)
                for row in keyed:
                    copy.write_row(row)
        except psycopg.Error as err:
            self._pipeline._raise(err, sql, None)

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
        (absent from some appends) is left alone, so merging never invents values. One
        column at a time: a merge of half a million rows held every column's chunks, their
        arrays and the merged blobs at once (+100 MB in an ingest worker); now one column's."""
        bounds = {"stream_id": stream_id, "lo": lo, "hi": hi}
        sizes: dict[str, int] = {}
        for column, nbytes in self.conn.execute(_SIZES, bounds):
            sizes[column] = sizes.get(column, 0) + nbytes
        merged_markers = False
        for column, nbytes in sizes.items():
            if nbytes > col.MAX_MERGED_BYTES and column != "seq_num":
                continue
            rows = self.conn.execute(_PARTS, {**bounds, "columns": [column]}).all()
            tiles = (
                rows[0].start_row == lo
                and rows[-1].stop_row == hi
                and all(a.stop_row == b.start_row for a, b in itertools.pairwise(rows))
            )
            if not tiles:
                continue
            arrays = [
                col.Chunk(
                    r.start_row, col.decode(r.dtype, r.shape, r.payload, r.stop_row - r.start_row)
                )
                for r in rows
            ]
            del rows
            dtype, shape, payload = col.encode(col.assemble(arrays, lo, hi))
            del arrays
            self.conn.execute(_DELETE_RANGE, {**bounds, "columns": [column]})
            self.conn.execute(
                sa.insert(chunks),
                [
                    {
                        "stream_id": stream_id,
                        "column": column,
                        "start_row": lo,
                        "stop_row": hi,
                        "tier": tier,
                        "dtype": dtype,
                        "shape": shape,
                        "payload": payload,
                    }
                ],
            )
            merged_markers = merged_markers or column == "seq_num"
        return merged_markers  # the append markers merged: the tail has changed
