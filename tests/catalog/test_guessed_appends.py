"""Appends numbered from what the writer last saw of a stream (WriteSession.append's
``expect``): a live event in one round trip, and every way the guess can be wrong."""

import bluesky.plans as bp
import numpy as np
import pytest
import sqlalchemy as sa
from ophyd.sim import det1

from bluebroker.catalog import changes as chg
from bluebroker.catalog.schema import chunks, streams
from bluebroker.catalog.writes import WriteSession
from bluebroker.ingest import CatalogWriter
from bluebroker.ingest.errors import UidConflict


@pytest.fixture
def run_docs(RE, recorder):
    """(head, events, stop) of a real 40-point count."""
    RE.subscribe(recorder)
    RE(bp.count([det1], num=40))
    docs = list(recorder)
    head = [(n, d) for n, d in docs if n in ("start", "descriptor")]
    evs = [(n, d) for n, d in docs if n == "event"]
    assert docs[-1][0] == "stop" and len(evs) == 40
    return head, evs, docs[-1]


@pytest.fixture
def lookups(monkeypatch):
    """How many times writers asked the database which events were already stored."""
    calls = []
    real = WriteSession.event_digests

    def counted(self, uids):
        calls.append(list(uids))
        return real(self, uids)

    monkeypatch.setattr(WriteSession, "event_digests", counted)
    return calls


def _stream_state(catalog, uid):
    run = catalog.node(("bmm", "raw", uid))
    stream_id = run["primary"].id
    with catalog.engine.connect() as conn:
        rows, last = conn.execute(
            sa.select(streams.c.num_rows, streams.c.last_change).where(streams.c.id == stream_id)
        ).one()
        log = chg.since(conn, "stream", stream_id, 0)
    return stream_id, rows, last, log


def _assert_consistent(catalog, uid, n):
    """Rows 0..n-1 hold seq_num 1..n, and the change log numbers them without gap."""
    table = catalog.node(("bmm", "raw", uid, "primary", "data"))
    np.testing.assert_array_equal(table.read_arrays()["seq_num"], np.arange(1, n + 1))
    _, rows, last, log = _stream_state(catalog, uid)
    assert rows == n
    assert [c.seq for c in log] == list(range(1, last + 1))
    appended = [c.body for c in log if c.kind == "rows-appended"]
    assert [b["start_row"] for b in appended] == [0, *[b["stop_row"] for b in appended[:-1]]]
    assert appended[-1]["stop_row"] == n


def test_live_events_after_the_first_are_written_without_asking(writer, run_docs, lookups):
    head, evs, stop = run_docs
    writer.write_many(head)
    for pair in evs:
        writer.write_many([pair])
    writer.write_many([stop])
    postgres = writer.catalog.engine.dialect.name == "postgresql"
    # PostgreSQL asks once per stream (the first append); SQLite, with no round trip to
    # save, asks every time.
    assert len(lookups) == (1 if postgres else 40)
    _assert_consistent(writer.catalog, head[0][1]["uid"], 40)


def test_another_writer_appending_meanwhile_is_noticed(catalog, run_docs, lookups):
    head, evs, stop = run_docs
    a, b = CatalogWriter(catalog, "bmm/raw"), CatalogWriter(catalog, "bmm/raw")
    a.write_many(head)
    for i, pair in enumerate(evs):  # the two writers take turns, three events each
        (b if (i // 3) % 2 else a).write_many([pair])
    a.write_many([stop])
    _assert_consistent(catalog, head[0][1]["uid"], 40)
    # On PostgreSQL, the first event of each turn was guessed from a stale count, refused
    # whole by the guard, and written again asking; the next two were guessed right.
    postgres = catalog.engine.dialect.name == "postgresql"
    assert len(lookups) == (14 if postgres else 40)


def test_a_replayed_event_in_a_guessed_batch_is_a_duplicate(writer, run_docs, lookups):
    head, evs, stop = run_docs
    writer.write_many(head)
    for pair in evs[:5]:
        writer.write_many([pair])
    result = writer.write_many([evs[3], evs[5]])  # a replay of event 4, then event 6
    assert (result.written, result.duplicates, result.rejected) == (1, 1, [])
    writer.write_many(evs[6:])
    writer.write_many([stop])
    _assert_consistent(writer.catalog, head[0][1]["uid"], 40)


def test_a_clashing_event_in_a_guessed_batch_is_refused_and_the_rest_kept(writer, run_docs):
    head, evs, _ = run_docs
    writer.write_many(head)
    for pair in evs[:5]:
        writer.write_many([pair])
    name, event = evs[2]
    clash = {**event, "data": {**event["data"], "det1": -1.0}}
    result = writer.write_many([(name, clash), evs[5]], strict=False)
    assert [type(r.error) for r in result.rejected] == [UidConflict]
    assert result.written == 1
    with pytest.raises(UidConflict):
        writer.write_many([(name, clash)])
    table = writer.catalog.node(("bmm", "raw", head[0][1]["uid"], "primary", "data"))
    assert table.read()["det1"].tolist() == [e["data"]["det1"] for _, e in evs[:6]]


def test_single_event_appends_are_merged_after_their_commit(writer, run_docs):
    head, evs, stop = run_docs
    writer.write_many(head)
    for pair in evs:
        writer.write_many([pair])
    uid = head[0][1]["uid"]
    stream_id, *_ = _stream_state(writer.catalog, uid)
    with writer.catalog.engine.connect() as conn:
        found = conn.execute(
            sa.select(chunks.c.start_row, chunks.c.stop_row, chunks.c.tier)
            .where(chunks.c.stream_id == stream_id, chunks.c.column == "seq_num")
            .order_by(chunks.c.start_row)
        ).all()
    # 40 appends: two groups of 16 merged into tier-1 chunks, 8 single rows left.
    assert [tuple(r) for r in found[:2]] == [(0, 16, 1), (16, 32, 1)]
    assert len(found) == 2 + 8
    writer.write_many([stop])
    _assert_consistent(writer.catalog, uid, 40)
