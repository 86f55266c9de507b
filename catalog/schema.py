"""The SQL schema, one definition for SQLite and PostgreSQL, and its versioned upgrades.

Runs are rows with their start/stop documents as JSON (jsonb on PostgreSQL) so that metadata
queries run in SQL. Event data is stored column-wise in chunks (one blob per column per
appended batch, merged as the stream grows) so reading a table never parses rows one by one.
Every raw document is kept in ``documents`` in arrival order for exact replay. Every change a
subscriber can watch (run created, stream created, rows appended, run stopped) is a row of
``changes``, numbered per node by a counter on the node's own row (see catalog/changes.py).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .errors import SchemaVersionError

SCHEMA_VERSION = 2

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
Uid = sa.String(128)

metadata = sa.MetaData()

meta = sa.Table(
    "bluebroker_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

catalogs = sa.Table(
    "catalogs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(512), nullable=False, unique=True),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    # Kept by the writer in the run's transaction, so len() of a large catalog is one lookup.
    sa.Column("num_runs", sa.BigInteger, nullable=False, default=0),
    # The sequence number of the last change recorded for this node (schema version 2).
    sa.Column("last_change", sa.BigInteger, nullable=False, default=0, server_default="0"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("catalog_id", sa.Integer, sa.ForeignKey("catalogs.id"), nullable=False),
    sa.Column("uid", Uid, nullable=False, unique=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("scan_id", sa.BigInteger),
    sa.Column("start", JSONType, nullable=False),
    sa.Column("stop", JSONType),
    sa.Column("summary", JSONType, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("start_digest", sa.LargeBinary(16), nullable=False),
    sa.Column("stop_digest", sa.LargeBinary(16)),
    sa.Column("last_change", sa.BigInteger, nullable=False, default=0, server_default="0"),
    sa.Index("ix_runs_catalog_time", "catalog_id", "time"),
    sa.Index("ix_runs_catalog_scan_id", "catalog_id", "scan_id", "time"),
)

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    # Rows written by events, and rows covered by stream_datum seq_nums (external-only streams
    # have no events); the stream's length is the larger of the two.
    sa.Column("num_rows", sa.BigInteger, nullable=False, default=0),
    sa.Column("stream_rows", sa.BigInteger, nullable=False, default=0),
    sa.Column("last_change", sa.BigInteger, nullable=False, default=0, server_default="0"),
    sa.UniqueConstraint("run_id", "name", name="uq_streams_run_name"),
)

descriptors = sa.Table(
    "descriptors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", Uid, nullable=False, unique=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("stream_id", sa.Integer, sa.ForeignKey("streams.id"), nullable=False, index=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("doc", JSONType, nullable=False),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("uid", Uid, primary_key=True),
    sa.Column("stream_id", sa.Integer, sa.ForeignKey("streams.id"), nullable=False),
    sa.Column("row", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("stream_id", sa.Integer, sa.ForeignKey("streams.id"), nullable=False),
    sa.Column("column", sa.String(512), nullable=False),
    sa.Column("start_row", sa.BigInteger, nullable=False),
    sa.Column("stop_row", sa.BigInteger, nullable=False),
    sa.Column("tier", sa.Integer, nullable=False),
    sa.Column("dtype", sa.String(64), nullable=False),
    sa.Column("shape", JSONType, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_chunks_column_rows", "stream_id", "column", "start_row"),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("uid", Uid, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("doc", JSONType, nullable=False),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
)

datums = sa.Table(
    "datums",
    metadata,
    sa.Column("datum_id", sa.String(256), primary_key=True),
    sa.Column("resource", Uid, sa.ForeignKey("resources.uid"), nullable=False, index=True),
    sa.Column("kwargs", JSONType, nullable=False),
)

stream_resources = sa.Table(
    "stream_resources",
    metadata,
    sa.Column("uid", Uid, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("data_key", sa.String(512), nullable=False),
    sa.Column("doc", JSONType, nullable=False),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
)

stream_datums = sa.Table(
    "stream_datums",
    metadata,
    sa.Column("uid", Uid, primary_key=True),
    sa.Column("stream_resource", Uid, sa.ForeignKey("stream_resources.uid"), nullable=False),
    sa.Column("stream_id", sa.Integer, sa.ForeignKey("streams.id"), nullable=False),
    sa.Column("data_key", sa.String(512), nullable=False),
    sa.Column("seq_start", sa.BigInteger, nullable=False),
    sa.Column("seq_stop", sa.BigInteger, nullable=False),
    sa.Column("index_start", sa.BigInteger, nullable=False),
    sa.Column("index_stop", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
    sa.Index("ix_stream_datums_key", "stream_id", "data_key", "seq_start"),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_documents_run", "run_id", "id"),
)


changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    # The node that changed: 'catalog' (catalogs.id), 'run' (runs.id) or 'stream' (streams.id).
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("node_id", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("body", JSONType, nullable=False),
    sa.UniqueConstraint("scope", "node_id", "seq", name="uq_changes_node_seq"),
)


def _create_current(conn: sa.Connection) -> None:
    """A new database gets the current schema in one step."""
    metadata.create_all(conn)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS runs_fts USING fts5(text)")
    else:
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_runs_text ON runs "
            "USING gin (to_tsvector('simple', text))"
        )


def _v2_changes(conn: sa.Connection) -> None:
    """Version 2: the change log behind live updates, and each node's change counter."""
    inspector = sa.inspect(conn)
    for table in (catalogs, runs, streams):
        if "last_change" not in {c["name"] for c in inspector.get_columns(table.name)}:
            conn.exec_driver_sql(
                f"ALTER TABLE {table.name} ADD COLUMN last_change BIGINT NOT NULL DEFAULT 0"
            )
    changes.create(conn, checkfirst=True)


# Each step upgrades from version N-1 to N; the key is N. A new schema version adds a step.
# A new database skips them: it is created at the current version.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {2: _v2_changes}


def current_version(conn: sa.Connection) -> int | None:
    """The schema version stored in the database, or None for an empty database."""
    if not sa.inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else None


def upgrade(conn: sa.Connection, target: int = SCHEMA_VERSION) -> tuple[int | None, int]:
    """Bring the schema to ``target``; returns (version before, version after)."""
    before = current_version(conn)
    if before is not None and before > target:
        raise SchemaVersionError(
            f"the catalog has schema version {before}, newer than this bluebroker ({target}); "
            "upgrade bluebroker"
        )
    if before is None:
        _create_current(conn)
        conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        return before, SCHEMA_VERSION
    for version in range(before + 1, target + 1):
        MIGRATIONS[version](conn)
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(version))
        )
    return before, target


def check_version(conn: sa.Connection, uri: str) -> None:
    """Refuse to work on a schema this code does not match, saying which command fixes it."""
    version = current_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version is None:
        raise SchemaVersionError(
            f"{uri} has no bluebroker catalog; run: bluebroker catalog init {uri}"
        )
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{uri} has schema version {version}, this bluebroker needs {SCHEMA_VERSION}; "
            f"run: bluebroker catalog upgrade {uri}"
        )
    raise SchemaVersionError(
        f"{uri} has schema version {version}, newer than this bluebroker ({SCHEMA_VERSION}); "
        "upgrade bluebroker"
    )
