"""Event columns: appended in chunks, merged as the stream grows, read by row range."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sqlalchemy as sa
from bluesky import plans as bp
from ophyd.sim import SynSignal, det1, motor

from bluebroker.catalog import columns as col
from bluebroker.catalog.schema import chunks


def _chunks(cat, column):
    with cat.connect() as conn:
        return conn.execute(
            sa.select(chunks.c.start_row, chunks.c.stop_row, chunks.c.tier)
            .where(chunks.c.column == column)
            .order_by(chunks.c.start_row)
        ).all()


def test_single_event_appends_are_merged(RE, writer):
    RE.subscribe(writer)
    RE(bp.scan([det1], motor, 0, 1, 300))
    stored = _chunks(writer.catalog, "data/motor")
    # 300 one-row appends end up as a handful of chunks that tile the rows exactly.
    assert len(stored) < 40
    assert stored[0].start_row == 0 and stored[-1].stop_row == 300
    assert all(a.stop_row == b.start_row for a, b in itertools.pairwise(stored))
    values = writer.catalog["bmm/raw"][-1]["primary"]["data"]["motor"].read()
    np.testing.assert_allclose(values, np.linspace(0, 1, 300))


def test_slices_read_only_what_they_ask_for(RE, writer, monkeypatch):
    RE.subscribe(writer)
    RE(bp.scan([det1], motor, 0, 1, 100))
    node = writer.catalog["bmm/raw"][-1]["primary"]["data"]["motor"]
    expected = np.linspace(0, 1, 100)
    decoded = []
    real_decode = col.decode
    monkeypatch.setattr(col, "decode", lambda *a: decoded.append(a[3]) or real_decode(*a))
    np.testing.assert_allclose(node[:5], expected[:5])
    assert sum(decoded) == 5  # bytes cut in SQL: five rows decoded, not the whole chunk
    decoded.clear()
    np.testing.assert_allclose(node[90:95], expected[90:95])
    np.testing.assert_allclose(node[::-7], expected[::-7])
    np.testing.assert_allclose(node[-1], expected[-1])
    np.testing.assert_allclose(node[10:80:3], expected[10:80:3])
    assert node[5:5].shape == (0,)
    with pytest.raises(IndexError, match="out of bounds"):
        node[100]


def test_column_codec_round_trips():
    cases = [
        np.arange(10, dtype=">i4"),
        np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 2, 2),
        np.array([True, False]),
        col.to_array(["a", "bb", "ccc"]),
        col.to_array([[1, 2], [3]]),  # ragged
    ]
    for arr in cases:
        dtype, shape, payload = col.encode(arr)
        back = col.decode(dtype, shape, payload, len(arr))
        assert len(back) == len(arr)
        for a, b in zip(arr, back, strict=True):
            np.testing.assert_array_equal(a, b)
        if dtype != col.OBJECT:
            assert back.dtype == arr.dtype.newbyteorder("<")


def test_strings_and_mixed_fields(RE, writer):
    label = SynSignal(func=lambda: "sample-A", name="label")
    RE.subscribe(writer)
    RE(bp.count([label, det1], num=20))
    table = writer.catalog["bmm/raw"][-1]["primary"]["data"].read()
    assert table["label"].tolist() == ["sample-A"] * 20
    assert table["det1"].dtype == np.float64
