"""Table nodes: ``read(columns=[...])`` into pandas, over Arrow."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from bluebroker import formats
from bluebroker.structures import TableStructure

from .base import BaseClient

if TYPE_CHECKING:
    import pandas as pd

    from .array import ArrayClient


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

    def read(self, columns: list[str] | None = None, fill: bool = True) -> pd.DataFrame:
        """The table (index seq_num), or only ``columns``; ``fill=False`` gives external
        (detector file) fields of a stream's data as their datum ids instead."""
        import pyarrow as pa

        params = [("column", c) for c in columns or []]
        if not fill:
            params.append(("fill", "false"))
        response = self._transport.get_bytes("table/full", self.path, params, accept=formats.ARROW)
        table = pa.ipc.open_file(io.BytesIO(response.content)).read_all()
        df = table.to_pandas(use_threads=False)
        index = (table.schema.metadata or {}).get(b"bluebroker.index")
        return df.set_index(index.decode()) if index else df

    def __getitem__(self, column: str) -> ArrayClient:
        from .nodes import fetch, make_node

        contents = self._item["attributes"]["structure"].get("contents") or {}
        if column in contents:  # listed by the server with the table
            return make_node(self._transport, contents[column], (*self.path, column))
        return fetch(self._transport, (*self.path, column))

    def __repr__(self) -> str:
        return f"<TableClient {self.columns} rows={len(self)}>"
