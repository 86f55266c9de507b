"""Turn a catalog URI into a configured SQLAlchemy engine.

SQLite is the embedded default (one file, no server); PostgreSQL serves a facility. Both get
the settings that make concurrent readers and one writer cheap: WAL and a busy timeout on
SQLite, the psycopg 3 driver on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .errors import CatalogError

SQLITE_CACHED_STATEMENTS = 32


def jsonable(obj: Any) -> Any:
    """Make metadata JSON-safe: numpy to Python, NaN/inf to None (PostgreSQL's jsonb refuses
    them). The raw documents keep the exact values; this is only for the queryable copy."""
    if isinstance(obj, dict):
        return {str(k).replace("\x00", ""): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", "replace")
    if isinstance(obj, str) and "\x00" in obj:
        return obj.replace("\x00", "")  # PostgreSQL text and jsonb cannot hold NUL
    return obj


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys) so SQLite compares objects as PostgreSQL's jsonb does."""
    return json.dumps(jsonable(obj), separators=(",", ":"), sort_keys=True)


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2, whose matching time is linear in the text: Python's ``re``
    backtracks, and one ``^(a|a)*$`` held the interpreter lock, and so every request, for
    minutes. Syntax RE2 refuses (backreferences, lookaround) raises ``ValueError``."""
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        why = err.args[0] if err.args else ""
        text = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise ValueError(text) from None


def _sqlite_regexp(pattern: str, value: Any) -> bool:
    if value is None or not isinstance(value, str):
        return False
    return compile_regex(pattern).search(value) is not None


@contextlib.contextmanager
def time_limit(conn: sa.Connection, seconds: float) -> Iterator[None]:
    """Statements on ``conn`` inside the block are cancelled after ``seconds``: PostgreSQL by
    ``SET LOCAL statement_timeout`` (the block's transaction only), SQLite by a progress
    handler that interrupts the statement (raising OperationalError 'interrupted')."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"))
        yield
        return
    dbapi = conn.connection.dbapi_connection
    deadline = time.monotonic() + seconds
    dbapi.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        yield
    finally:
        dbapi.set_progress_handler(None, 0)


def normalize_uri(uri: str) -> str:
    """Accept plain ``postgresql://`` and file paths; pick psycopg 3 for PostgreSQL."""
    if "://" not in uri:
        return f"sqlite:///{Path(uri).expanduser().resolve()}"
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    return uri


def create_engine(uri: str, pre_ping: bool = True, own_begin: bool = False) -> sa.Engine:
    """Create an engine for ``uri``; a SQLite file's folder is created when missing.

    ``pre_ping`` (PostgreSQL) tests each pooled connection before handing it out, which
    costs a round trip per checkout; the writer's engine goes without and retries a batch
    whose connection turned out dead instead (writes are idempotent).

    ``own_begin`` (PostgreSQL): the driver does not start transactions, whoever uses a
    connection sends its BEGIN (the writers' pipeline sends it with the transaction's first
    statements: psycopg, left to itself, sends BEGIN alone and waits for the answer, a round
    trip of its own). Commit and rollback still go through SQLAlchemy as usual."""
    url = make_url(normalize_uri(uri))
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # cached_statements: the sqlite3 module keeps 128 prepared statements per connection,
        # and every length of an ``IN (?, ...)`` list (up to 500 uids) is a statement of its
        # own: an ingest worker's cache filled with them and SQLite's heap grew by 4 MB over a
        # 1,000,000-event run. The hot statements are a dozen; 32 keeps them all.
        engine = sa.create_engine(
            url,
            json_serializer=dumps,
            connect_args={"timeout": 30, "cached_statements": SQLITE_CACHED_STATEMENTS},
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.create_function("regexp", 2, _sqlite_regexp, deterministic=True)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if backend == "postgresql":
        extra = {"isolation_level": "AUTOCOMMIT"} if own_begin else {}
        return sa.create_engine(url, json_serializer=dumps, pool_pre_ping=pre_ping, **extra)
    raise CatalogError(
        f"unsupported catalog URI {uri!r}: use sqlite:///path/catalog.db or postgresql://user@host/db"
    )
