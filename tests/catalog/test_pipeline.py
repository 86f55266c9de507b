"""The writer's queued writes (pipeline.py) and the rows that travel with a change's notice."""

import bluesky.plans as bp
import numpy as np
import pytest
import sqlalchemy as sa
from ophyd.sim import det1, det2

from bluebroker.catalog import changes as chg
from bluebroker.catalog.pipeline import Pipeline
from bluebroker.catalog.schema import events


def test_queued_writes_are_seen_by_the_next_read_and_committed(catalog):
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch (k INTEGER PRIMARY KEY, v TEXT)")
    with catalog.engine.begin() as conn:
        pipe = Pipeline(conn)
        mark = pipe.mark
        insert = f"INSERT INTO scratch (k, v) VALUES ({mark}, {mark})"
        pipe.defer(insert, [(1, "a"), (2, "b")], many=True)
        pipe.defer(insert, (3, "c"))
        assert len(pipe) == 2
        (rows,) = pipe.sync([("SELECT k, v FROM scratch ORDER BY k", ())])
        assert rows == [(1, "a"), (2, "b"), (3, "c")]
        pipe.defer(insert, (4, "d"))
        pipe.commit()
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 4
        conn.exec_driver_sql("DROP TABLE scratch")
        conn.commit()


def test_a_failing_queued_write_raises_sqlalchemys_error_and_rolls_back(catalog):
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch2 (k INTEGER PRIMARY KEY)")
    with pytest.raises(sa.exc.IntegrityError), catalog.engine.begin() as conn:
        pipe = Pipeline(conn)
        pipe.defer(f"INSERT INTO scratch2 (k) VALUES ({pipe.mark})", [(1,), (1,)], many=True)
        pipe.commit()
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch2").scalar() == 0
        conn.exec_driver_sql("DROP TABLE scratch2")
        conn.commit()


def test_a_duplicate_event_in_one_batch_is_refused_and_the_rest_kept(writer, RE, recorder):
    """The events insert now fails at the commit's round trip, not at its own statement:
    the writer must still isolate the one bad document."""
    RE.subscribe(recorder)
    RE(bp.count([det1], num=3))
    docs = list(recorder)
    writer.write_many(docs)
    event = next(d for n, d in docs if n == "event")
    clash = {**event, "data": {**event["data"], "det1": -1.0}}
    result = writer.write_many([("event", clash)], strict=False)
    assert [r.name for r in result.rejected] == ["event"]
    with writer.catalog.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 3


def test_a_notice_carries_small_appends_and_the_server_reads_the_same(catalog, writer, RE):
    seen: list[chg.Change] = []
    catalog.changes.add_listener(lambda found: seen.extend(found or []))
    RE.subscribe(writer)
    (uid,) = RE(bp.count([det1, det2], num=5))
    # Each change comes in-process with its rows, and maybe again: by NOTIFY on PostgreSQL
    # (with its rows too), from SQLite's tail of the change log (without: read back).
    appended = [c for c in seen if c.kind == "rows-appended" and c.chunks]
    assert sorted({c.seq for c in appended}) == [1, 2, 3, 4, 5]
    table = catalog.node(("bmm", "raw", uid, "primary", "data"))
    for change in appended:
        start, stop = change.body["start_row"], change.body["stop_row"]
        travelled = chg._parse(chg.notice(change))  # what a LISTENing server gets
        carried = table.read_arrays(None, start=start, stop=stop, preread=travelled.rows())
        stored = table.read_arrays(None, start=start, stop=stop)
        assert list(carried) == list(stored)
        for column, values in stored.items():
            assert carried[column].dtype == values.dtype
            np.testing.assert_array_equal(carried[column], values)


def test_an_append_too_big_for_a_notice_travels_without_its_rows():
    rows = np.arange(2000, dtype="f8")
    from bluebroker.catalog import columns as col

    change = chg.Change(
        "stream", 1, 7, "rows-appended", 0.0, {"start_row": 0, "stop_row": 2000},
        {"data/x": col.encode(rows)},
    )  # fmt: skip
    payload = chg.notice(change)
    assert len(payload) <= chg.NOTIFY_LIMIT
    travelled = chg._parse(payload)
    assert travelled.chunks is None and travelled.rows() is None
    assert travelled.body == change.body  # the server reads the rows from the table instead
    small = chg.Change(
        "stream", 1, 8, "rows-appended", 0.0, {"start_row": 0, "stop_row": 3},
        {"data/x": col.encode(rows[:3])},
    )  # fmt: skip
    np.testing.assert_array_equal(chg._parse(chg.notice(small)).rows()["data/x"], rows[:3])


def test_a_writer_whose_pooled_connection_died_writes_again(postgresql_uri, RE, recorder):
    """The writers' pool has no checkout ping: a connection the server dropped (a restart,
    an idle timeout) fails the batch's first statement, and the batch is written again."""
    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter

    RE.subscribe(recorder)
    RE(bp.count([det1], num=2))
    docs = list(recorder)
    with open_catalog(postgresql_uri, create=True) as catalog:
        writer = CatalogWriter(catalog, "bmm/raw")
        writer.write_many(docs[:2])  # start and descriptor
        with catalog.write_engine.connect() as conn:  # the pool's one connection
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with catalog.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,)).scalar()
        result = writer.write_many(docs[2:])
        assert result.written == len(docs) - 2 and not result.rejected
        run = catalog.node(("bmm", "raw", docs[0][1]["uid"]))
        assert len(run["primary"]["data"].read()) == 2


def test_writers_begin_their_own_transactions_and_leave_connections_clean(
    postgresql_uri, RE, recorder
):
    """The writers' engine does not let psycopg begin transactions (its lone BEGIN was a
    round trip): the pipeline sends BEGIN with the first statements. A batch that fails
    must still roll back whole and hand back an idle connection."""
    import psycopg

    from bluebroker.catalog import open_catalog
    from bluebroker.ingest import CatalogWriter, DocumentError

    RE.subscribe(recorder)
    RE(bp.count([det1], num=3))
    docs = list(recorder)
    with open_catalog(postgresql_uri, create=True) as catalog:
        writer = CatalogWriter(catalog, "bmm/raw")
        bad = ("event", {**docs[2][1], "descriptor": "no-such-descriptor"})
        with pytest.raises(DocumentError):
            writer.write_many([*docs[:3], bad])  # strict: all or nothing
        with catalog.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        writer.write_many(docs)
        with catalog.write_engine.connect() as conn:
            status = conn.connection.driver_connection.info.transaction_status
            assert status == psycopg.pq.TransactionStatus.IDLE
        with catalog.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 3
