"""The index of served directories, kept in the catalog database beside the runs.

One row per node a file yields (the file itself, and the groups and datasets inside an HDF5
file), so a listing, a node's structure and a search never open a file. Rows of one *unit*
(a file, or a numbered TIFF sequence) are replaced together when the unit's signature (size,
modification time, member count) changes; a restart reads only units whose signature moved.

The tables are versioned on their own (``directory_index_version`` in ``bluebroker_meta``)
rather than in the catalog's schema version: a catalog that never serves a directory needs
no upgrade for them, and the catalog package does not import this one (imports point from
``bluebroker.directory`` to ``bluebroker.catalog``, never back).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from bluebroker.catalog import changes
from bluebroker.catalog.schema import JSONType
from bluebroker.catalog.schema import meta as catalog_meta

INDEX_VERSION = 1
VERSION_KEY = "directory_index_version"
MAX_PATH = 1000  # characters of a path inside the served directory (PostgreSQL btree rows)

metadata = sa.MetaData()

sources = sa.Table(
    "directory_sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # The served folder's real path: the same folder served again finds its index.
    sa.Column("root", sa.String(MAX_PATH * 4), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("registered", sa.Float),
    # The sequence number of the folder's last change, for live subscribers (changes.py).
    sa.Column("last_change", sa.BigInteger, nullable=False, default=0, server_default="0"),
)
# Live updates of a served folder count in the catalog's change log under this scope.
SCOPE = "folder"
changes.SCOPES.setdefault(SCOPE, sources)

nodes = sa.Table(
    "directory_nodes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("directory_sources.id"), nullable=False),
    # '/'-separated from the served folder: 'scans/a.h5/entry/data'
    sa.Column("path", sa.String(MAX_PATH), nullable=False),
    sa.Column("parent", sa.String(MAX_PATH), nullable=False),
    sa.Column("name", sa.String(MAX_PATH), nullable=False),
    # The file (or sequence) the row comes from; its rows are replaced together.
    sa.Column("unit", sa.String(MAX_PATH), nullable=False),
    sa.Column("reader", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("family", sa.String(16), nullable=False),
    sa.Column("inner", sa.String(MAX_PATH), nullable=False, default=""),
    # The files a unit reads: one, or a TIFF sequence's members in order.
    sa.Column("files", JSONType, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("mtime", sa.Float, nullable=False, default=0.0),
    # Set on a unit's top row only: what registration compares to skip unchanged files.
    sa.Column("signature", sa.String(128)),
    sa.Column("structure", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("source_id", "path", name="uq_directory_nodes_path"),
    sa.Index("ix_directory_nodes_parent", "source_id", "parent", "name"),
    sa.Index("ix_directory_nodes_unit", "source_id", "unit"),
)


# SQLite's full-text index of node text (rowid = directory_nodes.id); PostgreSQL indexes
# the text column itself.
fts = sa.table("directory_fts", sa.column("rowid"), sa.column("text"))


def ensure_tables(engine: sa.Engine) -> None:
    """Create the index tables (and their full-text index) where they are missing."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table(nodes.name):
            metadata.create_all(conn)
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS directory_fts USING fts5(text)"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE INDEX IF NOT EXISTS ix_directory_nodes_text ON directory_nodes "
                    "USING gin (to_tsvector('simple', text))"
                )
        found = conn.execute(
            sa.select(catalog_meta.c.value).where(catalog_meta.c.key == VERSION_KEY)
        ).scalar()
        if found is None:
            conn.execute(sa.insert(catalog_meta).values(key=VERSION_KEY, value=str(INDEX_VERSION)))
        elif int(found) > INDEX_VERSION:
            raise RuntimeError(
                f"this catalog's directory index has version {found}, newer than this "
                f"bluebroker ({INDEX_VERSION}); upgrade bluebroker"
            )


def source_id(engine: sa.Engine, root: str) -> int:
    """The id of the served folder ``root`` (a real path), made on first use."""
    with engine.begin() as conn:
        found = conn.execute(sa.select(sources.c.id).where(sources.c.root == root)).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                sa.insert(sources).values(root=root, created=time.time()).returning(sources.c.id)
            ).scalar_one()
        )


def delete_units(conn: sa.Connection, source: int, units: list[str]) -> None:
    """Remove every row of ``units`` (and their full-text entries)."""
    for i in range(0, len(units), 500):
        batch = units[i : i + 500]
        where = sa.and_(nodes.c.source_id == source, nodes.c.unit.in_(batch))
        if conn.dialect.name == "sqlite":
            ids = sa.select(nodes.c.id).where(where).scalar_subquery()
            conn.execute(sa.delete(fts).where(fts.c.rowid.in_(ids)))
        conn.execute(sa.delete(nodes).where(where))


def insert_rows(conn: sa.Connection, source: int, rows: list[dict]) -> None:
    """Insert node rows in one statement, then (SQLite) their full-text entries in another."""
    if not rows:
        return
    conn.execute(sa.insert(nodes), rows)
    if conn.dialect.name == "sqlite":
        units = sorted({row["unit"] for row in rows})
        for i in range(0, len(units), 500):
            batch = sa.select(nodes.c.id, nodes.c.text).where(
                nodes.c.source_id == source,
                nodes.c.unit.in_(units[i : i + 500]),
                nodes.c.text != "",
            )
            conn.execute(sa.insert(fts).from_select(["rowid", "text"], batch))


def signatures(conn: sa.Connection, source: int) -> dict[str, str]:
    """Every unit's signature as last registered."""
    stmt = sa.select(nodes.c.unit, nodes.c.signature).where(
        nodes.c.source_id == source, nodes.c.signature.is_not(None)
    )
    return dict(conn.execute(stmt).all())
