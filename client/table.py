"""Table nodes: ``read(columns=[...])`` into pandas, over Arrow."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bluebroker import formats
from bluebroker.structures import TableStructure

from .base import BaseClient

if TYPE_CHECKING:
    import pandas as pd

    from .array import ArrayClient
    from .live import LiveTable
    from .transport import Transport


def read_table(
    transport: Transport,
    path: tuple[str, ...],
    columns: list[str] | None = None,
    fill: bool = True,
) -> pd.DataFrame:
    """The table at ``path`` in one request, without fetching its metadata first. What the
    server says about it (``bluebroker.*`` schema metadata) lands in ``df.attrs``."""
    import pyarrow as pa

    params = [("column", c) for c in columns or []]
    if not fill:
        params.append(("fill", "false"))
    response = transport.get_bytes("table/full", path, params, accept=formats.ARROW)
    table = pa.ipc.open_file(io.BytesIO(response.content)).read_all()
    df = table.to_pandas(use_threads=False)
    about = {
        k.decode()[len("bluebroker.") :]: v.decode()
        for k, v in (table.schema.metadata or {}).items()
        if k.startswith(b"bluebroker.")
    }
    index = about.pop("index", None)
    df = df.set_index(index) if index else df
    df.attrs.update(about)
    return df


class TableClient(BaseClient):
    @property
    def structure(self) -> TableStructure:
        return TableStructure.from_json(self._item["attributes"]["structure"])

    @property
    def columns(self) -> list[str]:
        return self.structure.columns

    def __len__(self) -> int:
        return self.structure.num_rows

    def keys(self) -> list[str]:
        return self.columns

    def __iter__(self) -> Iterator[str]:
        """A table is a mapping of its columns, as a container is of its children."""
        return iter(self.columns)

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def values(self) -> list[ArrayClient]:
        return [self[c] for c in self.columns]

    def items(self) -> list[tuple[str, ArrayClient]]:
        return [(c, self[c]) for c in self.columns]

    def read(self, columns: list[str] | None = None, fill: bool = True) -> pd.DataFrame:
        """The table (index seq_num), or only ``columns``; ``fill=False`` gives every field,
        with external (detector file) fields of a stream's data as their datum ids."""
        return read_table(self._transport, self.path, columns, fill)

    def live(self) -> LiveTable:
        """A view of this table that grows as rows arrive: ``.read()`` is always current."""
        from .live import LiveTable

        return LiveTable(self)

    def __getitem__(self, column: str) -> ArrayClient:
        from .nodes import fetch, make_node

        if not isinstance(column, str):
            raise TypeError(f"columns are named by strings, not {type(column).__name__}")
        contents = self._item["attributes"]["structure"].get("contents") or {}
        if column in contents:  # listed by the server with the table
            return make_node(self._transport, contents[column], (*self.path, column))
        return fetch(self._transport, (*self.path, column))

    def __repr__(self) -> str:
        return f"<TableClient {self.columns} rows={len(self)}>"
