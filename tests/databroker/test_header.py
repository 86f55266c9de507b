"""Header: documents, tables (Databroker 1.2.5's get_table semantics), fields, devices,
config, filled and unfilled detector data, xarray; all against what the RunEngine emitted."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from ophyd.sim import det, det1, det2, motor, motor1

from tests.compare import same
from tests.devices import HDF5Camera


def plain(doc):
    """A document as plain dicts (what the RunEngine emitted), without dot-access warnings."""
    if isinstance(doc, dict):
        return {k: plain(v) for k, v in dict.items(doc)}
    return doc


def _events(recorder, stream="primary"):
    descs = {d["uid"] for n, d in recorder if n == "descriptor" and d["name"] == stream}
    return [d for n, d in recorder if n == "event" and d["descriptor"] in descs]


def test_table_matches_the_events(RE_db, db, recorder):
    RE_db(bpp.baseline_wrapper(bp.scan([det1, det2], motor, -1, 1, 5), [motor1]))
    h = db[-1]
    events = _events(recorder)
    desc = next(d for n, d in recorder if n == "descriptor" and d["name"] == "primary")
    table = h.table()
    assert table.index.name == "seq_num"
    assert list(table.index) == [e["seq_num"] for e in events]
    assert list(table.columns) == ["time", *desc["data_keys"]]
    expected_times = pd.to_datetime([e["time"] for e in events], unit="s")
    assert table["time"].dtype == "datetime64[ns]"  # naive UTC, as 1.2.5 gave
    assert list(table["time"]) == list(expected_times)
    for key in desc["data_keys"]:
        assert list(table[key]) == [e["data"][key] for e in events]
    raw = h.table(convert_times=False, localize_times=False)
    assert list(raw["time"]) == [e["time"] for e in events]
    assert h.table(convert_times=False)["time"].dtype == "datetime64[ns]"  # localize implies it
    baseline = h.table("baseline")
    assert len(baseline) == 2 and "motor1" in baseline
    assert list(h.table(fields=["det1"]).columns) == ["time", "det1"]
    assert list(h.table(fields=["det[12]"]).columns) == ["time", "det1", "det2"]
    assert "det2_center" in h.table(fields=["det.*"])  # configuration matches, as in 1.2.5
    assert db.get_table(h, fields=["det2"]).equals(h.table(fields=["det2"]))
    missing = h.table("no_such_stream")
    assert missing.empty and missing.index.name == "seq_num"
    assert h.table(fields=["nothing"]).empty
    both = db.get_table([h, h])
    assert len(both) == 2 * len(table)


def test_fields_merge_configuration_and_start_keys(RE_db, db, recorder):
    RE_db(bp.count([det], num=3), sample="Cu")
    h = db[-1]
    table = h.table(fields=["det", "det_Imax", "sample"])
    assert list(table.columns) == ["time", "det", "det_Imax", "sample"]
    desc = next(d for n, d in recorder if n == "descriptor")
    imax = desc["configuration"]["det"]["data"]["det_Imax"]
    assert list(table["det_Imax"]) == [imax] * 3 and list(table["sample"]) == ["Cu"] * 3
    event = next(h.events(fields=["det", "sample"]))
    assert event["data"] == {"det": _events(recorder)[0]["data"]["det"], "sample": "Cu"}


def test_several_descriptors_are_concatenated_newest_first(RE_db, db, recorder):
    def plan():
        yield from bps.open_run()
        yield from bps.trigger_and_read([det])
        yield from bps.configure(det, {"Imax": 3})  # a new configuration: a new descriptor
        yield from bps.trigger_and_read([det])
        yield from bps.trigger_and_read([det])
        yield from bps.close_run()

    RE_db(plan())
    descs = [d for n, d in recorder if n == "descriptor"]
    assert len(descs) == 2
    events = _events(recorder)
    table = db[-1].table()
    by_desc = {d["uid"]: [e for e in events if e["descriptor"] == d["uid"]] for d in descs}
    newest_first = by_desc[descs[1]["uid"]] + by_desc[descs[0]["uid"]]
    assert list(table.index) == [e["seq_num"] for e in newest_first]
    assert list(table["det"]) == [e["data"]["det"] for e in newest_first]
    config = db[-1].config_data("det")
    assert [c["det_Imax"] for c in config["primary"]] == [
        d["configuration"]["det"]["data"]["det_Imax"] for d in descs
    ]


def test_detector_data_unfilled_and_filled(RE_db, db, recorder, tmp_path):
    cam = HDF5Camera("cam", tmp_path, shape=(6, 5))
    RE_db(bp.count([cam, det1], num=4))
    h = db[-1]
    events = _events(recorder)
    datum_ids = [e["data"]["cam"] for e in events]
    assert list(h.table()["cam"]) == datum_ids
    filled = h.table(fill=True)
    for frame, expected in zip(filled["cam"], cam.frames, strict=True):
        assert frame.dtype == expected.dtype
        np.testing.assert_array_equal(frame, expected)
    assert list(h.table(fill=["det1"])["cam"]) == datum_ids  # only the named fields fill
    frames = list(h.data("cam"))
    np.testing.assert_array_equal(np.stack(frames), np.stack(cam.frames))
    event = next(h.events(fill=True))
    assert event["filled"]["cam"] == datum_ids[0]
    images = db.get_images(h, "cam")
    assert len(images) == 4 and images.frame_shape == (6, 5)
    np.testing.assert_array_equal(images[2], cam.frames[2])
    np.testing.assert_array_equal(np.stack(list(images[1:3])), np.stack(cam.frames[1:3]))
    with pytest.raises(IndexError, match="there are 4 frames"):
        images[10]
    lazy = h.xarray_dask()
    np.testing.assert_array_equal(lazy["cam"][3].compute().values, cam.frames[3])
    assert lazy["det1"].dims == ("time",)


def test_documents_events_and_metadata(RE_db, db, recorder):
    RE_db(bp.scan([det1], motor, 0, 1, 3), sample="Cu")
    h = db[-1]
    names = [n for n, _ in recorder]
    got = list(h.documents())
    assert [n for n, _ in got] == names
    for (_, doc), (_, emitted) in zip(got, recorder, strict=True):
        assert same(plain(doc), emitted), (doc, emitted)
    assert list(db.restream(h)) == got
    seen = []
    db.process(h, lambda name, doc: seen.append(name))
    assert seen == names
    assert same([plain(e) for e in h.events()], _events(recorder))
    assert list(db.get_events(h)) == list(h.events())
    assert list(h.data("det1")) == [e["data"]["det1"] for e in _events(recorder)]
    assert h.fields() == {"det1", "motor", "motor_setpoint"}
    assert db.get_fields(h, "primary") == h.fields("primary")
    assert h.devices() == {"det1", "motor"}
    assert h.stream_names == ["primary"]
    start = next(d for n, d in recorder if n == "start")
    stop = next(d for n, d in recorder if n == "stop")
    assert same(plain(h.start), start) and h.uid == start["uid"]
    assert same(plain(h.stop), stop)
    assert h["start"] == h.start and list(h.keys()) == ["start", "descriptors", "stop", "ext"]
    with pytest.raises(KeyError):
        h["events"]
    assert h == db[start["uid"]] and h != start["uid"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert h.start.sample == "Cu"
    assert "Dot access may be removed" in str(caught[0].message)
    with pytest.raises(TypeError):
        h.start["sample"] = "Fe"  # documents are read-only
    assert "<table>" in h._repr_html_() and "Cu" in h._repr_html_()
    ds = h.xarray()
    assert ds["det1"].dims == ("time",) and list(ds["det1"].values) == list(h.table()["det1"])


def test_descriptors_newest_first_across_streams(RE_db, db, recorder):
    RE_db(bpp.baseline_wrapper(bp.count([det1], num=2), [motor1]))
    descs = [d for n, d in recorder if n == "descriptor"]
    got = db[-1].descriptors
    assert [d["uid"] for d in got] == [
        d["uid"] for d in sorted(descs, key=lambda d: d["time"], reverse=True)
    ]
    assert sorted(db[-1].stream_names) == ["baseline", "primary"]


def test_event_pages_come_out_as_events(db):
    from event_model import compose_run

    bundle = compose_run(metadata={"plan_name": "paged"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    page = desc.compose_event_page(
        data={"x": [1.0, 2.0, 3.0]},
        timestamps={"x": [1.0, 2.0, 3.0]},
        seq_num=[1, 2, 3],
        time=[10.0, 11.0, 12.0],
        uid=["e1", "e2", "e3"],
    )
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("event_page", page),
        ("stop", bundle.compose_stop()),
    ]:
        db.insert(name, doc)
    h = db[-1]
    assert [n for n, _ in h.documents()] == [
        "start",
        "descriptor",
        "event",
        "event",
        "event",
        "stop",
    ]
    assert [e["uid"] for e in h.events()] == ["e1", "e2", "e3"]
    assert [e["data"]["x"] for e in h.events()] == [1.0, 2.0, 3.0]
    assert list(h.table(convert_times=False, localize_times=False)["time"]) == [10.0, 11.0, 12.0]
    assert [n for n, _ in db.v2[-1].documents()] == ["start", "descriptor", "event_page", "stop"]
