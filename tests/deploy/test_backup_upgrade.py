"""Backups and schema upgrades as the operator guide tells them (issue 20): catalogs written by
the previous schema version's own code (tests/deploy/data, made by write_v1.py) upgraded with
``bluebroker catalog upgrade``; a SQLite catalog backed up while it is written; a PostgreSQL
catalog dumped and restored with pg_dump and pg_restore."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from bluebroker.catalog import open_catalog
from bluebroker.catalog.errors import SchemaVersionError
from bluebroker.catalog.schema import SCHEMA_VERSION
from bluebroker.ingest import CatalogWriter
from tests.conftest import PG_URI
from tests.ingest.kafka_workers import compose
from tests.processes import run

DATA = Path(__file__).parent / "data"
V1_RUNS = {"v1-run-1": (1, 5), "v1-run-2": (2, 3)}  # as write_v1.py wrote them
PG = sa.make_url(PG_URI)
PG_ARGS = ["-h", PG.host or "127.0.0.1", "-p", str(PG.port or 5432), "-U", PG.username]


def ok(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_upgraded(uri: str) -> None:
    """The version-1 runs read as they were written, and new writes log their changes."""
    with pytest.raises(SchemaVersionError, match="bluebroker catalog upgrade"):
        open_catalog(uri)  # a server or worker refuses the old schema, naming the fix
    info = run("catalog", "info", uri)  # says what to run
    assert info.returncode == 2 and "has schema version 1" in info.stderr
    assert f"run: bluebroker catalog upgrade {uri}" in info.stderr
    assert f"schema version 1 -> {SCHEMA_VERSION}" in ok("catalog", "upgrade", uri)
    assert "bmm/raw: 2 runs" in ok("catalog", "info", uri)
    catalog = open_catalog(uri)
    try:
        runs = catalog["bmm/raw"]
        for uid, (scan_id, events) in V1_RUNS.items():
            table = runs[uid]["primary"]["data"].read()
            np.testing.assert_array_equal(table["x"], np.arange(events) * float(scan_id))
            assert runs[uid].metadata["start"]["sample"] == f"s{scan_id}"
            assert runs[uid].metadata["stop"]["exit_status"] == "success"
        docs = compose(4)
        CatalogWriter(catalog, "bmm/raw").write_many(docs)
        assert len(catalog["bmm/raw"]) == 3
        with catalog.engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM changes")).scalars().all()
        assert "run-created" in kinds and "rows-appended" in kinds
    finally:
        catalog.close()


def test_a_sqlite_catalog_of_the_previous_version_upgrades(tmp_path):
    path = tmp_path / "catalog.db"
    shutil.copy(DATA / "catalog-v1.db", path)
    check_upgraded(f"sqlite:///{path}")


def _psql(database: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", *PG_ARGS, "-v", "ON_ERROR_STOP=1", "-q", "-d", database, *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def new_databases(postgresql_available):
    """Names for new PostgreSQL databases (made by the test), dropped afterwards."""
    if not postgresql_available or shutil.which("pg_dump") is None:
        pytest.skip("needs PostgreSQL and its client tools")
    made: list[str] = []

    def name() -> str:
        made.append(f"bb_{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield name
    for database in made:
        _psql(PG.database, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _uri(database: str) -> str:
    return PG.set(database=database).render_as_string(hide_password=False)


@pytest.mark.postgresql
def test_a_postgresql_catalog_of_the_previous_version_restores_and_upgrades(new_databases):
    old = new_databases()
    assert _psql(PG.database, "-c", f"CREATE DATABASE {old}").returncode == 0
    restored = _psql(old, "-f", str(DATA / "catalog-v1.sql"))
    assert restored.returncode == 0, restored.stderr
    check_upgraded(_uri(old))


@pytest.mark.postgresql
def test_pg_dump_and_pg_restore_as_the_guide_says(new_databases, tmp_path):
    """The guide's commands: pg_dump --format=custom, then pg_restore into a new database."""
    source, copy = new_databases(), new_databases()
    _psql(PG.database, "-c", f"CREATE DATABASE {source}")
    catalog = open_catalog(_uri(source), create=True)
    docs = compose(7)
    CatalogWriter(catalog, "bmm/raw").write_many(docs)
    catalog.close()
    dump = tmp_path / "catalog.dump"
    try:
        done = subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", _uri(source)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        _psql(PG.database, "-c", f"CREATE DATABASE {copy}")
        done = subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={_uri(copy)}", str(dump)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
    finally:
        dump.unlink(missing_ok=True)
    assert "bmm/raw: 1 runs" in ok("catalog", "info", _uri(copy))
    restored = open_catalog(_uri(copy))
    try:
        uid = docs[0][1]["uid"]
        assert len(restored["bmm/raw"][uid]["primary"]["data"].read()) == 7
    finally:
        restored.close()


def test_sqlite_online_backup_while_runs_are_written(tmp_path):
    uri = f"sqlite:///{tmp_path}/catalog.db"
    catalog = open_catalog(uri, create=True)
    writer = CatalogWriter(catalog, "bmm/raw")
    writer.write_many(compose(5))
    stop = threading.Event()
    written = [1]

    def keep_writing() -> None:
        while not stop.is_set():
            writer.write_many(compose(20))
            written.append(1)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while len(written) < 3:  # the writer is going
            stop.wait(0.01)
        backups = [tmp_path / f"backup-{i}.db" for i in range(3)]
        for backup in backups:
            assert "copied to" in ok("catalog", "backup", uri, str(backup))
    finally:
        stop.set()
        thread.join(60)
    catalog.close()
    counts = []
    for backup in backups:
        assert not Path(f"{backup}-wal").exists()  # one self-contained file
        copy = open_catalog(f"sqlite:///{backup}")
        try:
            runs = copy["bmm/raw"]
            counts.append(len(runs))
            for uid in runs:  # every run in a backup whole: a transaction is all or nothing
                rows = len(runs[uid]["primary"]["data"].read())
                assert rows in (5, 20), (uid, rows)
        finally:
            copy.close()
    assert counts == sorted(counts) and counts[0] >= 3 and counts[-1] <= len(written)


def test_backup_mistakes_are_one_line(tmp_path, postgresql_uri):
    uri = f"sqlite:///{tmp_path}/catalog.db"
    open_catalog(uri, create=True).close()
    (tmp_path / "taken.db").write_text("")
    for args, words in (
        ([uri, str(tmp_path / "taken.db")], "exists; give a new file name"),
        ([uri], "catalog backup takes URI FILE"),
        ([f"sqlite:///{tmp_path}/none.db", str(tmp_path / "b.db")], "no catalog at"),
        ([postgresql_uri, str(tmp_path / "b.db")], "pg_dump --format=custom"),
    ):
        done = run("catalog", "backup", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: ") and words in done.stderr, done.stderr
    assert (tmp_path / "taken.db").read_text() == ""
