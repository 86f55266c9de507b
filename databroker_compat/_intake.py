"""The ``bluebroker`` intake driver: ``intake.open_catalog('catalog.yml')`` with::

    sources:
      csx:
        driver: bluebroker
        args:
          uri: https://bluebroker.example.org
          catalog: csx/raw
          api_key: ...          # optional; else $BLUEBROKER_API_KEY

gives ``cat['csx']``, a catalog of runs that behaves as Databroker 1.x's did: ``runs[-1]``,
``runs[uid]``, ``runs[scan_id]``, ``runs.search({...})``, and runs with ``metadata``,
``primary.read()``, ``primary.to_dask()``, ``canonical(fill=...)`` and ``documents()``. It is
registered in the ``intake.drivers`` entry point group; everything goes through the
``databroker`` facade (HTTP), so a Databroker 1.x intake catalog keeps working when only its
``driver:`` and ``args:`` lines change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from intake.catalog import Catalog as IntakeCatalog

from ._broker import Broker
from ._v2 import Catalog, Run


class BluebrokerCatalog(IntakeCatalog):
    """The runs of one catalog path on a bluebroker server, as an intake catalog."""

    name = "bluebroker"
    container = "catalog"
    version = "1.0"
    partition_access = False

    def __init__(
        self,
        uri: str,
        catalog: str,
        api_key: str | None = None,
        *,
        query: dict | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise ValueError(f"the bluebroker driver's uri must be http(s)://..., not {uri!r}")
        if not isinstance(catalog, str) or not catalog.strip("/"):
            raise ValueError("the bluebroker driver needs catalog: (a catalog path, e.g. csx/raw)")
        self._uri, self._path, self._api_key = uri, catalog, api_key
        self._query = query
        key = api_key or os.environ.get("BLUEBROKER_API_KEY")
        broker = Broker(uri, catalog, api_key=key, name=kwargs.get("name"))
        self._runs: Catalog = broker.v2 if query is None else broker.v2.search(query)
        super().__init__(**kwargs)

    def _load(self) -> None:
        self._entries = {}  # runs are looked up on the server, never listed up front

    # -- runs ------------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Run:
        return self._runs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, key: object) -> bool:
        try:
            self._runs[key]
        except (KeyError, IndexError, ValueError):
            return False
        return True

    def _get_entries(self) -> dict:
        return {}

    def search(self, query: dict[str, Any], **kwargs: Any) -> BluebrokerCatalog:  # type: ignore[override]
        """Runs matching a Mongo-style query on start documents, as in Databroker 1.x."""
        if not isinstance(query, dict):
            raise TypeError("search takes a MongoDB-style query dict, e.g. {'plan_name': 'scan'}")
        combined = query if self._query is None else {"$and": [self._query, query]}
        return BluebrokerCatalog(
            self._uri, self._path, self._api_key, query=combined, name=self.name
        )

    @property
    def v1(self) -> Broker:
        return self._runs.v1

    @property
    def v2(self) -> BluebrokerCatalog:
        return self

    def __repr__(self) -> str:
        return f"<bluebroker catalog {self._path} on {self._uri}>"
