"""A page of events stores its event keys by COPY on PostgreSQL (writes_appends.py's
``_copy_keys``) and by INSERTs on SQLite: the same rows either way, a replay skipped, and a
page whose COPY the database refuses leaves nothing of itself behind."""

import bluesky.plans as bp
import numpy as np
import pytest
import sqlalchemy as sa
from event_model import pack_event_page
from ophyd.sim import det1, motor

from bluebroker.catalog import writes_appends
from bluebroker.catalog.schema import events, streams
from bluebroker.catalog.writes import WriteSession
from bluebroker.ingest import CatalogWriter

N = 150  # events in the page: above COPY_MIN_ROWS, so PostgreSQL takes them by COPY


@pytest.fixture
def scan(record):
    """(head, events, stop) of a real scan of N points."""
    docs = record(bp.scan([det1], motor, -1, 1, N))
    head = [(n, d) for n, d in docs if n in ("start", "descriptor")]
    evs = [d for n, d in docs if n == "event"]
    assert docs[-1][0] == "stop" and len(evs) == N > writes_appends.COPY_MIN_ROWS
    return head, evs, docs[-1][1]


@pytest.fixture
def copies(monkeypatch):
    """How many pages went by COPY."""
    calls = []
    real = WriteSession._copy_keys

    def counted(self, keyed):
        calls.append(len(keyed))
        return real(self, keyed)

    monkeypatch.setattr(WriteSession, "_copy_keys", counted)
    return calls


def _keys(catalog):
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.uid, events.c.row, events.c.digest)).all()
    return {uid: (row, bytes(digest)) for uid, row, digest in rows}


def _columns(catalog, uid):
    table = catalog.node(("bmm", "raw", uid, "primary", "data"))
    return table.read_arrays()


def test_page_stores_the_rows_single_events_store(catalog, catalog_uri, tmp_path, scan, copies):
    """One page of N events and the same N events one by one (into a second catalog, always
    by INSERT) give the same event keys, row numbers and columns."""
    from bluebroker.catalog import open_catalog

    head, evs, stop = scan
    uid = head[0][1]["uid"]
    writer = CatalogWriter(catalog, "bmm/raw")
    writer.write_many([*head, ("event_page", pack_event_page(*evs)), ("stop", stop)])
    assert copies == ([N] if catalog.engine.dialect.name == "postgresql" else [])

    single = open_catalog(f"sqlite:///{tmp_path}/single.db", create=True)
    try:
        one_by_one = CatalogWriter(single, "bmm/raw")
        one_by_one.write_many([*head, *(("event", e) for e in evs), ("stop", stop)])
        assert _keys(catalog) == _keys(single)
        assert sorted(_keys(catalog)) == sorted(e["uid"] for e in evs)
        paged, singles = _columns(catalog, uid), _columns(single, uid)
        assert set(paged) == set(singles)
        for name in paged:
            np.testing.assert_array_equal(paged[name], singles[name])
        np.testing.assert_array_equal(paged["seq_num"], np.arange(1, N + 1))
    finally:
        single.close()


def test_replayed_page_is_skipped(writer, catalog, scan):
    head, evs, stop = scan
    docs = [*head, ("event_page", pack_event_page(*evs)), ("stop", stop)]
    writer.write_many(docs)
    before = _keys(catalog)
    again = writer.write_many(docs)
    assert again.written == 0 and again.duplicates == len(docs)
    assert _keys(catalog) == before


def test_refused_copy_leaves_nothing_of_the_page(catalog, scan, monkeypatch):
    """Another writer stored one of the page's events between the check and the COPY (made
    here by hiding stored events from the check): the database refuses the key, and the
    page's columns, keys and row count are rolled back with it."""
    head, evs, _stop = scan
    writer = CatalogWriter(catalog, "bmm/raw")
    writer.write_many([*head, ("event", evs[0])])
    monkeypatch.setattr(WriteSession, "event_digests", lambda self, uids: {})
    fresh = CatalogWriter(catalog, "bmm/raw")  # knows nothing of the stream's state
    with pytest.raises(Exception) as refused:
        fresh.write_many([("event_page", pack_event_page(*evs))])
    assert "uid" in str(refused.value) or "duplicate" in str(refused.value).lower()
    assert list(_keys(catalog)) == [evs[0]["uid"]]
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.select(streams.c.num_rows)).scalar_one() == 1
    np.testing.assert_array_equal(_columns(catalog, head[0][1]["uid"])["seq_num"], [1])
