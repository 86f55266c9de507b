"""The change log behind live updates: what changed, numbered per node, in the same transaction.

A subscriber watches one node: a catalog of runs (runs created and stopped), a run (streams
created, run stopped) or a stream (rows appended, descriptors added, run stopped). Each change
is a row of ``changes`` written in the transaction that made it, numbered by a counter on the
node's own row (``last_change``). Incrementing that counter locks the row until commit, so on
PostgreSQL two writers touching one node commit their changes in sequence order: a
subscriber that has seen N and reads ``seq > N`` never skips one, and resuming is a query.

How other processes learn of a commit, cheaply:

* in the writing process, the writer hands its committed changes to :class:`ChangeFeed`;
* PostgreSQL: ``pg_notify`` inside the transaction, delivered at commit to every listening
  server process (one channel per database schema);
* SQLite: one writer at a time, so ids grow in commit order; other processes tail the table.

Notices only wake subscribers up; the table is the truth, so a lost notice costs latency,
never data.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .engine import dumps
from .schema import catalogs, changes, runs, streams

log = logging.getLogger(__name__)

SCOPES = {"catalog": catalogs, "run": runs, "stream": streams}
NOTIFY_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more


@dataclass(frozen=True)
class Change:
    """One change of one node: ``seq`` counts from 1 per node.

    ``chunks`` (rows-appended only, never stored in the log) are the appended rows as the
    writer encoded them, ``{column: (dtype, shape, payload)}``: they travel with the notice
    when they fit, so that a server can push small appends without reading them back.
    """

    scope: str
    node_id: int
    seq: int
    kind: str
    time: float
    body: dict[str, Any] = field(default_factory=dict)
    chunks: dict[str, tuple[str, list[int], bytes]] | None = field(
        default=None, compare=False, repr=False
    )

    def rows(self) -> dict[str, Any] | None:
        """The carried chunks as arrays (rows ``start_row:stop_row``), or None."""
        if not self.chunks or not self.body:
            return None
        from .columns import decode

        n = int(self.body["stop_row"]) - int(self.body["start_row"])
        return {
            c: decode(dtype, shape, payload, n)
            for c, (dtype, shape, payload) in self.chunks.items()
        }

    @property
    def key(self) -> tuple[str, int]:
        return (self.scope, self.node_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "node_id": self.node_id,
            "seq": self.seq,
            "kind": self.kind,
            "time": self.time,
            "body": self.body,
        }


_CHANNELS: weakref.WeakKeyDictionary[sa.Engine, str] = weakref.WeakKeyDictionary()


def channel(conn: sa.Connection) -> str:
    """The NOTIFY channel of the connection's schema: catalogs in different schemas of one
    database (tests, several facilities on one server) must not hear each other."""
    found = _CHANNELS.get(conn.engine)
    if found is None:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar() or "public"
        found = _CHANNELS[conn.engine] = _channel_name(schema)
    return found


def _channel_name(schema: str) -> str:
    return f"bluebroker_{schema}"[:63]  # PostgreSQL identifiers hold 63 bytes


def next_seq(conn: sa.Connection, scope: str, node_id: int) -> int:
    """Take the node's next sequence number (locking its row until the commit)."""
    table = SCOPES[scope]
    return int(
        conn.execute(
            sa.update(table)
            .where(table.c.id == node_id)
            .values(last_change=table.c.last_change + 1)
            .returning(table.c.last_change)
        ).scalar_one()
    )


def statements(conn: sa.Connection, change: Change) -> list[tuple[str, tuple]]:
    """The SQL that stores ``change`` in the log and, on PostgreSQL, notifies listeners (sent
    with the transaction's other writes; the notice goes out at commit)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    body = dumps(change.body)
    jsonb = "CAST(%s AS JSONB)" if conn.dialect.name == "postgresql" else mark
    out = [
        (
            "INSERT INTO changes (scope, node_id, seq, kind, time, body) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {jsonb})",
            (change.scope, change.node_id, change.seq, change.kind, change.time, body),
        )
    ]
    if conn.dialect.name == "postgresql":
        out.append(("SELECT pg_notify(%s, %s)", (channel(conn), notice(change))))
    return out


def notice(change: Change) -> str:
    """The NOTIFY payload: the change with its rows when they fit, else without them (the
    server reads them), else without the body too (the listener reads it from the table)."""
    obj = change.to_json()
    if change.chunks:
        carried = {
            c: [dtype, shape, base64.b64encode(payload).decode()]
            for c, (dtype, shape, payload) in change.chunks.items()
        }
        payload = json.dumps({**obj, "chunks": carried}, separators=(",", ":"))
        if len(payload) <= NOTIFY_LIMIT:
            return payload
    payload = json.dumps(obj, separators=(",", ":"))
    if len(payload) > NOTIFY_LIMIT:
        payload = json.dumps({**obj, "body": None}, separators=(",", ":"))
    return payload


def last_seq(conn: sa.Connection, scope: str, node_id: int) -> int:
    """The sequence number of the node's latest change (0 when nothing has changed yet)."""
    table = SCOPES[scope]
    found = conn.execute(sa.select(table.c.last_change).where(table.c.id == node_id)).scalar()
    return int(found or 0)


