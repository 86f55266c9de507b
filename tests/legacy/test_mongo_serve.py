"""A legacy MongoDB database served in place (``serve --mount csx=mongodb://...``): real
RunEngine runs written by suitcase-mongo into the mongo_normalized layout on a real
MongoDB-protocol server, read back through the catalog's nodes, over HTTP with our client,
through the databroker facade, and searched, without any migration."""

from __future__ import annotations

import numpy as np
import pytest

from .compare_legacy import assert_migrated


def spec(db, **options) -> str:
    """The mount spec of a legacy database pair: metadatastore URI, assets= its database."""
    base, _, query = db.mds_uri.partition("?")
    parts = [query] if query else []
    parts += [f"assets={db.assets.name}", *(f"{k}={v}" for k, v in options.items())]
    return base + "?" + "&".join(parts)


@pytest.fixture
def mounted(legacy_runs, tmp_path):
    """A SQLite catalog with the legacy database mounted at /csx (files under tmp_path)."""
    from bluebroker.catalog import open_catalog
    from bluebroker.catalog.mongo import mount_mongo

    cat = open_catalog(f"sqlite:///{tmp_path}/catalog.db", data_roots=[tmp_path])
    source = mount_mongo(cat, "csx", spec(legacy_runs["db"]))
    yield cat
    source.close()
    cat.close()


def _uid(docs) -> str:
    return next(d["uid"] for n, d in docs if n == "start")


def test_every_run_reads_as_emitted_through_the_nodes(legacy_runs, mounted):
    runs = mounted["csx"]
    assert len(runs) == 4
    assert list(runs) == [_uid(docs) for docs in legacy_runs["runs"]]  # oldest first
    for docs in legacy_runs["runs"]:
        assert_migrated(runs[_uid(docs)], docs)
    frames = legacy_runs["frames"]
    fe = runs[_uid(legacy_runs["runs"][1])]
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"].read(), frames[:4])
    np.testing.assert_array_equal(fe["primary"]["data"]["cam"][1:3], frames[1:3])
    old = runs[_uid(legacy_runs["runs"][3])]
    assert list(old) == ["primary"] and old.metadata["stop"] is None
    assert old.metadata["start"]["acquired"] == "2017-03-04T05:06:07.890000"
    np.testing.assert_array_equal(old["primary"]["data"]["cam"].read(), frames[4:])
