"""``Header``: one run as Databroker 1.2.5 presented it, read through ``bluebroker.client``."""

from __future__ import annotations

import functools
import html
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from . import _documents
from ._documents import ALL

if TYPE_CHECKING:
    import pandas as pd
    import xarray

    from bluebroker.client import RunClient

    from ._broker import Broker

KEYS = ("start", "descriptors", "stop", "ext")


class Header:
    """A run: ``start``, ``stop``, ``descriptors`` and ways to read its data.

    Also a small read-only mapping over ``'start'``, ``'descriptors'``, ``'stop'``, ``'ext'``.
    Two headers are equal when their start documents are.
    """

    def __init__(self, broker: Broker, run: RunClient) -> None:
        self.db = broker
        self._run = run
        self._start = run.metadata["start"]
        self._stop = run.metadata.get("stop")
        self._stream_nodes: dict[str, Any] = {}
        fetched = {}
        if getattr(broker, "external_fetchers", None):  # 1.2.5's ext.<name> per fetcher
            fetched = broker.fetch_external(self.start, self.stop)
        self.ext = SimpleNamespace(**fetched)

    # -- documents -----------------------------------------------------------------------

    @property
    def start(self) -> dict:
        return self.db.prepare_hook("start", self._start)

    @property
    def stop(self) -> dict:
        """The stop document, or an empty one while the run is still going."""
        if self._stop is None:
            self._stop = self._run.refresh().metadata.get("stop")
        return self.db.prepare_hook("stop", self._stop or {})

    @property
    def uid(self) -> str:
        return self._start["uid"]

    @functools.cached_property
    def stream_names(self) -> list[str]:
        names = self._run.metadata.get("summary", {}).get("stream_names")
        return list(self._run) if names is None else list(names)

    def _stream(self, name: str) -> Any:
        """The stream's client node (one request, made once), or None if there is none."""
        if name not in self._stream_nodes:
            found = self._run[name] if name in self.stream_names else None
            self._stream_nodes[name] = found
        return self._stream_nodes[name]

    @property
    def descriptors(self) -> list[dict]:
        """Every stream's descriptors, newest first."""
        docs = [d for name in self.stream_names for d in self._stream_descriptors(name)]
        docs.sort(key=lambda d: d["time"], reverse=True)
        return [self.db.prepare_hook("descriptor", d) for d in docs]

    def _stream_descriptors(self, stream_name: str) -> list[dict]:
        """One stream's descriptors, newest first (plain dicts, for internal use)."""
        stream = self._stream(stream_name)
        docs = [] if stream is None else list(stream.descriptors)
        return sorted(docs, key=lambda d: d["time"], reverse=True)

    def _external_keys(self, stream_name: str) -> set[str]:
        return {
            k
            for d in self._stream_descriptors(stream_name)
            for k, v in d["data_keys"].items()
            if v.get("external")
        }

    # -- mapping over start/descriptors/stop/ext ----------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key in KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self) -> Iterator[str]:
        yield from KEYS

    def values(self) -> Iterator[Any]:
        for key in KEYS:
            yield getattr(self, key)

    def items(self) -> Iterator[tuple[str, Any]]:
        for key in KEYS:
            yield key, getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Header) and self._start == other._start

    __hash__ = None  # type: ignore[assignment]  # equal by content and mutable, as in 1.2.5

    # -- data --------------------------------------------------------------------------

    def table(
        self,
        stream_name: str = "primary",
        fields: list[str] | None = None,
        fill: bool | Iterable[str] = False,
        timezone: str | None = None,
        convert_times: bool = True,
        localize_times: bool = True,
    ) -> pd.DataFrame:
        """One stream as a DataFrame indexed by ``seq_num``: ``time`` then the fields.

        ``timezone`` is accepted and, as in Databroker 1.2.5, not used: times are naive UTC.
        """
        return _documents.table(self, stream_name, fields, fill, convert_times, localize_times)

    def documents(
        self, stream_name: Any = ALL, fields: list[str] | None = None, fill: bool = False
    ) -> Iterator[tuple[str, dict]]:
        """``(name, doc)`` for every document, event pages unpacked into events."""
        yield from _documents.documents(self, stream_name, fields, fill, self.db.prepare_hook)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, dict]]:
        warnings.warn(
            "The 'stream' method been renamed to 'documents'. The old name will be removed "
            "in the future.",
            stacklevel=2,
        )
        yield from self.documents(*args, **kwargs)

    def events(
        self,
        stream_name: str = "primary",
        fields: list[str] | None = None,
        fill: bool | Iterable[str] = False,
    ) -> Iterator[dict]:
        """The stream's events, one by one."""
        for name, doc in _documents.documents(
            self, stream_name, fields, fill, self.db.prepare_hook
        ):
            if name == "event":
                yield doc

    def data(self, field: str, stream_name: str = "primary", fill: bool = True) -> Iterator[Any]:
        """The values of one field, event by event (detector images filled by default)."""
        for event in self.events(stream_name, [field], fill):
            yield event["data"][field]

    def fields(self, stream_name: Any = ALL) -> set[str]:
        return {
            k
            for d in self.descriptors
            if stream_name is ALL or d.get("name") == stream_name
            for k in d["data_keys"]
        }

    def devices(self, stream_name: Any = ALL) -> set[str]:
        return {
            obj
            for d in self.descriptors
            if stream_name is ALL or d.get("name", "primary") == stream_name
            for obj in d.get("object_keys", {})
        }

    def config_data(self, device_name: str) -> dict[str, list[dict]]:
        """``{stream_name: [configuration data, one per descriptor, oldest first]}``."""
        result: dict[str, list[dict]] = defaultdict(list)
        for d in sorted(self.descriptors, key=lambda d: d["time"]):
            config = (d.get("configuration") or {}).get(device_name)
            if config:
                result[d.get("name")].append(config["data"])
        return dict(result)

    def xarray(self, stream_name: str = "primary") -> xarray.Dataset:
        """Every field, detector images read (as 1.2.5's v2 ``read()`` filled them)."""
        stream = self._run[stream_name]
        return stream.read([c for c in stream["data"].columns if c != "time"])

    def xarray_dask(self, stream_name: str = "primary") -> xarray.Dataset:
        """The stream as xarray over dask arrays: nothing is read until computed."""
        from ._lazy import lazy_dataset

        return lazy_dataset(self._run[stream_name])

    # -- display -------------------------------------------------------------------------

    def __repr__(self) -> str:
        start = self._start
        when = datetime.fromtimestamp(start["time"]).strftime("%Y-%m-%d %H:%M:%S")
        plan = f" plan_name={start['plan_name']!r}" if "plan_name" in start else ""
        scan = f" scan_id={start['scan_id']}" if "scan_id" in start else ""
        return f"<Header uid={self.uid[:8]!r}{scan}{plan} {when}>"

    def _repr_html_(self) -> str:
        parts = [_html(self._start, "Start"), _html(self._stop or {}, "Stop")]
        descs = "".join(
            f"<tr><td>{_html(d, str(d.get('name')))}</td></tr>" for d in self.descriptors
        )
        parts.append(f"<table><caption>Descriptors</caption>{descs}</table>")
        return "<table>" + "".join(f"<tr><td>{p}</td></tr>" for p in parts) + "</table>"


def _html(doc: Any, caption: str | None = None) -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rows = []
    for key in sorted(doc, key=str):
        value = doc[key]
        if isinstance(value, dict):
            cell = _html(value)
        elif isinstance(value, list | tuple):
            cell = (
                "<table>"
                + "".join(
                    f"<tr><td>{_html(v) if isinstance(v, dict) else html.escape(str(v))}</td></tr>"
                    for v in value
                )
                + "</table>"
            )
        elif key == "time" and isinstance(value, int | float):
            cell = html.escape(datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S"))
        else:
            cell = html.escape(str(value))
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{cell}</td></tr>")
    return f"<table>{cap}{''.join(rows)}</table>"
