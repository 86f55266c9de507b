"""Versioned schema: init, upgrade, and clear errors when code and database disagree."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bluebroker.catalog import CatalogError, SchemaVersionError, open_catalog
from bluebroker.catalog import schema as schema_module
from bluebroker.cli import main


def test_new_sqlite_file_is_ready_to_use(tmp_path):
    cat = open_catalog(f"sqlite:///{tmp_path}/sub/dir/catalog.db")
    assert list(cat) == []
    cat.create_catalog("csx/raw")
    assert list(cat) == ["csx"] and list(cat["csx"]) == ["raw"]


def test_postgresql_needs_init(postgresql_uri, capsys):
    with pytest.raises(SchemaVersionError, match="bluebroker catalog init"):
        open_catalog(postgresql_uri)
    assert main(["catalog", "init", postgresql_uri]) == 0
    assert f"schema version none -> {schema_module.SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["catalog", "init", postgresql_uri]) == 0
    assert "already initialized" in capsys.readouterr().out
    open_catalog(postgresql_uri).create_catalog("bmm/raw")
    assert main(["catalog", "info", postgresql_uri]) == 0
    assert "/bmm/raw: 0 runs" in capsys.readouterr().out


def test_upgrade_path(catalog_uri, monkeypatch, capsys):
    open_catalog(catalog_uri, create=True).create_catalog("bmm/raw")
    now = schema_module.SCHEMA_VERSION
    ran = []

    def add_a_column(conn):
        conn.execute(sa.text("ALTER TABLE catalogs ADD COLUMN note TEXT"))
        ran.append(now + 1)

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(schema_module.MIGRATIONS, now + 1, add_a_column)
    monkeypatch.setattr(schema_module.upgrade, "__defaults__", (now + 1,))
    with pytest.raises(SchemaVersionError, match="bluebroker catalog upgrade"):
        open_catalog(catalog_uri)
    assert main(["catalog", "upgrade", catalog_uri]) == 0
    assert f"schema version {now} -> {now + 1}" in capsys.readouterr().out
    assert ran == [now + 1]
    assert list(open_catalog(catalog_uri)["bmm"]) == ["raw"]  # data kept


def test_version_1_catalog_upgrades_to_the_change_log(catalog_uri, RE, capsys):
    """A catalog written before live updates existed gains the change log on upgrade and
    keeps its runs; new writes are then recorded as changes."""
    from bluebroker.catalog.schema import changes
    from bluebroker.ingest import CatalogWriter

    cat = open_catalog(catalog_uri, create=True)
    writer = CatalogWriter(cat, "bmm/raw")
    from bluesky.plans import count
    from ophyd.sim import det

    (old,) = RE(count([det], 2), writer)
    with cat.engine.begin() as conn:  # back to what version 1 had
        conn.execute(sa.text("DROP TABLE changes"))
        for table in ("catalogs", "runs", "streams"):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN last_change"))
        conn.execute(sa.text("UPDATE bluebroker_meta SET value = '1' WHERE key = 'schema_version'"))
    cat.close()
    with pytest.raises(SchemaVersionError, match="bluebroker catalog upgrade"):
        open_catalog(catalog_uri)
    assert main(["catalog", "upgrade", catalog_uri]) == 0
    assert "schema version 1 -> 2" in capsys.readouterr().out
    cat = open_catalog(catalog_uri)
    assert len(cat["bmm/raw"][old]["primary"]["data"]) == 2
    RE(count([det], 3), CatalogWriter(cat, "bmm/raw"))
    with cat.engine.connect() as conn:
        kinds = conn.execute(
            sa.select(changes.c.scope, changes.c.kind).order_by(changes.c.id)
        ).all()
    assert [tuple(k) for k in kinds] == [
        ("catalog", "run-created"),
        ("run", "stream-created"),
        ("stream", "rows-appended"),
        ("stream", "rows-appended"),
        ("stream", "rows-appended"),
        ("catalog", "run-stopped"),
        ("run", "run-stopped"),
        ("stream", "run-stopped"),
    ]


def test_newer_database_than_code(catalog_uri, monkeypatch):
    open_catalog(catalog_uri, create=True)
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", 0)
    with pytest.raises(SchemaVersionError, match="upgrade bluebroker"):
        open_catalog(catalog_uri)


def test_bad_uri_and_bad_path(tmp_path, capsys):
    with pytest.raises(CatalogError, match="sqlite:///"):
        open_catalog("mongodb://somewhere/db")
    assert main(["catalog", "info", "mongodb://somewhere/db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unsupported catalog URI") and err.count("\n") == 1
    cat = open_catalog(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(CatalogError, match="invalid catalog path"):
        cat.create_catalog("bmm//../raw")
