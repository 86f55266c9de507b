"""What every client node has: a path, its metadata and structure, formats, export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bluebroker import formats

from .transport import Transport

if TYPE_CHECKING:
    from .live import Subscription, Update

ROUTES = {"array": "array/full", "table": "table/full", "container": "container/full"}


class BaseClient:
    """A node on the server, as last fetched."""

    def __init__(self, transport: Transport, item: dict[str, Any], path: tuple[str, ...]) -> None:
        self._transport = transport
        self._item = item
        self.path = path

    @property
    def item(self) -> dict[str, Any]:
        """The node's JSON resource as the server sent it."""
        return self._item

    @property
    def metadata(self) -> dict[str, Any]:
        return self._item["attributes"].get("metadata", {})

    @property
    def specs(self) -> list[str]:
        return [s["name"] for s in self._item["attributes"].get("specs", [])]

    @property
    def structure_family(self) -> str:
        return self._item["attributes"]["structure_family"]

    @property
    def uri(self) -> str:
        return self._item["links"]["self"]

    @property
    def formats(self) -> list[str]:
        """Media types this node can be read as (see also ``bluebroker.formats.ALIASES``)."""
        return list(self._transport.about()["formats"].get(self.structure_family, []))

    def refresh(self) -> BaseClient:
        self._item = self._transport.get_json("metadata", self.path)["data"]
        return self

    def export(self, filepath: str | Path, format: str | None = None, **params: Any) -> Path:
        """Save the whole node to ``filepath``; the format is taken from the extension unless
        given (``'csv'``, ``'parquet'``, ``'nc'``, ``'h5'``, ``'png'``...). A CSV holds one
        value per cell: columns it cannot hold are named in its first line (``# left out
        ...``) and in a :class:`~bluebroker.client.table.ColumnsLeftOut` warning."""
        filepath = Path(filepath)
        name = format or filepath.suffix.lstrip(".")
        if not name:
            raise ValueError("give a format, or a file name with an extension such as .csv")
        media = formats.resolve(name)
        response = self._transport.get_bytes(
            ROUTES[self.structure_family],
            self.path,
            params={**params, "format": media},
            accept=media,
        )
        filepath.write_bytes(response.content)
        if media == formats.CSV and response.content.startswith(b"# left out"):
            import warnings

            from .table import ColumnsLeftOut

            note = response.content.split(b"\n", 1)[0].decode()
            warnings.warn(f"{filepath.name}: {note[2:]}", ColumnsLeftOut, stacklevel=2)
        return filepath

    def subscribe(
        self, callback: Callable[[Update], None] | None = None, start: int | None = None
    ) -> Subscription:
        """Call ``callback`` with each live change of this node, from a background thread,
        reconnecting by itself; ``start=1`` replays every earlier change first. Returns the
        running :class:`Subscription` (``close()`` it, or use it in a ``with`` block)."""
        from .live import Subscription

        sub = Subscription(self._transport, self.path, start)
        if callback is not None:
            sub.add_callback(callback)
        return sub.start()

    def updates(self, start: int | None = None, timeout: float | None = None) -> Iterator[Update]:
        """``for update in node.updates(): ...`` over live changes; ends when the run stops
        (for runs, streams, tables and arrays) or after ``timeout`` seconds of quiet."""
        from .live import updates

        return updates(self._transport, self.path, start, timeout)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} /{'/'.join(self.path)}>"
