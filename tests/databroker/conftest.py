"""A live bluebroker server (SQLite catalog, real uvicorn) and a legacy ``Broker`` on it,
filled by a real RunEngine through ``RE.subscribe(db.insert)``."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture
def server(tmp_path):
    from bluebroker.catalog import open_catalog
    from bluebroker.server.run import background_server

    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    with background_server(catalog) as url:
        yield url
    catalog.close()


@pytest.fixture
def db(server):
    from databroker import Broker

    return Broker.from_config({"uri": server, "catalog": "csx/raw"}, name="csx")


@pytest.fixture
def RE_db(RE, db, recorder):
    """The RunEngine writing into ``db`` (and recording what it emitted)."""
    RE.subscribe(recorder)
    RE.subscribe(db.insert)
    return RE


@pytest.fixture(autouse=True)
def _quiet_insert_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        yield