def since(
    conn: sa.Connection, scope: str, node_id: int, after: int, limit: int = 1000
) -> list[Change]:
    """The node's changes with ``seq > after``, in order (at most ``limit``)."""
    rows = conn.execute(
        sa.select(changes.c.seq, changes.c.kind, changes.c.time, changes.c.body)
        .where(changes.c.scope == scope, changes.c.node_id == node_id, changes.c.seq > after)
        .order_by(changes.c.seq)
        .limit(limit)
    ).all()
    return [Change(scope, node_id, int(r.seq), r.kind, r.time, r.body) for r in rows]


Listener = Callable[[list[Change] | None], None]


class ChangeFeed:
    """Committed changes of one catalog database, delivered to in-process listeners.

    A listener is called from a background thread with a list of changes, possibly out of
    order across nodes, possibly twice, or with ``None`` meaning "notices may have been lost:
    check the table" (after the PostgreSQL listener reconnects). The background source starts
    with the first listener: ``LISTEN`` on PostgreSQL, a tail of the table on SQLite.
    """

    def __init__(self, engine: sa.Engine, poll_interval: float = 0.05) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Set once the source is listening: a change committed after that reaches listeners.
        self.ready = threading.Event()

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
            if self._thread is None:
                target = self._listen if self.engine.dialect.name == "postgresql" else self._tail
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=target, name="bluebroker-changes", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def publish(self, found: list[Change] | None) -> None:
        """Hand changes to every listener (the writer calls this right after its commit)."""
        if found == []:
            return
        for listener in list(self._listeners):
            try:
                listener(found)
            except Exception:  # a broken listener must not break the writer
                log.exception("a change listener failed")

    # -- sources -------------------------------------------------------------------------

    def _tail(self) -> None:
        """SQLite: read new rows of ``changes`` by id (ids grow in commit order there)."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(changes.c.id))).scalar() or 0
        self.ready.set()
        while not self._stopping.wait(self.poll_interval):
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        sa.select(changes)
                        .where(changes.c.id > last)
                        .order_by(changes.c.id)
                        .limit(5000)
                    ).all()
            except sa.exc.SQLAlchemyError as err:
                log.warning("reading the change log failed (%s); retrying", err)
                continue
            if rows:
                last = rows[-1].id
                self.publish(
                    [Change(r.scope, r.node_id, int(r.seq), r.kind, r.time, r.body) for r in rows]
                )

    def _listen(self) -> None:
        """PostgreSQL: LISTEN on the schema's channel; reconnect after a failure, telling the
        listeners to look at the table for anything missed meanwhile."""
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        first = True
        while not self._stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as pg:
                    schema = pg.execute("SELECT current_schema()").fetchone()[0] or "public"
                    name = _channel_name(schema)
                    pg.execute(f'LISTEN "{name}"')
                    self.ready.set()
                    if not first:
                        self.publish(None)
                    first = False
                    while not self._stopping.is_set():
                        for notice in pg.notifies(timeout=0.5):
                            self.publish(_parsed(notice.payload))
            except psycopg.Error as err:
                log.warning("listening for catalog changes failed (%s); reconnecting", err)
                self._stopping.wait(1.0)


def _parsed(payload: str) -> list[Change] | None:
    """The notice's change; None ("look at the table") for a payload that is not one of
    ours, which must not end the listening thread."""
    try:
        return [_parse(payload)]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("ignored a malformed change notice (%s); reading the change log", err)
        return None


def _parse(payload: str) -> Change:
    obj = json.loads(payload)
    chunks = obj.get("chunks")
    if chunks:
        chunks = {c: (d, s, base64.b64decode(p)) for c, (d, s, p) in chunks.items()}
    return Change(
        obj["scope"],
        int(obj["node_id"]),
        int(obj["seq"]),
        obj["kind"],
        obj["time"],
        obj["body"],
        chunks or None,
    )
