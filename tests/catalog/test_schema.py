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
    assert "schema version none -> 1" in capsys.readouterr().out
    assert main(["catalog", "init", postgresql_uri]) == 0
    assert "already initialized" in capsys.readouterr().out
    open_catalog(postgresql_uri).create_catalog("bmm/raw")
    assert main(["catalog", "info", postgresql_uri]) == 0
    assert "/bmm/raw: 0 runs" in capsys.readouterr().out


def test_upgrade_path(catalog_uri, monkeypatch, capsys):
    open_catalog(catalog_uri, create=True).create_catalog("bmm/raw")
    ran = []

    def add_a_column(conn):
        conn.execute(sa.text("ALTER TABLE catalogs ADD COLUMN note TEXT"))
        ran.append(2)

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(schema_module.MIGRATIONS, 2, add_a_column)
    monkeypatch.setattr(schema_module.upgrade, "__defaults__", (2,))
    with pytest.raises(SchemaVersionError, match="bluebroker catalog upgrade"):
        open_catalog(catalog_uri)
    assert main(["catalog", "upgrade", catalog_uri]) == 0
    assert "schema version 1 -> 2" in capsys.readouterr().out
    assert ran == [2]
    assert list(open_catalog(catalog_uri)["bmm"]) == ["raw"]  # data kept


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
