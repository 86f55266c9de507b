"""``table.live()``: a pandas/xarray view of a table that keeps growing, built on a
:class:`~bluebroker.client.live.Subscription` replayed from the table's first change."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from .live import Subscription, Update

if TYPE_CHECKING:
    import pandas as pd
    import xarray

class LiveTable:
    """A table that keeps growing as rows are appended: ``read()`` is always current.

    It replays the table's changes from the start (so nothing between a first read and the
    subscription can be missed) and then follows it live. ``wait_for(n)`` blocks until ``n``
    rows are in, and raises at once if the run stopped with fewer; ``stopped`` says the run
    has ended.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._lock = threading.Condition()
        self._parts: list[dict[str, np.ndarray]] = []
        self._rows = 0
        self.stopped = False
        self._sub = Subscription(table._transport, table.path, start=1).add_callback(self._on)
        self._sub.start()

    def _on(self, update: Update) -> None:
        with self._lock:
            if update.type == "rows-appended":
                stop = int(update["stop_row"])
                data = update.data
                if data is None:  # too big to come inline: read those rows
                    from .table import read_table, stack_rows

                    whole = read_table(self._table._transport, self._table.path)
                    frame = whole.iloc[self._rows : stop]
                    data = {"seq_num": frame.index.to_numpy()}
                    data.update({c: stack_rows(frame[c].to_numpy()) for c in frame.columns})
                if stop > self._rows:
                    skip = self._rows - (stop - len(data["seq_num"]))
                    self._parts.append({k: v[max(skip, 0) :] for k, v in data.items()})
                    self._rows = stop
            elif update.type == "run-stopped":
                self.stopped = True
            self._lock.notify_all()

    def __len__(self) -> int:
        return self._rows

    def wait_for(self, rows: int | None = None, timeout: float = 30.0) -> LiveTable:
        """Block until ``rows`` rows have arrived (or, with None, until the run stops).

        A stopped run gets no more rows: asking it for more than it has raises at once
        (``ValueError``), rather than after ``timeout``."""
        with self._lock:
            self._lock.wait_for(
                lambda: self.stopped or (rows is not None and self._rows >= rows), timeout
            )
            have, stopped = self._rows, self.stopped
        if rows is not None and have >= rows:
            return self
        if stopped and rows is not None:
            raise ValueError(
                f"the run stopped with {have} rows; wait_for({rows}) cannot be met "
                "(read() has them all)"
            )
        if not stopped:
            error = self._sub.error
            if error is not None:
                raise error
            raise TimeoutError(f"{have} rows after {timeout} s; wanted {rows or 'the stop'}")
        return self

    def read(self) -> pd.DataFrame:
        """The rows so far, as ``table.read()`` gives them (index seq_num): arrays per row
        as one ndarray per cell, detector-file fields left out (``df.attrs['left_out']``,
        and a :class:`~bluebroker.client.table.ColumnsLeftOut` warning)."""
        df = self._frame()
        left_out = self._left_out(df)
        if left_out:
            from .table import warn_left_out

            warn_left_out(left_out, "live.read", "table")
        return df

    def _left_out(self, df: pd.DataFrame) -> list[str]:
        if not (self._sub.schema or {}).get("columns"):
            return []  # the server has not said yet which columns it sends
        left_out = [c for c in self._table.columns if c not in df.columns]
        if left_out:
            df.attrs["left_out"] = left_out
        return left_out

    def _frame(self) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            parts = list(self._parts)
        columns = (self._sub.schema or {}).get("columns") or ["seq_num"]
        if not parts:
            return pd.DataFrame({c: [] for c in columns[1:]}, index=pd.Index([], name="seq_num"))
        data = {}
        for name in columns:
            pieces = [p[name] for p in parts if name in p]
            data[name] = np.concatenate(pieces) if pieces else np.full(self._rows, np.nan)
        seq = data.pop("seq_num")
        return pd.DataFrame(
            {k: list(v) if v.ndim > 1 else v for k, v in data.items()},
            index=pd.Index(seq, name="seq_num"),
        )

    def to_xarray(self) -> xarray.Dataset:
        """The rows so far along dimension ``time``, like ``stream.read()``."""
        import xarray

        from .table import stack_rows, warn_left_out

        df = self._frame()
        left_out = self._left_out(df)
        variables = {}
        for c in df.columns:
            values = stack_rows(df[c].to_numpy())  # per-event arrays: (time, *shape)
            dims = ("time", *(f"dim_{i}" for i in range(1, values.ndim)))
            variables[c] = (dims, values)
        variables.pop("time", None)
        if left_out:
            warn_left_out(left_out, "live.to_xarray", "table")
        return xarray.Dataset(
            variables,
            coords={"time": df["time"].to_numpy(), "seq_num": ("time", df.index.to_numpy())},
            attrs={"left_out": left_out} if left_out else {},
        )

    def close(self) -> None:
        self._sub.close()

    def __enter__(self) -> LiveTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "live"
        return f"<LiveTable /{'/'.join(self._table.path)} {self._rows} rows, {state}>"
