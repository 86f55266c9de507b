"""SQL reads of column chunks: only the chunks (and, for fixed-size rows, only the bytes) that a
requested row range needs, for any number of columns in one query."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from . import columns as col
from .errors import CatalogError
from .schema import chunks

_LAYOUT = (
    sa.select(chunks.c.column, chunks.c.dtype, chunks.c.shape)
    .where(
        chunks.c.stream_id == sa.bindparam("stream_id"),
        chunks.c.column.in_(sa.bindparam("columns", expanding=True)),
    )
    .distinct()
)
_COVERING = (
    sa.select(
        chunks.c.column,
        chunks.c.start_row,
        chunks.c.stop_row,
        chunks.c.dtype,
        chunks.c.shape,
        chunks.c.id,
        # Whole chunks come with this query; partly covered ones are cut below.
        sa.case(
            (
                sa.and_(
                    chunks.c.start_row >= sa.bindparam("start"),
                    chunks.c.stop_row <= sa.bindparam("stop"),
                ),
                chunks.c.payload,
            ),
            else_=None,
        ).label("payload"),
    )
    .where(
        chunks.c.stream_id == sa.bindparam("stream_id"),
        chunks.c.column.in_(sa.bindparam("columns", expanding=True)),
        chunks.c.stop_row > sa.bindparam("start"),
        chunks.c.start_row < sa.bindparam("stop"),
    )
    .order_by(chunks.c.column, chunks.c.start_row)
)
_PIECE = sa.select(
    sa.func.substr(chunks.c.payload, sa.bindparam("offset"), sa.bindparam("length"))
).where(chunks.c.id == sa.bindparam("id"))
_WHOLE = sa.select(chunks.c.payload).where(chunks.c.id == sa.bindparam("id"))


def column_layouts(
    conn: sa.Connection, stream_id: int, columns: list[str]
) -> dict[str, tuple[np.dtype, tuple]]:
    """dtype and per-row shape of each stored column (columns with no chunks are absent)."""
    found: dict[str, list] = {}
    for column, dtype, shape in conn.execute(_LAYOUT, {"stream_id": stream_id, "columns": columns}):
        found.setdefault(column, []).append((dtype, tuple(shape)))
    out = {}
    for column, layouts in found.items():
        dtypes = [np.dtype(object) if d == col.OBJECT else np.dtype(d) for d, _ in layouts]
        shapes = {s for _, s in layouts}
        out[column] = (np.result_type(*dtypes), shapes.pop() if len(shapes) == 1 else ())
    return out


def column_layout(
    conn: sa.Connection, stream_id: int, column: str
) -> tuple[np.dtype, tuple] | None:
    return column_layouts(conn, stream_id, [column]).get(column)


# Chunks are listed, then their bytes read, in two statements; a writer that merges a stream's
# tail between the two (catalog/writes_appends.py) deletes the chunks listed. Each retry lists
# the merged chunk instead; merges of one tail are seconds apart, so a second try succeeds.
MERGE_RETRIES = 5


class _Merged(Exception):
    """A listed chunk was gone when its bytes were read."""


def read_columns(
    conn: sa.Connection, stream_id: int, columns: list[str], start: int, stop: int
) -> dict[str, np.ndarray]:
    """Rows [start, stop) of each column; columns with no chunks at all are left out."""
    parts: dict[str, list[col.Chunk]] = {}
    if stop > start:
        params = {"stream_id": stream_id, "columns": columns, "start": start, "stop": stop}
        for attempt in range(MERGE_RETRIES):
            try:
                parts = {}
                for c in conn.execute(_COVERING, params):
                    parts.setdefault(c.column, []).append(_chunk(conn, c, start, stop))
                break
            except _Merged:  # a writer merged the chunks listed (PostgreSQL reads each
                if attempt == MERGE_RETRIES - 1:  # statement afresh): list them again
                    raise CatalogError(
                        "the rows kept moving while being read (chunks merged by a busy "
                        "writer); read them again"
                    ) from None
    missing = [c for c in columns if c not in parts]
    if missing:  # an empty range, a gap, or a column that was never written
        for column, (dtype, shape) in column_layouts(conn, stream_id, missing).items():
            parts[column] = [col.Chunk(start, np.empty((0, *shape), dtype=dtype))]
    return {
        column: col.assemble([c for c in found if len(c.values)], start, stop)
        if stop > start
        else found[0].values
        for column, found in parts.items()
    }


def _chunk(conn: sa.Connection, c: sa.Row, start: int, stop: int) -> col.Chunk:
    """The part of one stored chunk inside [start, stop): cut in SQL when rows have a size."""
    if c.payload is not None:
        return col.Chunk(
            c.start_row, col.decode(c.dtype, c.shape, c.payload, c.stop_row - c.start_row)
        )
    lo, hi = max(c.start_row, start), min(c.stop_row, stop)
    per_row = col.row_nbytes(c.dtype, c.shape)
    if per_row:
        piece = conn.execute(
            _PIECE,
            {"id": c.id, "offset": (lo - c.start_row) * per_row + 1, "length": (hi - lo) * per_row},
        ).first()
        if piece is None:
            raise _Merged
        piece = piece[0]
        return col.Chunk(lo, col.decode(c.dtype, c.shape, piece, hi - lo))
    row = conn.execute(_WHOLE, {"id": c.id}).first()
    if row is None:
        raise _Merged
    whole = row[0]
    return col.Chunk(c.start_row, col.decode(c.dtype, c.shape, whole, c.stop_row - c.start_row))


def read_column(
    conn: sa.Connection, stream_id: int, column: str, start: int, stop: int
) -> np.ndarray | None:
    """Rows [start, stop) of one column, or None when the column has no chunks at all."""
    return read_columns(conn, stream_id, [column], start, stop).get(column)
