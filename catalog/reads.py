"""SQL reads of column chunks: only the chunks (and, for fixed-size rows, only the bytes) that a
requested row range needs."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from . import columns as col
from .schema import chunks


def column_layout(
    conn: sa.Connection, stream_id: int, column: str
) -> tuple[np.dtype, tuple] | None:
    """The dtype and per-row shape of a stored column, or None when it has no chunks."""
    found = conn.execute(
        sa.select(chunks.c.dtype, chunks.c.shape)
        .where(chunks.c.stream_id == stream_id, chunks.c.column == column)
        .distinct()
    ).all()
    if not found:
        return None
    dtypes = [np.dtype(object) if d == col.OBJECT else np.dtype(d) for d, _ in found]
    shapes = {tuple(s) for _, s in found}
    shape = shapes.pop() if len(shapes) == 1 else ()
    return np.result_type(*dtypes), shape


def read_column(
    conn: sa.Connection, stream_id: int, column: str, start: int, stop: int
) -> np.ndarray | None:
    """Rows [start, stop) of a column, or None when the column has no chunks at all."""
    if stop <= start:
        layout = column_layout(conn, stream_id, column)
        if layout is None:
            return None
        dtype, shape = layout
        return np.empty((0, *shape), dtype=dtype)
    # Byte offsets within a chunk, for fixed-size rows; SQL substr is 1-based.
    found = conn.execute(
        sa.select(
            chunks.c.start_row,
            chunks.c.stop_row,
            chunks.c.dtype,
            chunks.c.shape,
            chunks.c.id,
            # Whole chunks come with this query; partly covered ones are cut below.
            sa.case(
                (sa.and_(chunks.c.start_row >= start, chunks.c.stop_row <= stop), chunks.c.payload),
                else_=None,
            ).label("payload"),
        )
        .where(
            chunks.c.stream_id == stream_id,
            chunks.c.column == column,
            chunks.c.stop_row > start,
            chunks.c.start_row < stop,
        )
        .order_by(chunks.c.start_row)
    ).all()
    if not found:
        any_chunk = conn.execute(
            sa.select(chunks.c.id)
            .where(chunks.c.stream_id == stream_id, chunks.c.column == column)
            .limit(1)
        ).first()
        if any_chunk is None:
            return None
        return col.assemble([], start, stop)
    parts = []
    for c in found:
        per_row = col.row_nbytes(c.dtype, c.shape)
        lo, hi = max(c.start_row, start), min(c.stop_row, stop)
        if c.payload is not None:
            rows = c.stop_row - c.start_row
            parts.append(col.Chunk(c.start_row, col.decode(c.dtype, c.shape, c.payload, rows)))
        elif per_row:
            offset = (lo - c.start_row) * per_row
            payload = conn.execute(
                sa.select(sa.func.substr(chunks.c.payload, offset + 1, (hi - lo) * per_row)).where(
                    chunks.c.id == c.id
                )
            ).scalar_one()
            parts.append(col.Chunk(lo, col.decode(c.dtype, c.shape, payload, hi - lo)))
        else:
            payload = conn.execute(
                sa.select(chunks.c.payload).where(chunks.c.id == c.id)
            ).scalar_one()
            rows = c.stop_row - c.start_row
            parts.append(col.Chunk(c.start_row, col.decode(c.dtype, c.shape, payload, rows)))
    return col.assemble(parts, start, stop)
