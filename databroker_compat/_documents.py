"""Events, documents and tables of a run with Databroker 1.2.5's semantics.

``fields`` are regular expressions matched against whole field names; when given, matching
configuration readings and start/stop keys are merged into every event (and table row), as
1.2.5 did. Event pages come out as single events, datum pages as datums.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ._header import Header


class ALL:
    """Sentinel: every stream (the default ``stream_name`` of documents() and fields())."""


def field_pattern(fields: Iterable[str]) -> re.Pattern:
    """One pattern matching any of ``fields`` (regular expressions) in full."""
    fields = list(fields) or [".*"]
    return re.compile("|".join(f"(?:{f})\\Z" for f in fields))


class Projection:
    """What ``fields=`` keeps of one descriptor's events and what it merges in."""

    def __init__(self, header: Header, descriptor: dict, fields: list[str] | None) -> None:
        keys = list(descriptor["data_keys"])
        self.extra: dict[str, Any] = {}
        self.extra_ts: dict[str, float] = {}
        if fields is None:
            self.keep = keys
            self.discard: set[str] = set()
            return
        pattern = field_pattern(fields)
        self.keep = [k for k in keys if pattern.match(k)]
        self.discard = set(keys) - set(self.keep)
        selected = set(self.keep)
        config_data: dict[str, Any] = {}
        config_ts: dict[str, Any] = {}
        for reading in (descriptor.get("configuration") or {}).values():
            config_data.update(reading.get("data", {}))
            config_ts.update(reading.get("timestamps", {}))
        start, stop = dict(header.start), dict(header.stop or {})
        sources = [
            (config_data, config_ts),
            (start, dict.fromkeys(start, start.get("time"))),
            (stop, dict.fromkeys(stop, stop.get("time"))),
        ]
        for data, ts in sources:  # the descriptor's configuration, then start, then stop
            found = {k for k in data if pattern.match(k)} - selected
            self.extra.update({k: data[k] for k in found})
            self.extra_ts.update({k: ts.get(k) for k in found})
            selected |= found

    def apply(self, event: dict) -> dict:
        data = {k: v for k, v in event["data"].items() if k not in self.discard}
        data.update(self.extra)
        ts = {k: v for k, v in event["timestamps"].items() if k not in self.discard}
        ts.update(self.extra_ts)
        return {**event, "data": data, "timestamps": ts}


def unpack_event_page(page: dict) -> Iterator[dict]:
    for i, uid in enumerate(page["uid"]):
        yield {
            "uid": uid,
            "descriptor": page["descriptor"],
            "seq_num": page["seq_num"][i],
            "time": page["time"][i],
            "data": {k: v[i] for k, v in page["data"].items()},
            "timestamps": {k: v[i] for k, v in page["timestamps"].items()},
            "filled": {k: v[i] for k, v in (page.get("filled") or {}).items()},
        }


def unpack_datum_page(page: dict) -> Iterator[dict]:
    kwargs = page["datum_kwargs"]
    for i, datum_id in enumerate(page["datum_id"]):
        yield {
            "datum_id": datum_id,
            "resource": page["resource"],
            "datum_kwargs": {k: v[i] for k, v in kwargs.items()},
        }


def documents(
    header: Header,
    stream_name: Any = ALL,
    fields: list[str] | None = None,
    fill: bool | Iterable[str] = False,
    wrap: Callable[[str, dict], dict] | None = None,
) -> Iterator[tuple[str, dict]]:
    """The run's documents, in order: events of ``stream_name`` only (pages unpacked),
    ``fields`` applied, external fields filled when ``fill`` says so."""
    wrap = wrap or (lambda name, doc: doc)
    projections: dict[str, Projection] = {}
    streams: dict[str, str] = {}
    rows: dict[str, int] = {}
    filler = Filler(header, fill)
    for name, doc in header._run.documents():
        if name == "stop" and doc is None:
            doc = {}
        if name == "descriptor":
            stream = doc.get("name", "primary")
            if stream_name is not ALL and stream != stream_name:
                continue
            projections[doc["uid"]] = Projection(header, doc, fields)
            streams[doc["uid"]] = stream
            yield name, wrap(name, doc)
        elif name in ("event", "event_page"):
            if doc["descriptor"] not in projections:
                continue
            stream = streams[doc["descriptor"]]
            events = [doc] if name == "event" else unpack_event_page(doc)
            for event in events:
                row = rows.get(stream, 0)
                rows[stream] = row + 1
                event = projections[doc["descriptor"]].apply(event)
                if not event["data"]:
                    continue
                yield "event", wrap("event", filler.fill(stream, row, event))
        elif name == "datum_page":
            for datum in unpack_datum_page(doc):
                yield "datum", wrap("datum", datum)
        else:
            yield name, wrap(name, doc)


class Filler:
    """Replace datum ids by the data, read from the server one event's worth at a time."""

    def __init__(self, header: Header, fill: bool | Iterable[str]) -> None:
        self.header = header
        self.fields = None if fill is True else set() if not fill else set(fill)
        self.enabled = bool(fill)
        self._arrays: dict[tuple[str, str], Any] = {}

    def fill(self, stream: str, row: int, event: dict) -> dict:
        if not self.enabled:
            return event
        external = self.header._external_keys(stream)
        targets = [
            k for k in event["data"] if k in external and (self.fields is None or k in self.fields)
        ]
        if not targets:
            return event
        data, filled = dict(event["data"]), dict(event.get("filled") or {})
        for key in targets:
            if (stream, key) not in self._arrays:
                self._arrays[stream, key] = self.header._stream(stream)["data"][key]
            filled[key] = data[key]  # the datum id it was filled from, as event-model does
            data[key] = self._arrays[stream, key][row]
        return {**event, "data": data, "filled": filled}


