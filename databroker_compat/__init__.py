"""The legacy Databroker API, Databroker 1.2.5's semantics, over a bluebroker server.

Scripts written for Databroker 1.x run unchanged::

    from databroker import Broker
    db = Broker.named("csx")  # ~/.config/databroker/csx.yml: uri: ..., catalog: csx/raw
    h = db[-1]
    h.table()

Everything goes through ``bluebroker.client`` (HTTP); ``temp()`` starts an embedded server.
"""

from __future__ import annotations

from ._broker import Broker, Results, temp
from ._config import describe_configs, list_configs, lookup_config
from ._doct import DeprecatedDoct, Document, wrap_in_deprecated_doct, wrap_in_doct
from ._documents import ALL
from ._header import Header
from ._v2 import Catalogs

catalog = Catalogs()

__all__ = [
    "ALL",
    "Broker",
    "DeprecatedDoct",
    "Document",
    "Header",
    "Results",
    "catalog",
    "describe_configs",
    "list_configs",
    "lookup_config",
    "temp",
    "wrap_in_deprecated_doct",
    "wrap_in_doct",
]
