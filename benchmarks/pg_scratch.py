"""A throwaway PostgreSQL database for one benchmark: made on the local server (127.0.0.1:5432,
or $BLUEBROKER_BENCH_POSTGRESQL naming any database on the server to connect through) and
dropped afterwards, so that runs never measure a catalog left over from the last one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

ADMIN = os.environ.get("BLUEBROKER_BENCH_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """Yield the SQLAlchemy URI of a new, empty database; drop it on the way out."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    base = ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
