"""Writes whose results nobody reads, sent together: fewer round trips per transaction.

A live event is one small transaction, and on PostgreSQL its cost was round trips, not work:
a dozen statements, each waiting for the server's answer before the next was sent. Inserts
of chunks, event keys, change records, notices and raw documents need no answer, so the
writer queues them here and sends the queue in one psycopg *pipeline* just before the next
statement that does read something (or before the commit). A read can ride in the same
pipeline, so "write these, then tell me that" is one round trip.

SQLite has no network between the writer and the database: there the queue is run
statement by statement, with the same SQL, so both backends store the same rows.

Errors keep SQLAlchemy's types (``sa.exc.IntegrityError``, ``sa.exc.OperationalError``...),
which the writer and the Kafka worker sort into "refuse this document" and "the database is
away, wait for it".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

Statement = tuple[str, Any, bool]  # (SQL with the driver's placeholders, params, executemany)


class Pipeline:
    """Queued writes on one connection (and so in its transaction)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self._queue: list[Statement] = []
        # On a connection whose driver does not begin transactions (the writers' engine,
        # engine.py's ``own_begin``), the BEGIN is ours: it goes with the first statements.
        self.begun = not (self.postgres and conn.connection.driver_connection.autocommit)

    def __len__(self) -> int:
        return len(self._queue)

    def defer(self, sql: str, params: Any = (), many: bool = False) -> None:
        """Queue a statement whose result is not needed (``many``: params is a list)."""
        if many and not params:
            return
        self._queue.append((sql, params, many))

    def sync(self, reads: Sequence[tuple[str, Any]] = ()) -> list[list[tuple]]:
        """Send what is queued, then ``reads``; returns each read's rows, in order."""
        queue, self._queue = self._queue, []
        if not queue and not reads and self.begun:
            return []
        if not self.postgres:
            self._run_queue(queue)
            return [[tuple(r) for r in self.conn.exec_driver_sql(sql, p)] for sql, p in reads]
        return self._postgres(queue, reads)

    def commit(self, reads: Sequence[tuple[str, Any]] = ()) -> list[list[tuple]]:
        """Send what is queued, then ``reads`` and, on PostgreSQL, the COMMIT with them (one
        round trip, where sending and then committing took two); returns each read's rows.
        SQLAlchemy's own commit afterwards finds the transaction closed and has nothing to
        do; on SQLite it is the commit."""
        queue, self._queue = self._queue, []
        if not self.postgres:
            self._run_queue(queue)
            return [[tuple(r) for r in self.conn.exec_driver_sql(sql, p)] for sql, p in reads]
        if not self.begun and not queue and not reads:
            return []  # nothing was begun, nothing to commit
        return self._postgres(queue, reads, commit=True)

    def _run_queue(self, queue: list[Statement]) -> None:
        for sql, params, _many in queue:
            self.conn.exec_driver_sql(sql, params)

    def _postgres(
        self, queue: list[Statement], reads: Sequence[tuple[str, Any]], commit: bool = False
    ) -> list:
        import psycopg

        pg = self.conn.connection.driver_connection
        sql, params = "", None
        writes = pg.cursor()
        cursors = [pg.cursor() for _ in reads]
        try:
            with pg.pipeline() as pipeline:
                if not self.begun:
                    sql = "BEGIN"
                    writes.execute(sql)
                    self.begun = True
                for sql, params, many in queue:
                    if many:
                        writes.executemany(sql, params)
                    else:
                        writes.execute(sql, params)
                for cursor, (sql, params) in zip(cursors, reads, strict=True):
                    cursor.execute(sql, params)
                if commit and pg.autocommit:
                    sql, params = "COMMIT", None
                    writes.execute(sql)  # ours, as the BEGIN was
                    pipeline.sync()
                elif commit:
                    sql, params = "COMMIT", None
                    pg.commit()  # queues COMMIT and a sync
                else:
                    sql, params = "(the statements above)", None
                    pipeline.sync()
                return [cursor.fetchall() for cursor in cursors]
        except psycopg.Error as err:
            self._raise(err, sql, params)
            raise  # not reached
        finally:
            for cursor in (writes, *cursors):
                cursor.close()

    def _raise(self, err: Exception, sql: str, params: Any) -> None:
        """Re-raise a driver error as SQLAlchemy would have, invalidating a dead connection
        so that the pool does not hand it out again."""
        dbapi_conn = self.conn.connection.dbapi_connection
        gone = self.conn.dialect.is_disconnect(err, dbapi_conn, None)
        if gone:
            self.conn.invalidate(err)
        raise sa.exc.DBAPIError.instance(
            sql,
            params,
            err,
            self.conn.dialect.loaded_dbapi.Error,
            connection_invalidated=gone,
            dialect=self.conn.dialect,
        ) from err
