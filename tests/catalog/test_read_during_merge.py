"""A read that lists a stream's chunks while a writer merges them (the writer merges the tail
every 16 appends) reads the rows all the same: the soak found live messages failing with
"No row was found" when a merge fell between listing the chunks and reading their bytes."""

from __future__ import annotations

import numpy as np
from event_model import compose_run

from bluebroker.catalog.reads import _COVERING, read_columns
from bluebroker.ingest import CatalogWriter


class _MergeAfterListing:
    """A connection that lets the writer append (and merge) right after the chunks are
    listed, before their bytes are read: the interleaving a busy server meets by chance."""

    def __init__(self, conn, append):
        self.conn, self.append, self.done = conn, append, False

    def execute(self, statement, params=None):
        result = self.conn.execute(statement, params)
        if statement is _COVERING and not self.done:
            self.done = True
            rows = result.all()  # listed now ...
            self.append()  # ... merged and committed by the writer meanwhile
            return rows
        return result


def test_rows_read_while_the_writer_merges_them(catalog):
    writer = CatalogWriter(catalog, "bmm/raw")
    run = compose_run()
    desc = run.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    writer.write_many([("start", run.start_doc), ("descriptor", desc.descriptor_doc)])

    def event(i):
        return ("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": 0.0}))

    for i in range(15):  # fifteen appends of two rows: the sixteenth merges them
        writer.write_many([event(2 * i), event(2 * i + 1)])
    stream = catalog.node(f"bmm/raw/{run.start_doc['uid']}/primary")
    with catalog.connect() as conn:
        before = conn.exec_driver_sql("SELECT count(*) FROM chunks").scalar()
        listing = _MergeAfterListing(conn, lambda: writer.write_many([event(30), event(31)]))
        # rows 1..28: the first and last chunks only partly, so their bytes are cut in SQL
        found = read_columns(listing, stream.id, ["seq_num", "data/x"], 1, 29)
    assert listing.done
    with catalog.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM chunks").scalar() < before  # merged
    np.testing.assert_array_equal(found["data/x"], np.arange(1.0, 29.0))
    np.testing.assert_array_equal(found["seq_num"], np.arange(2, 30))
