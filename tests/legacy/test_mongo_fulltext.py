"""Full-text search of a legacy MongoDB database served in place: ``$text`` where
``run_start`` has a text index, else the start and stop documents read and worded as the SQL
catalog words them, so that the same runs answer the same search in both places."""

from __future__ import annotations

import os

import pytest

from .mongo_server import ENV
from .test_mongo_ingest import _migrate
from .test_mongo_serve import _uid, spec

# Words of the fixture's runs: a start value (any case), a list element (detectors), a
# plan argument deep in the start document, the stop document, scan ids (numbers), parts of
# a datetime the old run holds, several words at once, and words no run holds.
SEARCHES = [
    "Cu",
    "cu",
    "FE",
    "count",
    "det1",
    "wave",
    "success",
    "motor1",
    "1",
    "2017",
    "count old",
    "Fe count det1",
    "scan Fe",
    "nothing_like_this",
    "Cu!",
]


@pytest.fixture
def mongo_runs(legacy_runs, tmp_path):
    """The legacy database mounted at /csx of a SQLite catalog (its file under tmp_path)."""
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo

    cat = open_catalog(f"sqlite:///{tmp_path}/mounted.db", data_roots=[tmp_path])
    source = mount_mongo(cat, "csx", spec(legacy_runs["db"]))
    yield cat["csx"]
    source.close()
    cat.close()


def test_without_a_text_index_the_same_runs_as_the_sql_catalog(legacy_runs, mongo_runs, catalog):
    """The test server has no text index: each search reads the documents, and finds what the
    SQL catalog (SQLite FTS5 and PostgreSQL tsvector) finds among the same runs migrated."""
    from bluebroker.queries import FullText, Key

    assert not mongo_runs.source.has_text_index()
    report = _migrate(legacy_runs["db"], catalog)
    assert report.runs_migrated == 4 and not report.failures
    migrated = catalog["csx/raw"]
    uids = [_uid(docs) for docs in legacy_runs["runs"]]
    for text in SEARCHES:
        found = list(mongo_runs.search(FullText(text)))
        assert sorted(found) == sorted(migrated.search(FullText(text))), text
    assert list(mongo_runs.search(FullText("cu"))) == [uids[0]]
    assert list(mongo_runs.search(FullText("success"))) == uids[:3]  # stop documents
    assert list(mongo_runs.search(FullText("count old"))) == [uids[3]]
    assert list(mongo_runs.search(FullText("nothing_like_this"))) == []
    narrowed = mongo_runs.search(FullText("count")).search(Key("sample") == "Si")
    assert list(narrowed) == [uids[2]] and len(narrowed) == 1


def test_without_a_text_index_over_http(legacy_runs, tmp_path):
    """The HTTP search answers a full-text filter of a Mongo mount (no more 400)."""
    import httpx

    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo
    from bluebroker.client import from_uri
    from bluebroker.queries import FullText
    from bluebroker.server.run import background_server
    from tests.conftest import TEST_KEY

    uids = [_uid(docs) for docs in legacy_runs["runs"]]
    cat = open_catalog(f"sqlite:///{tmp_path}/served.db", data_roots=[tmp_path])
    source = mount_mongo(cat, "csx", spec(legacy_runs["db"]))
    try:
        with background_server(cat) as url:
            runs = from_uri(url, api_key=TEST_KEY)["csx"]
            assert list(runs.search(FullText("Fe"))) == [uids[1]]
            answer = httpx.get(
                f"{url}/api/v1/search/csx",
                params={"filter[fulltext][condition][text]": '"Si"'},
                headers={"Authorization": f"Apikey {TEST_KEY}"},
            )
            assert answer.status_code == 200, answer.text
            assert [d["id"] for d in answer.json()["data"]] == [uids[2]]
            empty = httpx.get(
                f"{url}/api/v1/search/csx",
                params={"filter[fulltext][condition][text]": '"..."'},
                headers={"Authorization": f"Apikey {TEST_KEY}"},
            )
            assert empty.status_code == 400 and "at least one word" in empty.text
    finally:
        source.close()
        cat.close()


@pytest.mark.skipif(not os.environ.get(ENV), reason=f"needs a real MongoDB ({ENV})")
def test_with_a_text_index_mongo_searches_it(legacy_runs, tmp_path, monkeypatch):
    """On a real mongod, with the text index Databroker's setup makes (created here in the
    test's own database), the search is MongoDB's ``$text`` and the documents are not read."""
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo
    from bluebroker.catalog.mongo.runs import MongoRunCatalog
    from bluebroker.queries import FullText

    legacy_runs["db"].mds["run_start"].create_index([("$**", "text")])
    uids = [_uid(docs) for docs in legacy_runs["runs"]]

    def unread(self, words):
        raise AssertionError("read the documents although run_start has a text index")

    monkeypatch.setattr(MongoRunCatalog, "_text_uids", unread)
    cat = open_catalog(f"sqlite:///{tmp_path}/indexed.db", data_roots=[tmp_path])
    source = mount_mongo(cat, "csx", spec(legacy_runs["db"]))
    try:
        runs = cat["csx"]
        assert source.has_text_index()
        found = runs.search(FullText("Cu"))
        assert "$text" in str(found.filter)
        assert list(found) == [uids[0]]
        assert list(runs.search(FullText("nothing_like_this"))) == []
    finally:
        source.close()
        cat.close()
