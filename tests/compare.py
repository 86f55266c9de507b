"""Compare what the catalog reads back with what the RunEngine emitted."""

from __future__ import annotations

import math

import numpy as np
from event_model import unpack_event_page


def same(a, b) -> bool:
    """Deep equality that understands numpy arrays and NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.all((a == b) | ((a != a) & (b != b))))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.generic):
        a = a.item()  # msgpack stores numpy scalars as plain numbers, like the wire does
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def events_by_stream(docs) -> dict[str, list[dict]]:
    streams = {d["uid"]: d["name"] for n, d in docs if n == "descriptor"}
    out: dict[str, list[dict]] = {}
    for name, doc in docs:
        if name == "event":
            out.setdefault(streams[doc["descriptor"]], []).append(doc)
        elif name == "event_page":
            out.setdefault(streams[doc["descriptor"]], []).extend(unpack_event_page(doc))
    return out


def assert_run_matches(run, docs) -> None:
    """Values, dtypes, shapes, seq_num, timestamps and document order all as emitted."""
    start = next(d for n, d in docs if n == "start")
    assert run.uid == start["uid"]
    assert same(run.metadata["start"], start)
    by_stream = events_by_stream(docs)
    assert sorted(run) == sorted({d["name"] for n, d in docs if n == "descriptor"})
    for stream_name, events in by_stream.items():
        stream = run[stream_name]
        data = stream["data"]
        assert len(data) == len(events)
        table = data.read()
        assert list(table.index) == [e["seq_num"] for e in events]
        assert table.index.name == "seq_num"
        np.testing.assert_array_equal(table["time"].to_numpy(), [e["time"] for e in events])
        keys = {k: v for k, v in stream.data_keys.items() if not v.get("external")}
        for key in keys:
            expected = np.asarray([e["data"][key] for e in events])
            got = data[key].read()
            assert got.dtype == expected.dtype, (stream_name, key, got.dtype, expected.dtype)
            assert got.shape == expected.shape, (stream_name, key)
            np.testing.assert_array_equal(got, expected)
            assert data[key].shape == expected.shape
            ts = stream["timestamps"][key].read()
            np.testing.assert_array_equal(ts, [e["timestamps"][key] for e in events])
    stored = list(run.documents())
    assert [n for n, _ in stored] == [n for n, _ in docs]
    for (name, got), (_, expected) in zip(stored, docs, strict=True):
        assert same(got, expected), (name, got, expected)
