"""Node classes by what the server says a node is, and the Bluesky-aware containers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bluebroker.mongo_queries import from_mongo
from bluebroker.queries import PartialUID, Query, ScanID

from .array import ArrayClient
from .base import BaseClient
from .container import Container
from .table import TableClient
from .transport import BadRequestError, NotFoundError, Transport

if TYPE_CHECKING:
    import xarray

    from .live_table import LiveTable


def make_node(transport: Transport, item: dict[str, Any], path: tuple[str, ...]) -> BaseClient:
    family = item["attributes"]["structure_family"]
    specs = [s["name"] for s in item["attributes"].get("specs", [])]
    if family == "array":
        return ArrayClient(transport, item, path)
    if family == "table":
        return TableClient(transport, item, path)
    if "CatalogOfBlueskyRuns" in specs:
        return CatalogClient(transport, item, path)
    if "BlueskyRun" in specs:
        return RunClient(transport, item, path)
    if "BlueskyEventStream" in specs:
        return StreamClient(transport, item, path)
    return Container(transport, item, path)


def fetch(transport: Transport, path: tuple[str, ...]) -> Any:
    """The node at ``path`` (one request)."""
    return make_node(transport, transport.get_json("metadata", path)["data"], path)


class CatalogClient(Container):
    """A catalog of runs: ``cat[-1]`` newest, ``cat[scan_id]``, ``cat['uid-prefix']``,
    ``cat.search(Key('plan_name') == 'scan')``, ``cat.sort(('start.time', -1))``."""

    def search(self, query: Query | dict[str, Any]) -> CatalogClient:
        """The runs that also satisfy ``query``: a query object (``Key('plan_name') ==
        'scan'``, ``TimeRange(...)``, ``FullText(...)``...) or a Mongo-style dict as
        Databroker took (``{'plan_name': 'scan', 'num_points': {'$gte': 10}}``)."""
        if isinstance(query, dict):
            queries = tuple(from_mongo(query))
        elif isinstance(query, Query):
            queries = (query,)
        else:
            raise TypeError(
                f"search takes a query, not {type(query).__name__}: for example "
                "`from bluebroker.queries import Key; runs.search(Key('plan_name') == 'scan')` "
                "or a Mongo-style dict `runs.search({'plan_name': 'scan'})`"
            )
        return CatalogClient(
            self._transport, self._item, self.path, (*self._queries, *queries), self._sort
        )

    def sort(self, *keys: str | tuple[str, int]) -> CatalogClient:
        """The runs ordered by ``keys``, each ``'-time'`` / ``'scan_id'`` (``-`` for
        descending) or a pair ``('start.time', -1)``. A key that no run has is refused here
        and now (``BadRequestError``, naming the keys the runs do have)."""
        ordered = CatalogClient(
            self._transport, self._item, self.path, self._queries, _sort_keys(keys)
        )
        ordered._page(0, 0, fields="")  # the server checks the keys
        return ordered

    def __getitem__(self, key: str | int) -> Any:  # type: ignore[override]
        if isinstance(key, bool):
            raise TypeError("runs are looked up by uid, uid prefix, scan_id or negative index")
        if isinstance(key, int):
            if key < 0:
                return self.values()[key]
            newest = (("start.time", -1),)
            by_id = CatalogClient(
                self._transport, self._item, self.path, (*self._queries, ScanID(key)), newest
            )
            found, _ = by_id._page(0, 1)
            if not found:
                raise NotFoundError(404, f"no run with scan_id {key} in /{'/'.join(self.path)}")
            return self._child(found[0])
        if self._queries:  # the run must also satisfy this catalog's search
            found, _ = self.search(PartialUID(key))._page(0, 2)
            exact = [f for f in found if f["id"] == key]
            if exact or len(found) == 1:
                return self._child((exact or found)[0])
            if not found:
                raise NotFoundError(404, f"no run matching {key!r} in this search")
            raise BadRequestError(
                400,
                f"uid prefix {key!r} matches more than one run in "
                "this search; give more characters",
            )
        return super().__getitem__(key)


def _sort_keys(keys: tuple[str | tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    out = []
    for key in keys:
        if isinstance(key, str) and key.strip("+-"):
            out.append((key[1:], -1) if key.startswith("-") else (key.lstrip("+"), 1))
        elif (
            isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], str)
            and key[1] in (1, -1)
            and not isinstance(key[1], bool)
        ):
            out.append(key)
        else:
            raise TypeError(
                f"a sort key is 'name' or '-name' (descending), or a pair ('name', 1 or -1), "
                f"not {key!r:.80}"
            )
    return tuple(out)


class RunClient(Container):
    """One run: metadata ``{start, stop, summary}``, streams as children, its documents."""

    @property
    def start(self) -> dict[str, Any]:
        return self.metadata["start"]

    @property
    def stop(self) -> dict[str, Any] | None:
        return self.metadata.get("stop")

    @property
    def uid(self) -> str:
        return self.start["uid"]

    def documents(self) -> Any:
        """The run's documents as (name, doc), in the order they were written."""
        from bluebroker import packing

        unpacker = packing.unpacker()
        for piece in self._transport.stream("documents", self.path, "application/x-msgpack"):
            unpacker.feed(piece)
            yield from map(tuple, unpacker)

    def __repr__(self) -> str:
        names = self.metadata.get("summary", {}).get("stream_names", [])
        names_text = "{" + ", ".join(repr(n) for n in sorted(names)) + "}"
        scan = f" scan_id={self.start['scan_id']}" if "scan_id" in self.start else ""
        when = datetime.fromtimestamp(self.start["time"]).strftime("%Y-%m-%d %H:%M")
        return f"<Run {names_text}{scan} uid={self.uid[:8]!r} {when}>"


