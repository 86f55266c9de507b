"""Compare a migrated run with what its RunEngine emitted, page form aside.

A migration stores events and datums as pages (they were one per Mongo document), so the
documents are compared one logical document at a time: every start, descriptor, resource,
datum, event and stop emitted is stored, equal, and nothing else is.
"""

from __future__ import annotations

import numpy as np
from event_model import unpack_datum_page, unpack_event_page

from tests.compare import events_by_stream, same


def logical(docs) -> dict[str, dict]:
    """``{kind: {id: doc}}`` with pages unpacked into events and datums."""
    out: dict[str, dict] = {}
    for name, doc in docs:
        if name == "event_page":
            name, items = "event", list(unpack_event_page(doc))
        elif name == "datum_page":
            name, items = "datum", list(unpack_datum_page(doc))
        else:
            items = [doc]
        for item in items:
            key = item.get("datum_id") if name == "datum" else item["uid"]
            assert key not in out.setdefault(name, {}), (name, key)
            out[name][key] = item
    return out


def assert_migrated(run, docs) -> None:
    """Values, dtypes, shapes, seq_num, times and every document as emitted."""
    start = next(d for n, d in docs if n == "start")
    assert run.uid == start["uid"]
    assert same(run.metadata["start"], start)
    stop = [d for n, d in docs if n == "stop"]
    assert same(run.metadata["stop"], stop[0] if stop else None)
    assert sorted(run) == sorted({d["name"] for n, d in docs if n == "descriptor"})
    for stream_name, events in events_by_stream(docs).items():
        stream = run[stream_name]
        data = stream["data"]
        table = data.read()
        assert list(table.index) == [e["seq_num"] for e in events]
        np.testing.assert_array_equal(table["time"].to_numpy(), [e["time"] for e in events])
        for key, info in stream.data_keys.items():
            if info.get("external"):
                continue
            expected = np.asarray([e["data"][key] for e in events])
            got = data[key].read()
            assert got.dtype == expected.dtype, (stream_name, key, got.dtype, expected.dtype)
            np.testing.assert_array_equal(got, expected)
            ts = stream["timestamps"][key].read()
            np.testing.assert_array_equal(ts, [e["timestamps"][key] for e in events])
    stored, emitted = logical(run.documents()), logical(docs)
    assert stored.keys() == emitted.keys()
    for kind, expected in emitted.items():
        assert stored[kind].keys() == expected.keys(), kind
        for key, doc in expected.items():
            assert same(stored[kind][key], doc), (kind, stored[kind][key], doc)
