"""Writes of external-data documents: resources and datums, stream resources and datums.

Part of :class:`bluebroker.catalog.writes.WriteSession` (a mixin on its connection and change
records). A stream_datum makes rows of a stream readable from a detector's file; when it also
tells live subscribers so is decided here (see ``insert_stream_datum``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from .engine import jsonable
from .schema import changes, datums, resources, stream_datums, stream_resources, streams
from .writes_appends import IN_BATCH


class AssetWrites:
    """Resources, datums, stream resources and stream datums. The names declared here are
    WriteSession's."""

    sqlite: bool
    conn: sa.Connection  # with the queued writes sent first
    record: Callable[[str, int, str, dict], None]

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
        """Store a stream_datum; its rows count in the stream's length (``stream_rows``).

        Live subscribers hear of each row range once (one ``rows-appended``). In a step scan
        every stream_datum is followed by the event of the same row, and that event's append
        announces the row, in-event values included; announcing the stream_datum as well sent
        every row twice, the first time without its values. So a stream_datum announces rows
        only in a stream without events (a fly scan's ``collect``): known once a second
        stream_datum grows the stream and still no event came (the first one's rows are
        announced with it), or at the run's stop (``announce_rows``). The caller writes the
        events it holds before a stream_datum, so that ``num_rows`` counts every earlier one.
        """
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
        query = sa.select(streams.c.num_rows, streams.c.stream_rows)
        query = query.where(streams.c.id == stream_id)
        if not self.sqlite:  # the stream's row, locked as an append locks it
            query = query.with_for_update()
        events, before = self.conn.execute(query).one()
        if covered <= before:
            return
        self.conn.execute(
            sa.update(streams).where(streams.c.id == stream_id).values(stream_rows=covered)
        )
        if events == 0 and before > 0:  # an earlier stream_datum had no event after it
            self.announce_rows(stream_id, 0, covered)

    def announce_rows(self, stream_id: int, events: int, stop: int) -> None:
        """Record ``rows-appended`` for the stream's rows below ``stop`` that neither its
        events (the first ``events`` rows) nor an earlier announcement covered."""
        last = self.conn.execute(
            sa.select(changes.c.body)
            .where(
                changes.c.scope == "stream",
                changes.c.node_id == stream_id,
                changes.c.kind == "rows-appended",
            )
            .order_by(changes.c.seq.desc())
            .limit(1)
        ).scalar()
        start = max(events, int(last["stop_row"]) if last else 0)
        if stop > start:
            body = {"start_row": start, "stop_row": stop, "seq_nums": [start + 1, stop]}
            self.record("stream", stream_id, "rows-appended", body)
