"""Gather consecutive events of one descriptor into columns, so a batch becomes one append."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from bluebroker.catalog import columns as col

_DIGEST_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def digest(doc: Any) -> bytes:
    """A fingerprint of a document's content, independent of key order and of numpy-vs-list."""
    return hashlib.blake2b(
        orjson.dumps(doc, default=_default, option=_DIGEST_OPTS), digest_size=16
    ).digest()


def _number(value: Any) -> Any:
    """Numbers as floats (and numeric arrays as float arrays), so an event digests the same
    whether it came alone (``1``) or inside a page (``1.0`` in a float64 column)."""
    kind = type(value)
    if kind is float:  # the common case first: this runs for every value of every event
        return value
    if kind is int:
        return float(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    if isinstance(value, list | tuple):
        return [_number(v) for v in value]
    return value


def event_digest(
    descriptor: str, uid: str, seq_num: Any, time: Any, data: dict, timestamps: dict
) -> bytes:
    """The fingerprint of one event's content; ``filled`` is left out (it describes how the
    document was prepared, not what was measured)."""
    return digest(
        {
            "descriptor": descriptor,
            "uid": uid,
            "seq_num": int(seq_num),
            "time": float(time),
            "data": {k: _number(v) for k, v in data.items()},
            "timestamps": {k: _number(v) for k, v in timestamps.items()},
        }
    )


def page_digests(page: dict) -> list[bytes]:
    """:func:`event_digest` of every event of an event_page."""
    data = {k: [_number(v) for v in values] for k, values in page["data"].items()}
    ts = {k: [_number(v) for v in values] for k, values in page["timestamps"].items()}
    return [
        event_digest(
            page["descriptor"],
            uid,
            page["seq_num"][i],
            page["time"][i],
            {k: v[i] for k, v in data.items()},
            {k: v[i] for k, v in ts.items()},
        )
        for i, uid in enumerate(page["uid"])
    ]


@dataclass
class DescriptorInfo:
    """What the writer needs to know about a descriptor to place its events."""

    id: int
    run_id: int
    stream_id: int
    data_keys: dict[str, dict]
    digest: bytes

    @property
    def stream_keys(self) -> set[str]:
        """Keys whose data arrive through stream_datum, never in events."""
        return {k for k, v in self.data_keys.items() if v.get("external") == "STREAM:"}


@dataclass
class Item:
    """One event or event_page inside a segment: which rows it owns and where it came from."""

    index: int  # position in the batch
    name: str
    doc: dict
    uids: list[str]
    digests: list[bytes]
    log: dict  # its entry in the batch's document log, dropped if the item is not written


@dataclass
class Segment:
    """Rows for one descriptor, as column pieces (lists of single values or page arrays)."""

    desc: DescriptorInfo
    items: list[Item] = field(default_factory=list)
    pieces: dict[str, list[Any]] = field(default_factory=dict)
    nrows: int = 0
    # Consecutive single events with the same data keys wait here and become column pieces
    # in one pass per column (:meth:`_settle`): per-event, per-column work was the writer's
    # largest cost at 10,000 events/s.
    _events: list[dict] = field(default_factory=list)
    _event_keys: Any = None

    def _put(self, column: str, values: Any) -> None:
        pieces = self.pieces.setdefault(column, [])
        if self.nrows and not pieces:  # a column first seen after some rows: pad with None
            pieces.append([None] * self.nrows)
        pieces.append(values)

    def _pad(self, rows: int, present: set[str]) -> None:
        for column, pieces in self.pieces.items():
            if column not in present:
                pieces.append([None] * rows)

    def add_event(self, item: Item) -> None:
        keys = item.doc["data"].keys()
        if self._events and keys != self._event_keys:
            self._settle()
        if not self._events:
            self._event_keys = keys
        self._events.append(item.doc)
        self.items.append(item)

    def _settle(self) -> None:
        """Turn the waiting single events into one piece per column."""
        docs, self._events = self._events, []
        if not docs:
            return
        rows = len(docs)
        present = {"time", "seq_num"}
        self._put("time", [d["time"] for d in docs])
        self._put("seq_num", [d["seq_num"] for d in docs])
        for key in self._event_keys:
            self._put(f"data/{key}", [d["data"][key] for d in docs])
            self._put(f"timestamps/{key}", [d["timestamps"].get(key) for d in docs])
            present.update((f"data/{key}", f"timestamps/{key}"))
        self._pad(rows, present)
        self.nrows += rows

    @property
    def row_count(self) -> int:
        """Rows held, including single events not yet turned into columns."""
        return self.nrows + len(self._events)

    def add_page(self, item: Item) -> None:
        self._settle()
        doc = item.doc
        rows = len(doc["seq_num"])
        present = {"time", "seq_num"}
        self._put("time", doc["time"])
        self._put("seq_num", doc["seq_num"])
        for key, values in doc["data"].items():
            self._put(f"data/{key}", values)
            self._put(f"timestamps/{key}", doc["timestamps"].get(key, [None] * rows))
            present.update((f"data/{key}", f"timestamps/{key}"))
        self._pad(rows, present)
        self.nrows += rows
        self.items.append(item)

    def columns(self, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The segment as arrays, one per stored column, keeping only rows where ``keep``."""
        self._settle()
        out = {}
        for column, pieces in self.pieces.items():
            dtype_numpy = None
            if column.startswith("data/"):
                key = self.desc.data_keys.get(column[5:], {})
                # an external field's values are datum ids: its dtype_numpy is the detector
                # file's (a bool camera would turn each id into True)
                dtype_numpy = None if key.get("external") else key.get("dtype_numpy")
            elif column in ("time",) or column.startswith("timestamps/"):
                dtype_numpy = "float64"
            arrays = [col.to_array(p, dtype_numpy) for p in pieces]
            arr = arrays[0] if len(arrays) == 1 else _concat(arrays)
            out[column] = arr if keep is None else arr[keep]
        return out


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    try:
        return np.concatenate(arrays)
    except ValueError:  # different per-row shapes: keep each row as its own object
        rows = [row for a in arrays for row in a]
        out = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            out[i] = row
        return out
