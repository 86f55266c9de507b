"""``Results``: the headers a search found, as Databroker 1.2.5 handed them out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._header import Header

if TYPE_CHECKING:
    from bluebroker.client import CatalogClient

    from ._broker import Broker


class Results:
    """Headers matching a search, newest first (iterate it; ``list(db(...))``)."""

    def __init__(self, broker: Broker, catalog: CatalogClient, data_key: str | None) -> None:
        self._broker = broker
        self._catalog = catalog
        self._data_key = data_key

    def __iter__(self) -> Iterator[Header]:
        for run in self._catalog.sort(("start.time", -1)).values():
            header = Header(self._broker, run)
            if self._data_key is None or any(
                self._data_key in d["data_keys"] for d in header.descriptors
            ):
                yield header

    def __repr__(self) -> str:
        return f"<Results of {self._catalog!r}>"


def _ensure_list(headers: Any) -> list[Header]:
    return [headers] if isinstance(headers, Header) else list(headers)
