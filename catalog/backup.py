"""An online backup of a SQLite catalog (``bluebroker catalog backup``).

Copying the file of a catalog in use can catch a transaction half written (and misses what
sits in the write-ahead log); SQLite's backup API copies a consistent snapshot while servers
and ingest workers go on reading and writing. PostgreSQL catalogs are backed up with
PostgreSQL's own tools (pg_dump, or the server's base backups), as the operator guide shows.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import CatalogError


def backup_sqlite(source: Path, destination: Path) -> Path:
    """Copy the SQLite catalog ``source`` to the new file ``destination``, consistently, while
    others use it. Written beside the destination first and renamed into place, so a backup
    cut short never looks finished; an existing file is never overwritten."""
    if destination.exists():
        raise CatalogError(
            f"{destination} exists; give a new file name (a backup never overwrites one)"
        )
    if not destination.parent.is_dir():
        raise CatalogError(f"{destination.parent} is not an existing folder")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source)  # only read; read-only mode cannot open an idle WAL file
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: a snapshot under a read lock (in WAL mode, no writer waits)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if problem != "ok":
        partial.unlink(missing_ok=True)
        raise CatalogError(f"the copy of {source} failed SQLite's check ({problem}); try again")
    os.replace(partial, destination)
    return destination
