"""Configs users already have, naming a MongoDB database, opened through the ``databroker``
facade: Databroker 1.x's catalog form (``driver: bluesky-mongo-normalized-catalog``), the
older v0 form, an intake catalog file found as ``databroker.catalog`` found it, and the same
with a ``uri:`` line reading a bluebroker server that the database was migrated into."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from .mongo_server import with_database


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user's home with nothing configured; the facade's MongoDB cache in it."""
    home = tmp_path / "home"
    (home / ".config" / "databroker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("BLUEBROKER_MONGO_CACHE", str(home / "cache"))
    monkeypatch.delenv("INTAKE_PATH", raising=False)
    return home


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _check_broker(db, legacy_runs):
    """Every run reads back through the v1 API as the RunEngine emitted it."""
    runs = legacy_runs["runs"]
    assert len(list(db())) == len(runs)
    scan = runs[0]
    h = db[scan[0][1]["uid"]]
    primary = next(d["uid"] for n, d in scan if n == "descriptor" and d["name"] == "primary")
    events = [d for n, d in scan if n == "event" and d["descriptor"] == primary]
    assert h.start["sample"] == "Cu"
    assert list(h.table()["det1"]) == [e["data"]["det1"] for e in events]
    cam = db[runs[1][0][1]["uid"]]
    frames = np.stack(list(cam.data("cam")))
    np.testing.assert_array_equal(frames, legacy_runs["frames"][:4])
    old = db[runs[3][0][1]["uid"]]
    assert not old.stop  # the run without a stop document
    np.testing.assert_array_equal(np.stack(list(old.data("cam"))), legacy_runs["frames"][4:])


def test_catalog_form_opens_with_broker_named_and_catalog(legacy_runs, home):
    import databroker

    db_ = legacy_runs["db"]
    _write(
        home / ".config" / "databroker" / "csx.yml",
        f"""
sources:
  csx:
    driver: bluesky-mongo-normalized-catalog
    args:
      metadatastore_db: {db_.mds_uri}
      asset_registry_db: {db_.assets_uri}
""",
    )
    db = databroker.Broker.named("csx")
    _check_broker(db, legacy_runs)
    run = databroker.catalog["csx"][legacy_runs["runs"][2][0][1]["uid"]]
    wave = [d["data"]["wave"] for n, d in legacy_runs["runs"][2] if n == "event"]
    np.testing.assert_array_equal(run.primary.read()["wave"].values, wave)
    assert "csx" in list(databroker.catalog)


def test_v0_form_with_host_port_database(legacy_runs, home, mongo_uri):
    import databroker

    db_ = legacy_runs["db"]
    host_port = mongo_uri.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    config = {
        "description": "CSX, as configured in 2017",
        "metadatastore": {
            "module": "databroker.headersource.mongo",
            "class": "MDS",
            "config": {
                "host": host,
                "port": int(port),
                "database": db_.mds.name,
                "timezone": "US/Eastern",
            },
        },
        "assets": {
            "module": "databroker.assets.mongo",
            "class": "Registry",
            "config": {"host": host, "port": int(port), "database": db_.assets.name},
        },
    }
    _write(home / ".config" / "databroker" / "csx.yml", yaml.safe_dump(config))
    db = databroker.Broker.named("csx")
    assert db.get_config()["timezone"] == "US/Eastern"
    _check_broker(db, legacy_runs)


def test_intake_catalog_file_is_found(legacy_runs, home, monkeypatch):
    import databroker

    db_ = legacy_runs["db"]
    folder = home / "intake-catalogs"
    _write(
        folder / "nsls2.yml",
        f"""
sources:
  chx:
    driver: bluesky-mongo-normalized-catalog
    args:
      metadatastore_db: {with_database(db_.mds_uri, "nothing")}
      asset_registry_db: {with_database(db_.mds_uri, "nothing")}
  csx:
    driver: bluesky-mongo-normalized-catalog
    args:
      metadatastore_db: {db_.mds_uri}
      asset_registry_db: {db_.assets_uri}
""",
    )
    monkeypatch.setenv("INTAKE_PATH", str(folder))
    assert {"chx", "csx"} <= set(databroker.catalog)
    _check_broker(databroker.Broker.named("csx"), legacy_runs)


def test_with_a_uri_line_the_migrated_server_is_read(legacy_runs, home, tmp_path):
    import databroker
    from bluebroker.catalog import open_catalog
    from bluebroker.server.run import background_server

    from .test_mongo_ingest import _migrate

    db_ = legacy_runs["db"]
    catalog = open_catalog(f"sqlite:///{tmp_path}/migrated.db", data_roots=[tmp_path])
    assert not _migrate(db_, catalog, path="csx/raw").failures
    with background_server(catalog) as url:
        _write(
            home / ".config" / "databroker" / "csx.yml",
            f"""
uri: {url}
sources:
  csx:
    driver: bluesky-mongo-normalized-catalog
    args:
      metadatastore_db: mongodb://127.0.0.1:1/unreachable
      asset_registry_db: mongodb://127.0.0.1:1/unreachable
""",
        )
        _check_broker(databroker.Broker.named("csx"), legacy_runs)
    catalog.close()


def test_a_config_missing_its_databases_says_so(home):
    import databroker

    _write(
        home / ".config" / "databroker" / "bad.yml",
        "sources:\n  bad:\n    driver: bluesky-mongo-normalized-catalog\n    args: {}\n",
    )
    with pytest.raises(ValueError, match="lacks metadatastore_db, asset_registry_db"):
        databroker.Broker.named("bad")


def test_an_unreachable_database_is_said_in_the_configs_words(home):
    import databroker

    _write(
        home / ".config" / "databroker" / "gone.yml",
        "sources:\n  gone:\n    driver: bluesky-mongo-normalized-catalog\n    args:\n"
        "      metadatastore_db: mongodb://127.0.0.1:1/mds?serverSelectionTimeoutMS=300\n"
        "      asset_registry_db: mongodb://127.0.0.1:1/assets?serverSelectionTimeoutMS=300\n",
    )
    with pytest.raises(
        ValueError, match="cannot reach the MongoDB server of the config's metadatastore_db"
    ):
        databroker.Broker.named("gone")


def test_the_local_catalog_is_kept_and_a_new_session_sees_new_runs(legacy_runs, home, RE):
    """Runs added to MongoDB after a session are seen by the next one (a new process), which
    opens the same kept catalog."""
    import os
    import subprocess
    import sys

    from bluesky import plans as bp
    from ophyd.sim import det1

    from .conftest import record_runs

    db_ = legacy_runs["db"]
    _write(
        home / ".config" / "databroker" / "csx.yml",
        f"sources:\n  csx:\n    driver: bluesky-mongo-normalized-catalog\n    args:\n"
        f"      metadatastore_db: {db_.mds_uri}\n      asset_registry_db: {db_.assets_uri}\n",
    )
    session = (
        "import databroker, json; db = databroker.Broker.named('csx');"
        "print(json.dumps([h.start['uid'] for h in db()]))"
    )

    def new_session() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", session],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ),
            check=True,
        )
        import json

        return json.loads(done.stdout.strip().splitlines()[-1])

    first = new_session()
    assert len(first) == 4
    (added,) = record_runs(RE, db_.serializer(), [bp.count([det1], num=3)])
    second = new_session()
    assert second[0] == added[0][1]["uid"] and second[1:] == first  # newest first
    cache = next((home / "cache").iterdir())
    assert (cache / "catalog.db").exists()
