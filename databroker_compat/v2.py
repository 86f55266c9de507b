"""``databroker.v2``: the v2-style catalog, run and stream objects."""

from ._broker import temp as _temp
from ._v2 import Catalog, Run, Stream


def temp() -> Catalog:
    """A throwaway v2 catalog (embedded server, temporary SQLite)."""
    return _temp().v2


__all__ = ["Catalog", "Run", "Stream", "temp"]