class StreamClient(Container):
    """One event stream: ``data``, ``timestamps``, ``config``; ``read()`` as xarray."""

    @property
    def descriptors(self) -> list[dict[str, Any]]:
        return self.metadata.get("descriptors", [])

    def live(self) -> LiveTable:
        """The stream's data growing as events arrive: ``.read()`` (pandas) and
        ``.to_xarray()`` (like :meth:`read`) are always current."""
        from .live_table import LiveTable

        return LiveTable(self["data"])

    def read(self, fields: list[str] | None = None) -> xarray.Dataset:
        """The stream along dimension ``time``, in one request: a variable per field, n-d
        for fields holding an array per event (an image field is ``(time, 64, 64)``).

        Detector-file fields are read only when named in ``fields``: without ``fields`` they
        are left out, listed in ``ds.attrs['left_out']``, with a one-line
        :class:`~bluebroker.client.table.ColumnsLeftOut` warning."""
        import xarray

        from .table import stack_rows, warn_left_out

        data = self["data"]
        keys: dict[str, dict] = {}
        for d in self.descriptors:
            for k, v in d["data_keys"].items():
                keys.setdefault(k, v)
        if fields is None:
            names = [k for k, v in keys.items() if not v.get("external")]
            left_out = [k for k in keys if k not in names]
        else:
            names, left_out = [n for n in fields if n != "time"], []
            unknown = [n for n in names if n not in keys]
            if unknown:
                raise KeyError(
                    f"stream {self.path[-1]!r} has no field {unknown[0]!r}; fields: {list(keys)}"
                )
        table = data.read(["time", *names])
        variables = {}
        for n in names:
            values = stack_rows(table[n].to_numpy())
            dims = data[n].dims if values.ndim > 1 else ("time",)
            if len(dims) != values.ndim:
                dims = ("time", *(f"dim_{i}" for i in range(1, values.ndim)))
            variables[n] = xarray.Variable(dims, values, attrs=_attrs(keys[n]))
        attrs: dict[str, Any] = {"stream_name": self.path[-1], "uid": self.path[-2]}
        if left_out:
            attrs["left_out"] = left_out
            warn_left_out(left_out, "stream.read", "stream['data']")
        return xarray.Dataset(
            variables,
            coords={"time": table["time"].to_numpy(), "seq_num": ("time", table.index.to_numpy())},
            attrs=attrs,
        )


def _attrs(data_key: dict) -> dict[str, Any]:
    return {
        k: v
        for k, v in data_key.items()
        if k in ("source", "units", "precision", "dtype", "object_name") and v is not None
    }