def table(
    header: Header,
    stream_name: str = "primary",
    fields: list[str] | None = None,
    fill: bool | Iterable[str] = False,
    convert_times: bool = True,
    localize_times: bool = True,
) -> pd.DataFrame:
    """One stream as a DataFrame, as Databroker 1.2.5's ``get_table`` built it.

    The index is ``seq_num`` (the events' own numbers); ``time`` comes first, then the data
    keys in descriptor order, then anything ``fields`` merged in from configuration or the
    start/stop documents. Times become naive UTC datetime64 unless both ``convert_times`` and
    ``localize_times`` are False (1.2.5 never converted to a local zone). Descriptors are
    taken newest first and their rows concatenated in that order, as 1.2.5 did.
    """
    frames = _frames(header, stream_name, fields, fill)
    if not frames:
        empty = pd.DataFrame()
        empty.index.name = "seq_num"
        return empty
    result = pd.concat(frames) if len(frames) > 1 else frames[0]
    if convert_times or localize_times:
        result["time"] = pd.to_datetime(result["time"].to_numpy(dtype=float), unit="s")
    result.index.name = "seq_num"
    return result


def _frames(
    header: Header, stream_name: str, fields: list[str] | None, fill: bool | Iterable[str]
) -> list[pd.DataFrame]:
    """The table's pieces, by the cheapest route that gives 1.2.5's answer."""
    if fields is None and not fill:  # the common call, h.table(): one request
        quick = _table_in_one_request(header, stream_name)
        if quick is not None:  # 1.2.5 dropped a descriptor without fields
            return [quick] if len(quick.columns) > 1 else []
    descriptors = header._stream_descriptors(stream_name)
    if len(descriptors) == 1:  # columns straight from the table, filled or not
        frame = _table_fast(header, descriptors[0], stream_name, fields, fill)
        return [] if frame is None else [frame]
    return _tables_from_events(header, descriptors, stream_name, fields, fill)


def _table_in_one_request(header: Header, stream_name: str) -> pd.DataFrame | None:
    """The whole stream as stored (datum ids for detector fields) in one request, when it
    came from a single descriptor; None when the per-descriptor path is needed."""
    from bluebroker.client import NotFoundError
    from bluebroker.client.table import read_table

    run = header._run
    try:
        frame = read_table(run._transport, (*run.path, stream_name, "data"), fill=False)
    except NotFoundError:
        return pd.DataFrame()  # no such stream: the empty table
    if frame.attrs.get("descriptors") != "1":
        return None
    frame.index = frame.index.to_numpy()
    return frame


def _fill_set(fill: bool | Iterable[str], external: set[str]) -> set[str]:
    if fill is True:
        return set(external)
    return set(fill or ()) & external


def _table_fast(
    header: Header,
    descriptor: dict,
    stream_name: str,
    fields: list[str] | None,
    fill: bool | Iterable[str],
) -> pd.DataFrame | None:
    projection = Projection(header, descriptor, fields)
    if not projection.keep and not projection.extra:
        return None
    external = header._external_keys(stream_name)
    to_fill = _fill_set(fill, external)
    data = header._stream(stream_name)["data"]
    keep = projection.keep
    unfilled = [k for k in keep if k in external and k not in to_fill]
    plain = [k for k in keep if k not in unfilled]
    frame = data.read(["time", *plain]) if plain or not unfilled else None
    if unfilled:
        ids = data.read(unfilled, fill=False)
        frame = ids if frame is None else frame.join(ids)
        if "time" not in frame:
            frame.insert(0, "time", data.read(["time"])["time"])
    assert frame is not None
    frame = frame[["time", *keep]]
    frame.index = frame.index.to_numpy()
    for key in keep:
        if key in to_fill:  # images as one ndarray per row, as filled events carry them
            frame[key] = [_ndarray(cell) for cell in frame[key]]
    for key, value in projection.extra.items():
        frame[key] = [value] * len(frame) if isinstance(value, list | dict) else value
    return frame


def _ndarray(cell: Any) -> Any:
    """A row of a filled column as one ndarray (Arrow hands nested lists over as arrays of
    arrays)."""
    if isinstance(cell, np.ndarray) and cell.dtype == object and len(cell):
        return np.stack([_ndarray(c) for c in cell])
    return cell


def _tables_from_events(
    header: Header,
    descriptors: list[dict],
    stream_name: str,
    fields: list[str] | None,
    fill: bool | Iterable[str],
) -> list[pd.DataFrame]:
    """Several descriptors in one stream: rebuild each one's rows from its events."""
    by_descriptor: dict[str, list[dict]] = {d["uid"]: [] for d in descriptors}
    for name, event in documents(header, stream_name, fields, fill):
        if name == "event":
            by_descriptor[event["descriptor"]].append(event)
    frames = []
    for descriptor in descriptors:
        events = by_descriptor[descriptor["uid"]]
        projection = Projection(header, descriptor, fields)
        columns = [k for k in descriptor["data_keys"] if k not in projection.discard]
        columns += [k for k in projection.extra if k not in columns]
        if not columns:
            continue
        index = [e["seq_num"] for e in events]
        frame = pd.DataFrame(index=index)
        frame["time"] = [e["time"] for e in events]
        for key in columns:
            frame[key] = [e["data"].get(key) for e in events]
        frames.append(frame)
    return frames
