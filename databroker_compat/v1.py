"""``databroker.v1``: where Databroker 1.x kept ``Broker`` and ``Header``."""

from ._broker import Broker, Results, temp
from ._documents import ALL
from ._header import Header

__all__ = ["ALL", "Broker", "Header", "Results", "temp"]
